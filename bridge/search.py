"""Query parameters and `.search` bodies turned into a connector query (RFC 7644 §3.4.2, §3.4.3).

The filter is parsed and checked by scim2-models against the resource model, then the
mapping translates it into backend conditions: a filter is always pushed down, and an
attribute the mapping cannot translate is refused (400 invalidFilter), never dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, SearchRequest
from scim2_models.path import Comparison, FilterNode, LogicalExpr, Not, ValuePath

from bridge.errors import ScimError
from bridge.projection import Projection
from bridge.qualify import declares, qualified_filter, qualified_paths, syntax_tree
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


MAX_FILTER_LENGTH = 32_768
"""Characters of a filter: room for MAX_FILTER_COMPARISONS comparisons of long values. A
longer one is refused before it is parsed, which takes time in proportion (and holds the
event loop) even when the result would be refused."""

MAX_FILTER_NESTING = 32
"""Parentheses and brackets a filter may nest, checked before parsing as well."""

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
    request, ast = _parsed(across or (service.model,), payload)
    where = None
    if ast is not None:
        _refuse_too_many(ast)
        where = service.mapping.condition(ast, undeclared_is_false=bool(across))
    sort = None
    if request.sort_by is not None and (
        not across or declares(service.model, str(request.sort_by))
    ):
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


def _refuse_too_many(tree: FilterNode) -> None:
    """A filter of more comparisons than MAX_FILTER_COMPARISONS: 400 tooMany."""
    if _comparisons(tree) > MAX_FILTER_COMPARISONS:
        message = f"the filter has more than {MAX_FILTER_COMPARISONS} comparisons"
        raise ScimError(400, message, "tooMany")


def _comparisons(node: FilterNode) -> int:
    if isinstance(node, LogicalExpr):
        return sum(_comparisons(term) for term in node.terms)
    if isinstance(node, Not):
        return _comparisons(node.expr)
    if isinstance(node, ValuePath):
        return _comparisons(node.val_filter)
    return 1


# --- Parsed once per shape ---------------------------------------------------------------
#
# An identity provider looks each user up by a filter that differs from the last one in its
# value only (`userName eq "..."`). Validating the request and parsing its filter costs
# more than the rest of such a lookup, so it is done once per shape: the filter with each
# string replaced by a placeholder. The placeholders are then replaced in the parsed filter
# by the strings of the request. A shape is used only when its parse kept every placeholder
# as it was, once each; a filter with a backslash escape, or whose shape does not parse as
# the filter does, is parsed whole, every time, so that its errors name what was sent.

_STRING = re.compile(r'"[^"\\]*"')
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*", re.ASCII)
_SHAPES_KEPT = 512
_SHAPE_KEPT_LENGTH = 1024
"""Longer shapes are parsed each time: 512 parses of long filters would hold gigabytes."""
_UNSHAPED = object()
"""A shape whose parse cannot stand for the filters of that shape."""
_shapes: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


_PLACEHOLDER = "scim-bridge-value-"
"""Followed by n, it stands for the n-th string of a filter in that filter's shape."""


Parsed = tuple[Any, FilterNode | None]
"""A validated search request, and the syntax tree of its filter."""


def _parsed(models: tuple[type[Any], ...], payload: dict[str, Any]) -> Parsed:
    """The validated search request, and the syntax tree of its filter."""
    text = payload.get("filter")
    if not isinstance(text, str):
        return _whole(models, payload)
    _refuse_unstorable(text)
    _refuse_oversized(text)
    if "\\" in text:
        # Escapes (RFC 7644 §3.4.2.2 takes JSON's strings) can spell what the text cannot.
        request, ast = _whole(models, payload)
        for value in _strings_of(ast):
            _refuse_unstorable(value)
        return request, ast
    values: list[str] = []

    def placeholder(string: re.Match[str]) -> str:
        values.append(string[0][1:-1])
        return f'"{_PLACEHOLDER}{len(values) - 1}"'

    shape = _STRING.sub(placeholder, text)
    if len(shape) > _SHAPE_KEPT_LENGTH:
        return _whole(models, payload)  # rare: not worth the memory its parse takes
    others = tuple(sorted((key, repr(value)) for key, value in payload.items() if key != "filter"))
    key = (models, shape, others)
    cached = _shapes.get(key)
    if cached is None:
        cached = _shape_of(models, {**payload, "filter": shape}, len(values))
        _shapes[key] = cached
        if len(_shapes) > _SHAPES_KEPT:
            _shapes.popitem(last=False)
    else:
        _shapes.move_to_end(key)
    if cached is _UNSHAPED:
        return _whole(models, payload)
    request, ast = cached
    return request, _substituted(ast, values)


