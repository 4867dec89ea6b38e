"""changes(): only the fields whose values differ, compared after normalisation."""

from __future__ import annotations

import pytest

from mappings import ResourceMapping, load_mapping


@pytest.fixture(scope="module")
def users() -> ResourceMapping:
    return load_mapping("sql-default").users


def test_only_differing_fields(users: ResourceMapping) -> None:
    before = users.to_backend({"userName": "bjensen", "title": "CEO", "nickName": "Babs"})
    after = users.to_backend({"userName": "bjensen", "title": "CTO"})
    assert users.changes(before, after) == {"title": "CTO", "nick_name": None}


def test_equal_states_have_no_changes(users: ResourceMapping) -> None:
    values = users.to_backend({"userName": "bjensen", "active": True})
    assert users.changes(values, dict(values)) == {}


def test_missing_key_equals_none_and_empty(users: ResourceMapping) -> None:
    assert users.changes({"title": None}, {}) == {}
    assert users.changes({}, {"title": ""}) == {}
    assert users.changes({"title": "CEO"}, {}) == {"title": None}


def test_unmapped_fields_are_ignored(users: ResourceMapping) -> None:
    assert users.changes({"created_at": 1, "elsewhere": 2}, {"elsewhere": 3}) == {}


def test_numbers_compare_with_their_text(users: ResourceMapping) -> None:
    assert users.changes({"employee_number": 12}, {"employee_number": "12"}) == {}
    assert users.changes({"employee_number": 12}, {"employee_number": "13"}) == {
        "employee_number": "13"
    }
    assert users.changes({"status": True}, {"status": "True"}) == {"status": "True"}
