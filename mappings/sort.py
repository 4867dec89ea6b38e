"""`sortBy` (RFC 7644 §3.4.2.3) to the backend field the connector orders by."""

from __future__ import annotations

from typing import Any

from scim2_models import Path, Resource
from scim2_models.exceptions import InvalidPathException
from scim2_models.path import AttrPath

from connectors.base import ObjectSpec, Sort

from .errors import TranslationError
from .paths import is_complex, split_urn
from .rules import RuleSet


def sort_by(
    model: type[Resource[Any]],
    spec: ObjectSpec,
    ruleset: RuleSet,
    attribute_path: str,
    descending: bool,
) -> Sort:
    """The field of a single-valued mapped attribute, or of a slot's value.

    A multi-valued attribute sorts by its primary value (RFC 7644 §3.4.2.3), so a slot
    pinned primary is preferred, then the first slot of the mapping.
    """
    unsortable = TranslationError(
        f"'{attribute_path}' cannot be used to sort", attribute=attribute_path
    )
    try:
        path = Path[model](attribute_path)  # type: ignore[valid-type]
        node = path.ast
    except InvalidPathException:
        raise unsortable from None
    binding = path.resolve() if isinstance(node, AttrPath) else None
    if binding is None:
        raise unsortable
    schema, attr, sub = split_urn(binding)
    if binding.model is model and binding.field_name in {"id", "meta"}:
        fields = {"id": spec.key, "meta.created": spec.created, "meta.lastModified": spec.modified}
        field = fields.get(attr if sub is None else f"{attr}.{sub}")
        if field is None:
            raise unsortable
        return Sort(field, descending, case_exact=binding.field_name == "id")
    if is_complex(binding):
        sub = "value"
        binding = Path[model](f"{attribute_path}.value").resolve()  # type: ignore[valid-type]
        if binding is None:
            raise unsortable
    candidates = [
        (rule.field, rule)
        for rule in ruleset.for_attribute(schema, attr)
        if rule.target.sub_attr == sub and rule.field is not None and rule.constant is None
    ]
    candidates.sort(key=lambda each: not (each[1].target.slot and each[1].target.slot.primary))
    if not candidates or candidates[0][1].several:
        raise unsortable
    field, rule = candidates[0]
    return Sort(field, descending, case_exact=binding.case_exact, empty=rule.empty)