def _refuse_unstorable(text: str) -> None:
    """Nothing stored holds U+0000 or a lone surrogate (see bridge.http): PostgreSQL
    refuses a NUL in a query, the other drivers and the directory cannot encode a
    surrogate. One answer for every backend, before any of them is asked."""
    if "\x00" in text:
        raise ScimError(400, "the filter holds a NUL character", "invalidFilter")
    try:
        text.encode()
    except UnicodeEncodeError:
        message = "the filter holds text that is not valid Unicode"
        raise ScimError(400, message, "invalidFilter") from None


def _refuse_oversized(text: str) -> None:
    """A filter too long or too deeply nested is refused before it is parsed."""
    if len(text) > MAX_FILTER_LENGTH:
        message = f"the filter is longer than {MAX_FILTER_LENGTH} characters"
        raise ScimError(400, message, "tooMany")
    if _nesting(text) > MAX_FILTER_NESTING:
        message = f"the filter nests deeper than {MAX_FILTER_NESTING} levels"
        raise ScimError(400, message, "invalidFilter")


def _nesting(text: str) -> int:
    """How deep the filter's parentheses and brackets nest outside its strings (whose
    JSON escapes may hide a quote), in one pass over the text."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest


def _strings_of(node: FilterNode | None) -> Iterator[str]:
    """The string values the filter compares with."""
    if isinstance(node, Comparison) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, LogicalExpr):
        for term in node.terms:
            yield from _strings_of(term)
    elif isinstance(node, Not):
        yield from _strings_of(node.expr)
    elif isinstance(node, ValuePath):
        yield from _strings_of(node.val_filter)


def _whole(models: tuple[type[Any], ...], payload: dict[str, Any]) -> Parsed:
    request = _search_request(models, payload)
    return request, request.filter.ast if request.filter is not None else None


def _shape_of(models: tuple[type[Any], ...], payload: dict[str, Any], strings: int) -> Any:
    """(request, tree) parsed from a shape, or _UNSHAPED when it cannot stand for its filters."""
    try:
        request = _search_request(models, payload)
    except Exception:  # whatever it is, the filter itself is parsed and its error reported
        return _UNSHAPED
    if request.filter is None:
        return _UNSHAPED
    ast = request.filter.ast
    found = sorted(_strings(ast))
    if found != sorted(f"{_PLACEHOLDER}{n}" for n in range(strings)):
        return _UNSHAPED  # a string was changed, dropped or doubled by the parse
    return request, ast


def _strings(node: FilterNode) -> list[str]:
    if isinstance(node, Comparison):
        return [node.value] if isinstance(node.value, str) else []
    if isinstance(node, LogicalExpr):
        return [value for term in node.terms for value in _strings(term)]
    if isinstance(node, Not):
        return _strings(node.expr)
    if isinstance(node, ValuePath):
        return _strings(node.val_filter)
    return []


def _substituted(node: FilterNode, values: list[str]) -> FilterNode:
    """The tree with each placeholder replaced by the string it stands for."""
    if isinstance(node, Comparison):
        if isinstance(node.value, str) and node.value.startswith(_PLACEHOLDER):
            index = int(node.value.removeprefix(_PLACEHOLDER))
            return dataclasses.replace(node, value=values[index])
        return node
    if isinstance(node, LogicalExpr):
        return dataclasses.replace(node, terms=tuple(_substituted(t, values) for t in node.terms))
    if isinstance(node, Not):
        return dataclasses.replace(node, expr=_substituted(node.expr, values))
    if isinstance(node, ValuePath):
        return dataclasses.replace(node, val_filter=_substituted(node.val_filter, values))
    return node


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
            # In ASCII digits: int() also reads other scripts' ("٣"), and "1_000".
            try:
                if not _INTEGER.fullmatch(body[key]):
                    raise ValueError(body[key])
                body[key] = int(body[key])
            except ValueError:  # or more digits than Python converts (4,300)
                raise ScimError(400, f"{key} must be an integer", "invalidValue") from None
    if isinstance(body.get("sortOrder"), str):
        body["sortOrder"] = body["sortOrder"].lower()  # clients write "Descending" too
    for key in ("sortBy", "attributes", "excludedAttributes"):
        if key in body:
            body[key] = qualified_paths(models, body[key])
    try:
        return request_class.model_validate(
            body, scim_ctx=Context.SEARCH_REQUEST, scim_policy=POLICY
        )
    except ValidationError:
        # Rarely: a filter naming an extension attribute without its URN. Looked for only
        # now, so that a well-formed filter is parsed once; one over the comparison limit
        # is not parsed a third time for it (its error is as good).
        tree = syntax_tree(body.get("filter"))
        if tree is None:
            raise
        _refuse_too_many(tree)
        qualified = qualified_filter(models, tree)
        if qualified is None:
            raise
    return request_class.model_validate(
        {**body, "filter": qualified}, scim_ctx=Context.SEARCH_REQUEST, scim_policy=POLICY
    )


def _projection(service: ResourceService, request: Any) -> Projection:
    return Projection.parse(
        [str(path) for path in request.attributes or ()],
        [str(path) for path in request.excluded_attributes or ()],
        core=service.core_schema,
        extensions=service.extension_schemas,
    )
