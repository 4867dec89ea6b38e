"""Extension attributes named without their URN in searches (RFC 7644 §3.10), on every backend.

Clients SHOULD qualify an extension's attributes; some write `employeeNumber` alone. The
resource type has one reading of such a name, so it is used, as PATCH paths already do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from scim_client import ENTERPRISE, USER_SCHEMA, Scim

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


async def _employee(scim: Scim, name: str, number: str, department: str, **more: Any) -> str:
    user = await scim.create_user(
        name,
        schemas=[USER_SCHEMA, ENTERPRISE],
        **{ENTERPRISE: {"employeeNumber": number, "department": department, **more}},
    )
    return str(user["id"])


def _names(answer: Any) -> list[str]:
    assert answer.status == 200, answer.body
    return [each["userName"] for each in answer.body["Resources"]]


async def test_a_filter_on_an_unqualified_extension_attribute_finds_what_the_qualified_one_does(
    scim: Scim,
) -> None:
    await _employee(scim, "ada", "1001", "Research")
    await _employee(scim, "bob", "1002", "Sales")
    for written in ("employeeNumber", f"{ENTERPRISE}:employeeNumber"):
        answer = await scim.get("/Users?filter=" + quote(written + ' eq "1002"'))
        assert _names(answer) == ["bob"], written
    both = await scim.get(
        "/Users?filter=" + quote('department eq "Research" or employeeNumber eq "1002"')
    )
    assert sorted(_names(both)) == ["ada", "bob"]
    negated = await scim.get("/Users?filter=" + quote('not (department eq "Research")'))
    assert _names(negated) == ["bob"]


async def test_an_unqualified_reference_sub_attribute_is_read_as_the_extension_s(
    scim: Scim,
) -> None:
    boss = await _employee(scim, "boss", "1", "Board")
    await _employee(scim, "report", "2", "Board", manager={"value": boss})
    answer = await scim.get("/Users?filter=" + quote(f'manager.value eq "{boss}"'))
    assert _names(answer) == ["report"]


async def test_a_value_with_quotes_and_backslashes_survives_the_qualification(scim: Scim) -> None:
    await _employee(scim, "quoted", "7", 'R"D\\Lab')
    await _employee(scim, "plain", "8", "RD Lab")
    answer = await scim.get("/Users?filter=" + quote('department eq "R\\"D\\\\Lab"'))
    assert _names(answer) == ["quoted"]


async def test_sort_by_an_unqualified_extension_attribute(scim: Scim) -> None:
    await _employee(scim, "first", "3", "A")
    await _employee(scim, "second", "1", "B")
    await _employee(scim, "third", "2", "C")
    answer = await scim.get("/Users?sortBy=employeeNumber&sortOrder=descending")
    assert _names(answer) == ["first", "third", "second"]
    body = {"schemas": [SEARCH_REQUEST], "sortBy": "employeeNumber"}
    assert _names(await scim.post("/Users/.search", body)) == ["second", "third", "first"]


async def test_attributes_and_excluded_attributes_take_unqualified_extension_names(
    scim: Scim,
) -> None:
    id = await _employee(scim, "ada", "1001", "Research")
    only = await scim.get(f"/Users/{id}?attributes=employeeNumber,userName")
    assert only.status == 200, only.body
    assert only.body[ENTERPRISE] == {"employeeNumber": "1001"}
    assert only.body["userName"] == "ada"
    without = await scim.get(f"/Users/{id}?excludedAttributes=department")
    assert without.body[ENTERPRISE] == {"employeeNumber": "1001"}
    listed = await scim.post(
        "/Users/.search",
        {"schemas": [SEARCH_REQUEST], "attributes": ["department"], "filter": 'userName eq "ada"'},
    )
    assert listed.body["Resources"][0][ENTERPRISE] == {"department": "Research"}


async def test_a_root_search_reads_the_name_for_users_and_finds_no_group(scim: Scim) -> None:
    await _employee(scim, "ada", "1001", "Research")
    group = await scim.post(
        "/Groups",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Research"},
    )
    assert group.status == 201, group.body
    answer = await scim.post(
        "/.search", {"schemas": [SEARCH_REQUEST], "filter": 'department eq "Research"'}
    )
    assert _names(answer) == ["ada"]


async def test_a_name_no_schema_declares_is_still_refused(scim: Scim) -> None:
    answer = await scim.get("/Users?filter=" + quote('shoeSize eq "42"'))
    assert answer.status == 400
    assert answer.body["scimType"] == "invalidFilter"
    assert "shoeSize" in answer.body["detail"]
    sorted_ = await scim.get("/Users?sortBy=shoeSize")
    assert sorted_.status == 400
    assert sorted_.body["scimType"] == "invalidPath"


async def test_an_unqualified_filter_over_the_comparison_limit_is_too_many(scim: Scim) -> None:
    # Refused before its names are qualified: qualifying writes every term out again with
    # its URN, and parses it a third time.
    huge = " or ".join(["department pr"] * 201)
    answer = await scim.get("/Users?filter=" + quote(huge))
    assert answer.status == 400
    assert answer.body["scimType"] == "tooMany"
