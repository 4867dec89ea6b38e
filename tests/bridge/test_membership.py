"""Member operations become member changes without reading the group."""

from typing import Any

import pytest
from scim2_models import Context, Group, PatchOp

from bridge.errors import ScimError
from bridge.membership import split_member_operations
from bridge.resources import POLICY
from connectors.base import MemberChanges


def split(*operations: dict[str, Any]) -> tuple[list[Any], MemberChanges]:
    patch = PatchOp[Group].model_validate(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": list(operations),
        },
        scim_ctx=Context.RESOURCE_PATCH_REQUEST,
        scim_policy=POLICY,
    )
    return split_member_operations(patch.operations or [])


def test_add_two_members_in_one_operation() -> None:
    others, changes = split(
        {"op": "Add", "path": "members", "value": [{"value": "1"}, {"$ref": None, "value": "2"}]}
    )
    assert others == []
    assert changes == MemberChanges(added=frozenset({"1", "2"}))


def test_remove_by_filter_and_by_value_list() -> None:
    _, changes = split(
        {"op": "remove", "path": 'members[value eq "1" or value eq "3"]'},
        {"op": "Remove", "path": "members", "value": [{"value": "2"}]},
    )
    assert changes == MemberChanges(removed=frozenset({"1", "2", "3"}))


def test_replace_then_add_is_a_replacement() -> None:
    _, changes = split(
        {"op": "replace", "path": "members", "value": [{"value": "1"}]},
        {"op": "add", "path": "members", "value": [{"value": "2"}]},
    )
    assert changes == MemberChanges(replace=frozenset({"1", "2"}))


def test_remove_all_members() -> None:
    _, changes = split({"op": "remove", "path": "members"})
    assert changes == MemberChanges(replace=frozenset())


def test_add_then_remove_the_same_member_cancels() -> None:
    _, changes = split(
        {"op": "add", "path": "members", "value": [{"value": "1"}]},
        {"op": "remove", "path": 'members[value eq "1"]'},
    )
    assert changes == MemberChanges(removed=frozenset({"1"}))


def test_pathless_replace_splits_members_from_other_attributes() -> None:
    others, changes = split(
        {"op": "replace", "value": {"displayName": "Ops", "members": [{"value": "9"}]}}
    )
    assert changes == MemberChanges(replace=frozenset({"9"}))
    assert len(others) == 1
    assert others[0].value == {"displayName": "Ops"}


def test_other_attributes_pass_through() -> None:
    others, changes = split({"op": "replace", "path": "displayName", "value": "Ops"})
    assert not changes
    assert [str(op.path) for op in others] == ["displayName"]


def test_a_filter_other_than_value_eq_is_refused() -> None:
    with pytest.raises(ScimError) as caught:
        split({"op": "remove", "path": 'members[display eq "x"]'})
    assert caught.value.scim_type == "invalidFilter"


def test_member_keys_are_caseless() -> None:
    # RFC 7643 §2.1: `{"Value": ...}` names a member, as it does in POST and PUT.
    others, changes = split(
        {"op": "add", "path": "members", "value": [{"Value": "1"}, {"VALUE": "2", "Type": "User"}]}
    )
    assert others == []
    assert changes == MemberChanges(added=frozenset({"1", "2"}))
    with pytest.raises(ScimError) as caught:
        split({"op": "add", "path": "members", "value": [{"Value": "1", "TYPE": "Group"}]})
    assert caught.value.detail == "members: only users can be members of a group"


def test_nested_groups_are_refused() -> None:
    with pytest.raises(ScimError) as caught:
        split({"op": "add", "path": "members", "value": [{"value": "1", "type": "Group"}]})
    assert caught.value.scim_type == "invalidValue"


def test_replacing_a_sub_attribute_of_every_member_is_refused() -> None:
    with pytest.raises(ScimError) as caught:
        split({"op": "replace", "path": "members.value", "value": "2"})
    assert caught.value.scim_type == "invalidPath"


def test_members_qualified_with_the_group_schema_urn() -> None:
    urn = "urn:ietf:params:scim:schemas:core:2.0:Group"
    others, changes = split(
        {"op": "add", "path": f"{urn}:members", "value": [{"value": "1"}]},
        {"op": "remove", "path": f'{urn}:members[value eq "2"]'},
    )
    assert others == []
    assert changes == MemberChanges(added=frozenset({"1"}), removed=frozenset({"2"}))
