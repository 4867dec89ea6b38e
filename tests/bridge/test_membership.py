"""Member operations become member changes without reading the group."""

from typing import Any

import pytest
from pydantic import ValidationError
from scim2_models import Context, Group, PatchOp

from bridge.errors import ScimError
from bridge.membership import (
    lighten_member_removals,
    restore_member_removals,
    split_member_operations,
)
from bridge.resources import POLICY
from connectors.base import MemberChanges

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def split(*operations: dict[str, Any]) -> tuple[list[Any], MemberChanges]:
    """As the service reads a group's PATCH: member removals by value lightened first."""
    sent = {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
    lightened, taken = lighten_member_removals(sent)
    patch = PatchOp[Group].model_validate(
        lightened, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
    )
    return split_member_operations(restore_member_removals(patch.operations or [], taken))


def test_a_long_removal_list_reaches_scim2_models_as_a_stand_in_and_is_read_as_ids() -> None:
    # scim2-models parses such a list as a filter of one comparison per member: a body of
    # 60,000 took 10 s and held the event loop.
    ids = [str(n) for n in range(50_000)]
    removal = {"op": "remove", "path": "members", "value": [{"value": id} for id in ids]}
    lightened, taken = lighten_member_removals({"Operations": [removal]})
    assert lightened["Operations"][0]["value"] == [{"value": "scim-bridge-stand-in"}]
    assert taken == {0: removal["value"]}
    _, changes = split({"op": "add", "path": "members", "value": [{"value": "x"}]}, removal)
    assert changes == MemberChanges(added=frozenset({"x"}), removed=frozenset(ids))


def test_lightened_removals_keep_their_place_among_member_operations() -> None:
    _, changes = split(
        {"op": "remove", "path": "members", "value": [{"value": "1"}, {"value": "2"}]},
        {"op": "add", "path": "members", "value": [{"value": "2"}]},
        {"op": "REMOVE", "path": "Members", "value": [{"value": "3"}, {"value": "4"}]},
    )
    assert changes == MemberChanges(added=frozenset({"2"}), removed=frozenset({"1", "3", "4"}))


@pytest.mark.parametrize(
    "entries",
    [
        [{"value": "1"}, "2"],
        [{"value": "1"}, {}],
        [{"value": ["u1", "u2"]}, {"value": "u3"}],  # was read as the id "['u1', 'u2']"
        [{"value": "u3", "bad key!": {"x": 1}}, {"value": "u4"}],
    ],
)
def test_a_removal_list_scim2_models_refuses_is_still_refused(entries: list[Any]) -> None:
    with pytest.raises(ValidationError):
        split({"op": "remove", "path": "members", "value": entries})


@pytest.mark.parametrize("entry", [{"display": "no value"}, {"value": "1", "type": "Group"}])
def test_a_removal_list_naming_no_user_is_invalid_value(entry: dict[str, Any]) -> None:
    with pytest.raises(ScimError) as refused:
        split({"op": "remove", "path": "members", "value": [{"value": "0"}, entry]})
    assert refused.value.scim_type == "invalidValue"


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
