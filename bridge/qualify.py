"""Extension attributes named without their schema URN, qualified (RFC 7644 §3.10).

RFC 7644 §3.10 lets a client leave out the URN of a core attribute and asks it to qualify
an extension's ("SHOULD"), to avoid clashes. Some clients do not: `employeeNumber eq "42"`,
`sortBy=department`, `attributes=manager`. Refusing those (or, for `attributes`, answering
without the attribute asked for) helps no one when the resource type has a single reading
of the name. So a name that the core schema of no resource type searched declares, and that
one of their extensions does, is read as that extension's: the first extension in the
order the resource type declares them, as PATCH paths are read (bridge.resources). A name
that nothing declares is left as sent, and refused or ignored as before.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from scim2_models import Path, ScimFilter
from scim2_models.path import AttrPath, Comparison, FilterNode, LogicalExpr, Not, Present, ValuePath

Models = tuple[type[Any], ...]


def qualified_paths(models: Models, paths: Any) -> Any:
    """`attributes`, `excludedAttributes` or `sortBy` as sent (a comma-separated string or
    a list of paths), each unqualified extension attribute qualified with its URN."""
    if isinstance(paths, str):
        return ",".join(_qualified_text(models, each.strip()) for each in paths.split(","))
    if isinstance(paths, list):
        return [_qualified_text(models, each) if isinstance(each, str) else each for each in paths]
    return paths


def syntax_tree(text: Any) -> FilterNode | None:
    """The filter parsed without a model, or None when it does not parse (the parse that
    binds the models says why)."""
    if not isinstance(text, str):
        return None
    try:
        return ScimFilter(text).ast
    except Exception:
        return None


def qualified_filter(models: Models, tree: FilterNode) -> str | None:
    """The filter with its unqualified extension attributes qualified, or None when it
    names none."""
    qualified = _qualified_node(models, tree)
    return None if qualified == tree else str(qualified)


def _qualified_node(models: Models, node: FilterNode) -> FilterNode:
    """The tree with the attribute paths of its terms qualified; the paths inside a value
    selection name sub-attributes, which no URN qualifies, and stay as they are."""
    if isinstance(node, Comparison | Present | ValuePath):
        return dataclasses.replace(node, attr_path=_qualified_attr(models, node.attr_path))
    if isinstance(node, LogicalExpr):
        return dataclasses.replace(
            node, terms=tuple(_qualified_node(models, t) for t in node.terms)
        )
    if isinstance(node, Not):
        return dataclasses.replace(node, expr=_qualified_node(models, node.expr))
    return node


def _qualified_attr(models: Models, attr_path: AttrPath) -> AttrPath:
    if attr_path.uri is not None:
        return attr_path
    urn = _extension_declaring(models, str(attr_path))
    return attr_path if urn is None else dataclasses.replace(attr_path, uri=urn)


def _qualified_text(models: Models, path: str) -> str:
    if not path or path.lower().startswith("urn:"):
        return path
    urn = _extension_declaring(models, path)
    return path if urn is None else f"{urn}:{path}"


@functools.lru_cache(maxsize=1024)  # bounded: the names come from clients
def _extension_declaring(models: Models, path: str) -> str | None:
    """The URN of the extension declaring `path` (`name` or `name.sub`), or None when a
    core schema declares it, or nothing does."""
    try:
        if any(declares(model, path) for model in models):
            return None
        for model in models:
            for urn in model.get_extension_models():
                if declares(model, f"{urn}:{path}"):
                    return str(urn)
    except Exception:  # not an attribute path at all: the model's own parse says so
        return None
    return None


def declares(model: type[Any], path: str) -> bool:
    """Whether the resource type declares the attribute `path` names."""
    path_class: Any = Path.__class_getitem__(model)
    return path_class(path).resolve() is not None
