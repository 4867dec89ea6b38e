"""Query parameters and `.search` bodies turned into a connector query (RFC 7644 §3.4.2, §3.4.3).

The filter is parsed and checked by scim2-models against the resource model, then the
mapping translates it into backend conditions: a filter is always pushed down, and an
attribute the mapping cannot translate is refused (400 invalidFilter), never dropped.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

from scim2_models import Context, Path, SearchRequest
from scim2_models.path import FilterNode, LogicalExpr, Not, ValuePath

from bridge.errors import ScimError
from bridge.projection import Projection
from bridge.resources import POLICY, ReadOptions, ResourceService
from connectors.base import Kind, Query

_PARAMETERS = {
    "filter": "filter",
    "startindex": "startIndex",
    "count": "count",
    "attributes": "attributes",
    "excludedattributes": "excludedAttributes",
    "sortby": "sortBy",
    "sortorder": "sortOrder",
}


@dataclass(frozen=True)
class Search:
    query: Query
    start_index: int
    projection: Projection


def from_query_string(params: Mapping[str, str]) -> dict[str, Any]:
    """Query parameters with their RFC spelling; names are matched case-insensitively."""
    result: dict[str, Any] = {}
    for name, value in params.items():
        canonical = _PARAMETERS.get(name.lower())
        if canonical is not None and value != "":
            result[canonical] = value
    return result


def projection_for(service: ResourceService, params: Mapping[str, Any]) -> Projection:
    """`attributes`/`excludedAttributes` of a request that is not a search (RFC 7644 §3.9)."""
    parsed = from_query_string(params)
    wanted = {key: value for key, value in parsed.items() if "ttributes" in key}
    if not wanted:
        return Projection()  # the whole resource: nothing to parse or validate
    request = _search_request((service.model,), wanted)
    return _projection(service, request)


def read_options(service: ResourceService, projection: Projection) -> ReadOptions:
    return ReadOptions(
        members=service.kind is Kind.GROUPS and projection.wants("members"),
        groups=service.kind is Kind.USERS and projection.wants("groups"),
    )


MAX_FILTER_COMPARISONS = 200
"""A filter larger than this is refused (400 tooMany, RFC 7644 §3.4.2.2) rather than turned
into a backend query of unbounded size."""


MAX_START_INDEX = 2**62
"""Past any backend's row count, and within every backend's integer range."""


def build_search(
    service: ResourceService,
    payload: dict[str, Any],
    max_page_size: int,
    *,
    across: tuple[type[Any], ...] = (),
) -> Search:
    """The query a search asks of one resource type.

    `across` names every resource type of a root-level search (RFC 7644 §3.4.3): the
    request is checked against all of them, and a filter term or a sortBy naming an
    attribute this type does not declare is false, or no order, for it (RFC 7644 §3.4.2.1).
    """
    request = _search_request(across or (service.model,), payload)
    where = None
    if request.filter is not None:
        if _comparisons(request.filter.ast) > MAX_FILTER_COMPARISONS:
            raise ScimError(
                400,
                f"the filter has more than {MAX_FILTER_COMPARISONS} comparisons",
                "tooMany",
            )
        where = service.mapping.condition(request.filter.ast, undeclared_is_false=bool(across))
    sort = None
    if request.sort_by is not None and (not across or _declares(service, str(request.sort_by))):
        descending = request.sort_order == SearchRequest.SortOrder.descending
        sort = service.mapping.sort(str(request.sort_by), descending=descending)
    start_index = min(max(request.start_index or 1, 1), MAX_START_INDEX)
    count = max_page_size if request.count is None else min(max(request.count, 0), max_page_size)
    projection = _projection(service, request)
    options = read_options(service, projection)
    query = Query(
        where=where,
        sort=sort,
        offset=start_index - 1,
        limit=count,
        with_members=options.members,
        with_groups=options.groups,
    )
    return Search(query=query, start_index=start_index, projection=projection)


def _declares(service: ResourceService, attribute_path: str) -> bool:
    path_class: Any = Path.__class_getitem__(service.model)
    return path_class(attribute_path).resolve() is not None


def _comparisons(node: FilterNode) -> int:
    if isinstance(node, LogicalExpr):
        return sum(_comparisons(term) for term in node.terms)
    if isinstance(node, Not):
        return _comparisons(node.expr)
    if isinstance(node, ValuePath):
        return _comparisons(node.val_filter)
    return 1


@functools.cache
def _search_request_class(models: tuple[type[Any], ...]) -> Any:
    """SearchRequest parameterised with the resource types, built once.

    pydantic keeps parameterised classes weakly only: without a reference held here, each
    request would build the class anew (a sixth of a lookup's time).
    """
    return SearchRequest.__class_getitem__(reduce(operator.or_, models))


def _search_request(models: tuple[type[Any], ...], payload: dict[str, Any]) -> Any:
    request_class = _search_request_class(models)
    body = {key: value for key, value in payload.items() if key != "schemas"}
    for key in ("startIndex", "count"):
        if isinstance(body.get(key), str):
            try:
                body[key] = int(body[key])
            except ValueError:
                raise ScimError(400, f"{key} must be an integer", "invalidValue") from None
    return request_class.model_validate(body, scim_ctx=Context.SEARCH_REQUEST, scim_policy=POLICY)


def _projection(service: ResourceService, request: Any) -> Projection:
    return Projection.parse(
        [str(path) for path in request.attributes or ()],
        [str(path) for path in request.excluded_attributes or ()],
        core=service.core_schema,
        extensions=service.extension_schemas,
    )
