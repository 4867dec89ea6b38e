"""The SCIM protocol end to end, on SQLite, PostgreSQL, MariaDB and OpenLDAP (RFC 7644 §3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from direct import SqlDirect
from scim_client import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Scim
from served import serve


def q(filter_: str) -> str:
    return quote(filter_, safe="")


async def test_create_answers_201_with_location_etag_and_the_full_resource(scim: Scim) -> None:
    answer = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"type": "work", "value": "bjensen@example.com", "primary": True}],
            "title": "Tour Guide",
            "password": "t1meMa$heen",
            ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"},
        },
    )
    assert answer.status == 201, answer.body
    body = answer.body
    assert answer.headers["Content-Type"].startswith("application/scim+json")
    assert answer.headers["Location"] == f"{scim.url}/Users/{body['id']}"
    assert answer.headers["ETag"] == body["meta"]["version"]
    assert body["userName"] == "bjensen"
    assert body["displayName"] == "Barbara Jensen"  # the mapping's default template
    assert body["active"] is True
    assert body["emails"] == [{"type": "work", "value": "bjensen@example.com"}]
    assert body[ENTERPRISE] == {"employeeNumber": "701984", "department": "Tour Operations"}
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"] == answer.headers["Location"]
    assert "created" in body["meta"]
    assert "lastModified" in body["meta"]
    assert "password" not in body
    assert set(body["schemas"]) == {USER_SCHEMA, ENTERPRISE}
    again = await scim.get(f"/Users/{body['id']}")
    assert again.body == body


@pytest.mark.parametrize("again", ["dup@example.com", "Dup@Example.com"])
async def test_duplicate_user_name_is_409_uniqueness_whatever_its_case(
    scim: Scim, again: str
) -> None:
    await scim.create_user("Dup@Example.com")
    answer = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": again})
    assert answer.status == 409
    assert answer.body["scimType"] == "uniqueness"
    assert answer.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert answer.body["detail"].startswith("userName: "), answer.body
    other = await scim.create_user("other")
    renamed = await scim.put(f"/Users/{other['id']}", {"schemas": [USER_SCHEMA], "userName": again})
    assert (renamed.status, renamed.body["detail"][:10]) == (409, "userName: "), renamed.body


async def test_unknown_ids_are_404(scim: Scim) -> None:
    for path in ("/Users/999999", "/Users/not-a-number", "/Groups/424242"):
        answer = await scim.get(path)
        assert answer.status == 404, path
        assert answer.body["status"] == "404"
    assert (await scim.delete("/Users/999999")).status == 404
    assert (
        await scim.patch("/Users/999999", {"op": "replace", "path": "title", "value": "x"})
    ).status == 404
    # A PATCH of members alone writes without reading the group first: still a 404.
    alice = await scim.create_user("alice")
    add = {"op": "add", "path": "members", "value": [{"value": alice["id"]}]}
    for group in ("/Groups/424242", "/Groups/g424242", "/Groups/not-an-id"):
        answer = await scim.patch(group, add)
        assert answer.status == 404, group


async def test_filters_are_pushed_down_with_the_whole_grammar(scim: Scim) -> None:
    alice = await scim.create_user(
        "alice",
        title="Engineer",
        emails=[{"type": "work", "value": "alice@example.com"}],
        **{ENTERPRISE: {"department": "R&D"}},
    )
    bob = await scim.create_user("bob", title="Manager", active=False)
    carol = await scim.create_user(
        "carol", title="Engineer", **{ENTERPRISE: {"department": "Sales"}}
    )

    async def ids(filter_: str) -> set[str]:
        answer = await scim.get(f"/Users?filter={q(filter_)}")
        assert answer.status == 200, (filter_, answer.body)
        assert answer.body["totalResults"] == len(answer.body["Resources"])
        return {r["id"] for r in answer.body["Resources"]}

    a, b, c = alice["id"], bob["id"], carol["id"]
    assert await ids('userName eq "ALICE"') == {a}
    assert await ids('USERNAME Eq "alice"') == {a}
    assert await ids('userName ne "alice"') == {b, c}
    assert await ids('userName co "o"') == {b, c}
    assert await ids('userName sw "ca"') == {c}
    assert await ids('userName ew "ce"') == {a}
    assert await ids("title pr") == {a, b, c}
    assert await ids("userType pr") == set()
    assert await ids('title eq "Engineer" and not (userName eq "carol")') == {a}
    assert await ids('(title eq "Manager" or userName eq "carol") and userName pr') == {b, c}
    assert await ids("active eq false") == {b}
    assert await ids('emails[type eq "work" and value co "@example"]') == {a}
    assert await ids('emails.value eq "alice@example.com"') == {a}
    assert await ids(f'{ENTERPRISE}:department eq "Sales"') == {c}
    assert await ids('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob"') == {b}
    assert await ids(f'id eq "{a}"') == {a}
    assert await ids('userName eq "nobody"') == set()
    ordered = ('userName gt "b"', 'userName le "bob"')
    if scim.backend.name == "ldap":
        # OpenLDAP's uid has no ORDERING rule: (uid>=b) would silently match nothing.
        for filter_ in ordered:
            answer = await scim.get(f"/Users?filter={q(filter_)}")
            assert answer.status == 400, filter_
            assert answer.body["scimType"] == "invalidFilter"
            assert "userName" in answer.body["detail"]
        assert await ids('meta.created gt "2000-01-01T00:00:00Z"') == {a, b, c}
    else:
        assert [await ids(filter_) for filter_ in ordered] == [{b, c}, {a, b}]


async def test_filters_of_one_shape_answer_for_their_own_values(scim: Scim) -> None:
    """A filter's shape (its text with the strings left out) is parsed once: each later
    filter of that shape must still be answered for its own strings."""
    alice = await scim.create_user(
        "alice", title="Engineer", emails=[{"type": "work", "value": "alice@example.com"}]
    )
    bob = await scim.create_user(
        "bob", title="Manager", emails=[{"type": "work", "value": "bob@example.org"}]
    )
    quoted = await scim.create_user('o"neil', title="Engineer")
    a, b, o = alice["id"], bob["id"], quoted["id"]
    shapes: list[tuple[str, list[tuple[tuple[str, ...], set[str]]]]] = [
        ('userName eq "{}"', [(("alice",), {a}), (("BOB",), {b}), (("carol",), set())]),
        (
            'title eq "{}" and not (userName eq "{}")',
            [
                (("Engineer", "alice"), {o}),
                (("Engineer", "nobody"), {a, o}),
                (("Manager", "bob"), set()),
            ],
        ),
        (
            'emails[type eq "{}" and value co "{}"]',
            [
                (("work", "@example.com"), {a}),
                (("work", "@example.org"), {b}),
                (("home", ".org"), set()),
            ],
        ),
        ('userName eq "{}" or userName eq "{}"', [(("alice", "bob"), {a, b}), (("bob", "x"), {b})]),
        ('userName eq "{}"', [(('o\\"neil',), {o}), (('o\\"nobody',), set())]),
    ]
    for template, cases in shapes:
        for values, expected in cases:
            filter_ = template.format(*values)
            answer = await scim.get(f"/Users?filter={q(filter_)}")
            assert answer.status == 200, (filter_, answer.body)
            assert {r["id"] for r in answer.body["Resources"]} == expected, filter_


async def test_hostile_filter_values_are_bound_parameters(scim: Scim) -> None:
    await scim.create_user("100%_sure")
    await scim.create_user("1000_sure")
    for value, expected in [
        ("100%", 1),
        ("%", 1),
        ("_", 2),
        ("'; DROP TABLE users; --", 0),
        ('\\"', 0),
    ]:
        answer = await scim.get(f"/Users?filter={q(f'userName co {_quoted(value)}')}")
        assert answer.status == 200, answer.body
        assert answer.body["totalResults"] == expected, value
    assert (await scim.get("/Users")).body["totalResults"] == 2


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def test_a_filter_on_an_unmapped_attribute_is_400_invalid_filter(scim: Scim) -> None:
    await scim.create_user("alice")
    for filter_ in (
        'profileUrl eq "x"',
        'userName eq "alice" and ims.value eq "x"',
        "x509Certificates pr",
    ):
        answer = await scim.get(f"/Users?filter={q(filter_)}")
        assert answer.status == 400, filter_
        assert answer.body["scimType"] == "invalidFilter", filter_


async def test_a_malformed_filter_is_400_invalid_filter(scim: Scim) -> None:
    for filter_ in ("userName eq", 'userName xx "a"', '(userName eq "a"', 'nosuchattr eq "a"'):
        answer = await scim.get(f"/Users?filter={q(filter_)}")
        assert answer.status == 400, filter_
        assert answer.body["scimType"] == "invalidFilter", filter_


async def test_paging_sorting_and_totals(scim: Scim) -> None:
    for name in ["delta", "alpha", "echo", "charlie", "bravo"]:
        await scim.create_user(name)
    page = await scim.get("/Users?sortBy=userName&startIndex=2&count=2")
    assert page.body["totalResults"] == 5
    assert page.body["startIndex"] == 2
    assert page.body["itemsPerPage"] == 2
    assert [r["userName"] for r in page.body["Resources"]] == ["bravo", "charlie"]
    for order in ("descending", "Descending", "DESCENDING"):
        down = await scim.get(f"/Users?sortBy=userName&sortOrder={order}&count=1")
        assert [r["userName"] for r in down.body["Resources"]] == ["echo"], order
    count_only = await scim.get("/Users?count=0")
    assert count_only.body["totalResults"] == 5
    assert count_only.body["Resources"] == []
    capped = await scim.get("/Users?count=100000")
    assert capped.body["itemsPerPage"] == 5
    beyond = await scim.get("/Users?startIndex=10")
    assert beyond.body["Resources"] == []
    assert beyond.body["totalResults"] == 5


async def test_query_strings_as_identity_providers_write_them(scim: Scim) -> None:
    await scim.create_user("ada.lovelace@example.com")
    answer = await scim.get("/Users?filter=userName+eq+%22ada.lovelace%40example.com%22&")
    assert answer.status == 200
    assert answer.body["totalResults"] == 1


async def test_attributes_and_excluded_attributes(scim: Scim) -> None:
    user = await scim.create_user("alice", title="Engineer", name={"givenName": "Alice"})
    only = await scim.get(f"/Users/{user['id']}?attributes=userName,name.givenName")
    assert set(only.body) == {"schemas", "id", "userName", "name"}
    without = await scim.get("/Users?excludedAttributes=title,meta")
    resource = without.body["Resources"][0]
    assert "title" not in resource
    assert "meta" not in resource
    assert resource["userName"] == "alice"


async def test_post_search(scim: Scim) -> None:
    await scim.create_user("alice")
    await scim.create_user("bob")
    answer = await scim.post(
        "/Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "a"',
            "attributes": ["userName"],
            "startIndex": 1,
            "count": 10,
        },
    )
    assert answer.status == 200, answer.body
    assert [r["userName"] for r in answer.body["Resources"]] == ["alice"]
    assert set(answer.body["Resources"][0]) == {"schemas", "id", "userName"}


async def test_put_replaces_mapped_attributes_and_derives_the_display_name_again(
    scim: Scim,
) -> None:
    user = await scim.create_user(
        "alice", title="Engineer", name={"givenName": "Alice", "familyName": "Liddell"}
    )
    assert user["displayName"] == "Alice Liddell"
    answer = await scim.put(
        f"/Users/{user['id']}",
        {
            "schemas": [USER_SCHEMA],
            "userName": "alice",
            "id": user["id"],
            "groups": [],
            "name": {"givenName": "Alicia"},
        },
    )
    assert answer.status == 200, answer.body
    assert "title" not in answer.body
    # Derived from the name, never set by the client: derived again from the new name.
    assert answer.body["name"] == {"givenName": "Alicia", "formatted": "Alicia"}
    assert answer.body["displayName"] == "Alicia"
    assert answer.body["meta"]["version"] != user["meta"]["version"]


async def test_if_match_mismatch_is_412_and_a_match_proceeds(scim: Scim) -> None:
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    stale = {"If-Match": 'W/"not-the-version"'}
    op = {"op": "replace", "path": "title", "value": "x"}
    assert (await scim.patch(path, op, headers=stale)).status == 412
    assert (
        await scim.put(path, {"schemas": [USER_SCHEMA], "userName": "alice"}, headers=stale)
    ).status == 412
    assert (await scim.delete(path, headers=stale)).status == 412
    fresh = await scim.patch(path, op, headers={"If-Match": user["meta"]["version"]})
    assert fresh.status == 200
    assert fresh.body["title"] == "x"
    assert fresh.headers["ETag"] != user["meta"]["version"]


async def test_patch_add_replace_remove_with_value_paths(scim: Scim) -> None:
    user = await scim.create_user("mary", emails=[{"type": "work", "value": "mary@example.com"}])
    path = f"/Users/{user['id']}"
    answer = await scim.patch(
        path,
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "mary.w@example.com"},
        {"op": "add", "path": "title", "value": "Engineer"},
        {"op": "replace", "value": {"name.givenName": "Mary", f"{ENTERPRISE}:department": "Eng"}},
    )
    assert answer.status == 200, answer.body
    assert answer.body["emails"] == [{"type": "work", "value": "mary.w@example.com"}]
    assert answer.body["title"] == "Engineer"
    assert answer.body["name"]["givenName"] == "Mary"
    assert answer.body[ENTERPRISE]["department"] == "Eng"
    removed = await scim.patch(
        path, {"op": "remove", "path": "title"}, {"op": "remove", "path": 'emails[type eq "work"]'}
    )
    assert removed.status == 200
    assert "title" not in removed.body
    assert "emails" not in removed.body
    assert (await scim.get(path)).body == removed.body


async def test_patch_replace_through_primary_filter_changes_the_stored_email(scim: Scim) -> None:
    # The stored work email is not marked primary: the filter matches nothing, so the
    # replace creates a primary entry (RFC 7644 §3.5.2.3, tolerated as Entra needs),
    # which must take the email's place rather than be dropped while the answer says 200.
    user = await scim.create_user("mary", emails=[{"type": "work", "value": "old@example.com"}])
    path = f"/Users/{user['id']}"
    answer = await scim.patch(
        path, {"op": "replace", "path": "emails[primary eq true].value", "value": "new@example.com"}
    )
    assert answer.status == 200, answer.body
    assert answer.body["emails"] == [{"type": "work", "value": "new@example.com"}]
    assert (await scim.get(path)).body == answer.body


async def test_put_renaming_a_user_derives_the_display_name_again(scim: Scim) -> None:
    # displayName and name.formatted default to "{givenName} {familyName}": values the
    # client never set follow a PUT's new name; one it set is kept (not asserted).
    user = await scim.create_user("mary", name={"givenName": "Mary", "familyName": "Major"})
    assert user["displayName"] == "Mary Major"
    path = f"/Users/{user['id']}"
    renamed = {"givenName": "Maria", "familyName": "Minor"}
    answer = await scim.put(path, {"schemas": user["schemas"], "userName": "mary", "name": renamed})
    assert answer.status == 200, answer.body
    assert answer.body["displayName"] == "Maria Minor"
    assert answer.body["name"].get("formatted") in (None, "Maria Minor")
    await scim.patch(path, {"op": "replace", "path": "displayName", "value": "Boss"})
    answer = await scim.put(path, {"schemas": user["schemas"], "userName": "mary", "name": renamed})
    assert answer.body["displayName"] == "Boss"


async def test_patch_errors_carry_their_scim_type(scim: Scim) -> None:
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    cases = [
        ({"op": "remove"}, "noTarget"),
        ({"op": "add", "path": "title"}, "invalidValue"),
        ({"op": "replace", "path": 'emails[type eq "work"', "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "id", "value": "5"}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "1"}]}, "mutability"),
        ({"op": "jump", "path": "title", "value": "x"}, "invalidValue"),
    ]
    for operation, scim_type in cases:
        answer = await scim.patch(path, operation)
        assert answer.status == 400, operation
        assert answer.body["scimType"] == scim_type, (operation, answer.body)
    assert (await scim.get(path)).body == user


async def test_delete_answers_204_then_the_user_is_gone(scim: Scim) -> None:
    user = await scim.create_user("alice")
    answer = await scim.delete(f"/Users/{user['id']}")
    assert answer.status == 204
    assert answer.body is None
    assert (await scim.get(f"/Users/{user['id']}")).status == 404


async def test_manager_is_stored_as_a_key_and_read_back_with_ref_and_display_name(
    scim: Scim,
) -> None:
    boss = await scim.create_user("grace", displayName="Grace Hopper")
    user = await scim.create_user("alan", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    assert user[ENTERPRISE]["manager"] == {
        "value": boss["id"],
        "$ref": f"{scim.url}/Users/{boss['id']}",
        "displayName": "Grace Hopper",
    }
    unknown = await scim.post(
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "x", ENTERPRISE: {"manager": {"value": "999999"}}},
    )
    assert unknown.status == 400
    assert unknown.body["scimType"] == "invalidValue"
    assert "manager" in unknown.body["detail"]
    await scim.delete(f"/Users/{boss['id']}")
    assert "manager" not in (await scim.get(f"/Users/{user['id']}")).body.get(ENTERPRISE, {})


async def test_groups_members_and_computed_user_groups(scim: Scim) -> None:
    alice = await scim.create_user("alice", displayName="Alice")
    bob = await scim.create_user("bob")
    created = await scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": alice["id"]}]},
    )
    assert created.status == 201, created.body
    group = created.body
    assert group["members"] == [
        {
            "value": alice["id"],
            "$ref": f"{scim.url}/Users/{alice['id']}",
            "type": "User",
            "display": "Alice",
        }
    ]
    path = f"/Groups/{group['id']}"
    added = await scim.patch(
        path, {"op": "add", "path": "members", "value": [{"value": bob["id"]}]}
    )
    assert added.status == 204, added.body  # RFC 7644 §3.5.2: a group's PATCH has no body
    stored = await scim.get(path)
    assert added.headers["ETag"] == stored.headers["ETag"] != created.headers["ETag"]
    assert {m["value"] for m in stored.body["members"]} == {alice["id"], bob["id"]}
    user = await scim.get(f"/Users/{bob['id']}")
    assert [(g["value"], g["display"]) for g in user.body["groups"]] == [(group["id"], "Ops")]
    bob_filter = q(f'members.value eq "{bob["id"]}"')
    by_member = await scim.get(f"/Groups?filter={bob_filter}")
    assert by_member.body["totalResults"] == 1
    group_filter = q(f'groups.value eq "{group["id"]}"')
    by_group = await scim.get(f"/Users?filter={group_filter}")
    assert {r["id"] for r in by_group.body["Resources"]} == {alice["id"], bob["id"]}
    removed = await scim.patch(
        f"{path}?attributes=members",  # asked for: RFC 7644 §3.5.2 requires 200 and a body
        {"op": "remove", "path": f'members[value eq "{alice["id"]}"]'},
    )
    assert removed.status == 200, removed.body
    assert [m["value"] for m in removed.body["members"]] == [bob["id"]]
    assert "displayName" not in removed.body
    excluded = await scim.get(f"{path}?excludedAttributes=members")
    assert "members" not in excluded.body
    assert excluded.body["displayName"] == "Ops"
    renamed = await scim.put(
        path, {"schemas": [GROUP_SCHEMA], "displayName": "Operations", "members": []}
    )
    assert renamed.body["displayName"] == "Operations"
    assert "members" not in renamed.body
    assert "groups" not in (await scim.get(f"/Users/{bob['id']}")).body


async def test_members_must_reference_existing_users(scim: Scim) -> None:
    answer = await scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": "999999"}]},
    )
    assert answer.status == 400
    assert answer.body["scimType"] == "invalidValue"
    assert (await scim.get("/Groups")).body["totalResults"] == 0
    group = (await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"})).body
    bad = await scim.patch(
        f"/Groups/{group['id']}", {"op": "add", "path": "members", "value": [{"value": "999999"}]}
    )
    assert bad.status == 400
    assert bad.body["scimType"] == "invalidValue"


async def test_missing_and_wrong_tokens_are_401_with_a_challenge(scim: Scim) -> None:
    for token in (None, "wrong-token"):
        answer = await scim.get("/Users", token=token)
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="scim-bridge"')
        assert answer.body["status"] == "401"
    assert (await scim.get("/ServiceProviderConfig", token=None)).status == 401
    # RFC 6750 §3: the error code only for a request that carried a bearer token.
    basic = await scim.get("/Users", token=None, headers={"Authorization": "Basic dDp0"})
    assert basic.headers["WWW-Authenticate"] == 'Bearer realm="scim-bridge"'
    wrong = await scim.get("/Users", token="wrong-token")
    assert wrong.headers["WWW-Authenticate"].endswith('error="invalid_token"')
    # Header bytes that are not UTF-8 are no token: 401, not 500.
    garbled = await scim.get("/Users", token="\xff\xfe")
    assert garbled.status == 401


async def test_malformed_json_is_400_invalid_syntax(scim: Scim) -> None:
    for raw in (b'{"userName": ', b"[1, 2]", b"\xff\xfe"):
        answer = await scim.request("POST", "/Users", raw=raw)
        assert answer.status == 400, raw
        assert answer.body["scimType"] == "invalidSyntax", raw


async def test_a_body_over_the_limit_is_413(scim: Scim) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "x", "title": "a" * 70000}
    answer = await scim.post("/Users", body)
    assert answer.status == 413
    assert answer.body["status"] == "413"
    assert (await scim.get("/Users")).body["totalResults"] == 0


async def test_application_json_is_accepted(scim: Scim) -> None:
    answer = await scim.post(
        "/Users",
        {"schemas": [USER_SCHEMA], "userName": "json"},
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 201


async def test_unknown_endpoints_answer_a_scim_404(scim: Scim) -> None:
    answer = await scim.get("/Nothing")
    assert answer.status == 404
    assert answer.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_an_unexpected_error_is_500_with_a_request_id_and_no_trace(
    scim: Scim, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.app import SERVICES
    from connectors.base import Kind

    service = scim.client.app[SERVICES][Kind.USERS]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SELECT secret FROM users -- boom")

    monkeypatch.setattr(service.connector, "search", broken)
    answer = await scim.get("/Users")
    assert answer.status == 500
    assert "request id" in answer.body["detail"]
    assert "SELECT" not in answer.body["detail"]
    assert "Traceback" not in answer.body["detail"]
    request_id = answer.body["detail"].rsplit(" ", 1)[-1]
    assert any(request_id in record.getMessage() for record in caplog.records)


async def test_an_oversized_filter_is_400_too_many(scim: Scim) -> None:
    huge = " or ".join(f'userName eq "user{n}"' for n in range(201))
    answer = await scim.post("/Users/.search", {"filter": huge})
    assert answer.status == 400
    assert answer.body["scimType"] == "tooMany"
    within = " or ".join(f'userName eq "user{n}"' for n in range(200))
    assert (await scim.post("/Users/.search", {"filter": within})).status == 200


async def test_root_search_spans_users_and_groups_with_distinct_ids(scim: Scim) -> None:
    user = await scim.create_user("alice", externalId="u-ext")
    group = (
        await scim.post(
            "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "externalId": "g-ext"}
        )
    ).body
    assert user["id"] != group["id"]  # RFC 7643 §3.1: unique across every resource
    answer = await scim.post("/.search", {"attributes": ["externalId"]})
    assert answer.status == 200, answer.body
    assert answer.body["totalResults"] == 2
    assert [(r["id"], r["externalId"]) for r in answer.body["Resources"]] == [
        (user["id"], "u-ext"),
        (group["id"], "g-ext"),
    ]
    second = await scim.post("/.search", {"startIndex": 2, "count": 1})
    assert [r["id"] for r in second.body["Resources"]] == [group["id"]]
    only_groups = await scim.post("/.search", {"filter": 'displayName eq "Ops"'})
    assert [r["id"] for r in only_groups.body["Resources"]] == [group["id"]]
    unknown = await scim.post("/.search", {"filter": 'nosuchattribute eq "x"'})
    assert unknown.status == 400
    assert unknown.body["scimType"] == "invalidFilter"


async def test_sorting_on_what_cannot_be_sorted_is_refused(scim: Scim) -> None:
    await scim.create_user("alice")
    unmapped = await scim.get("/Users?sortBy=profileUrl")
    assert unmapped.status == 400
    assert unmapped.body["scimType"] == "invalidValue"
    assert "profileUrl" in unmapped.body["detail"]
    unknown = await scim.get("/Users?sortBy=nosuchattribute")
    assert unknown.status == 400
    assert unknown.body["scimType"] == "invalidPath"
    not_a_number = await scim.get("/Users?count=ten")
    assert not_a_number.status == 400
    assert not_a_number.body["scimType"] == "invalidValue"


async def test_a_stored_value_the_model_refuses_does_not_block_a_patch(scim: Scim) -> None:
    user = await scim.create_user("legacy", emails=[{"type": "work", "value": "l@example.com"}])
    email_field = "mail" if scim.backend.name == "ldap" else "email"
    await scim.backend.set_user_field("legacy", email_field, "not-an-email")
    answer = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "title", "value": "x"}
    )
    assert answer.status == 200, answer.body
    assert answer.body["title"] == "x"
    assert answer.body["emails"] == [{"type": "work", "value": "not-an-email"}]
    fixed = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "fixed@example.com"},
    )
    assert fixed.body["emails"] == [{"type": "work", "value": "fixed@example.com"}]


async def test_a_derived_display_name_follows_the_names_until_the_client_sends_one(
    scim: Scim,
) -> None:
    """A PATCH renaming a user moves the derived displayName along, as a PUT does (an
    identity provider renames by PATCH); once the client sets one, it is kept."""
    user = await scim.create_user("ada", name={"givenName": "Ada", "familyName": "Lovelace"})
    assert user["displayName"] == "Ada Lovelace"  # derived: the client sent none
    path = f"/Users/{user['id']}"
    renamed = await scim.patch(path, {"op": "replace", "path": "name.familyName", "value": "King"})
    assert renamed.body["name"]["familyName"] == "King"
    assert renamed.body["displayName"] == "Ada King"
    # And a PUT after that PATCH still finds it derived (it froze there before).
    put = await scim.put(
        path,
        {
            "schemas": [USER_SCHEMA],
            "userName": "ada",
            "name": {"givenName": "Augusta", "familyName": "King"},
        },
    )
    assert put.body["displayName"] == "Augusta King"
    chosen = await scim.patch(path, {"op": "replace", "path": "displayName", "value": "Countess"})
    assert chosen.body["displayName"] == "Countess"
    renamed = await scim.patch(path, {"op": "replace", "path": "name.givenName", "value": "Ada"})
    assert renamed.body["displayName"] == "Countess"  # the client's own: kept


async def test_names_added_by_patch_to_a_user_created_without_them_derive_the_display_name(
    scim: Scim,
) -> None:
    """Created with a userName alone (nothing to derive displayName from), then named by
    PATCH, as identity providers do: the user gets the displayName a POST with the names
    would have given it (it stayed empty)."""
    user = await scim.create_user("nameless")
    assert "displayName" not in user
    named = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "add", "path": "name.givenName", "value": "Jane"},
        {"op": "add", "path": "name.familyName", "value": "Doe"},
    )
    assert named.status == 200, named.body
    assert named.body["displayName"] == "Jane Doe"
    stored = (await scim.get(f"/Users/{user['id']}")).body
    assert stored["displayName"] == "Jane Doe"


async def test_a_patch_naming_the_derived_value_keeps_what_it_says(scim: Scim) -> None:
    """A rename that also sets displayName, even to the value it held, says what it
    wants: nothing is derived over it."""
    user = await scim.create_user("ada", name={"givenName": "Ada", "familyName": "Lovelace"})
    answer = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "path": "name.familyName", "value": "King"},
        {"op": "replace", "path": "displayName", "value": "Ada Lovelace"},
    )
    assert answer.body["displayName"] == "Ada Lovelace"
    pathless = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "value": {"name.givenName": "Augusta", "displayName": "Ada Lovelace"}},
    )
    assert pathless.body["name"]["givenName"] == "Augusta"
    assert pathless.body["displayName"] == "Ada Lovelace"
    # Under the core schema's URN too (as OneLogin's legacy names become).
    under_urn = await scim.patch(
        f"/Users/{user['id']}",
        {
            "op": "replace",
            "value": {USER_SCHEMA: {"displayName": "Countess", "name": {"familyName": "K"}}},
        },
    )
    assert under_urn.body["name"]["familyName"] == "K"
    assert under_urn.body["displayName"] == "Countess"


async def test_a_member_patch_that_changes_nothing_keeps_the_groups_version(scim: Scim) -> None:
    """Adding a member already there and removing one who is not leave the group as it
    was: its ETag, which a client's If-Match holds, stays valid."""
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    created = await scim.post(
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": alice["id"]}]},
    )
    path = f"/Groups/{created.body['id']}"
    version = created.headers["ETag"]
    again = await scim.patch(
        path, {"op": "add", "path": "members", "value": [{"value": alice["id"]}]}
    )
    assert again.status == 204, again.body
    assert again.headers["ETag"] == version
    absent = await scim.patch(path, {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'})
    assert absent.status == 204, absent.body
    assert absent.headers["ETag"] == version
    assert (await scim.get(path)).headers["ETag"] == version
    added = await scim.patch(
        path, {"op": "add", "path": "members", "value": [{"value": bob["id"]}]}
    )
    assert added.headers["ETag"] != version


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": 'emails[value eq "b@example.com"].value', "value": "c@x.com"},
        {"op": "replace", "path": 'emails[value eq "b@example.com"].type', "value": "work"},
        {"op": "add", "path": 'emails[display eq "zz"].value', "value": "c@example.com"},
        {
            "op": "replace",
            "path": 'emails[type eq "home" or type eq "other"].value',
            "value": "c@x.io",
        },
    ],
)
async def test_a_value_filter_matching_no_entry_is_no_target(
    scim: Scim, operation: dict[str, Any]
) -> None:
    """RFC 7644 §3.5.2.3: a path filter that matches no value has no target (400
    noTarget). Before, one was answered 400 invalidValue, others 200 with nothing written."""
    user = await scim.create_user("ann", emails=[{"type": "work", "value": "a@example.com"}])
    path = f"/Users/{user['id']}"
    answer = await scim.patch(path, {"op": "replace", "path": "title", "value": "Boss"}, operation)
    assert answer.status == 400, answer.body
    assert answer.body["scimType"] == "noTarget"
    kept = await scim.get(path)
    assert kept.body["emails"] == [{"type": "work", "value": "a@example.com"}]
    assert "title" not in kept.body  # the operation before it was not written either


async def test_a_type_filter_matching_no_entry_creates_it(scim: Scim) -> None:
    """Entra's `replace emails[type eq "work"].value` on a user without a work email: the
    entry the filter describes is created (and `primary eq true` alike)."""
    user = await scim.create_user("ann")
    path = f"/Users/{user['id']}"
    answer = await scim.patch(
        path, {"op": "replace", "path": 'emails[type eq "work"].value', "value": "a@example.com"}
    )
    assert answer.status == 200, answer.body
    assert answer.body["emails"] == [{"type": "work", "value": "a@example.com"}]


async def test_a_patch_removing_every_source_of_a_derived_value_clears_it(scim: Scim) -> None:
    """As a PUT without the names does: the displayName made of them does not stay behind
    showing names the PATCH removed."""
    user = await scim.create_user("ada", name={"givenName": "Ada", "familyName": "Lovelace"})
    path = f"/Users/{user['id']}"
    half = await scim.patch(path, {"op": "remove", "path": "name.givenName"})
    assert half.body["displayName"] == "Lovelace"
    gone = await scim.patch(path, {"op": "remove", "path": "name"})
    assert gone.status == 200, gone.body
    assert "displayName" not in gone.body
    assert "name" not in gone.body or not gone.body["name"].get("formatted")
    assert "displayName" not in (await scim.get(path)).body


async def test_a_derived_value_too_long_says_what_it_is_made_of(
    sqlite_direct: SqlDirect, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each name fits its column; "given family", which name.formatted and displayName are
    # made of when the client sends neither, does not: the client is told why.
    scim = await serve(sqlite_direct, tmp_path, aiohttp_client, monkeypatch)
    name = {"givenName": "g" * 200, "familyName": "f" * 100}
    body = {"schemas": [USER_SCHEMA], "userName": "long", "name": name}
    answer = await scim.post("/Users", body)
    assert (answer.status, answer.body["scimType"]) == (400, "invalidValue")
    detail = answer.body["detail"]
    assert detail.endswith(
        "the value is too long (at most 255 characters) (unless sent, it is made as "
        "{name.givenName} {name.familyName})"
    ), detail
    assert detail.split(":")[0] in ("name.formatted", "displayName")
    sent = {**body, "displayName": "Long", "name": {**name, "formatted": "G F"}}
    assert (await scim.post("/Users", sent)).status == 201
