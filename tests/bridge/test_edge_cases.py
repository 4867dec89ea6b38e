"""Edge cases found in review: each names the behaviour it guards."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from direct import user_state
from scim_client import ENTERPRISE, GROUP_SCHEMA, PATCH_SCHEMA, USER_SCHEMA, Scim

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MEMBERS_URN = f"{GROUP_SCHEMA}:members"


def q(filter_: str) -> str:
    return quote(filter_, safe="")


def patch(*operations: dict[str, object]) -> dict[str, object]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


async def _group_with(scim: Scim, *member_ids: str) -> str:
    answer = await scim.post(
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Probe",
            "members": [{"value": each} for each in member_ids],
        },
    )
    assert answer.status == 201, answer.body
    return str(answer.body["id"])


async def _member_ids(scim: Scim, group_id: str) -> set[str]:
    answer = await scim.get(f"/Groups/{group_id}")
    assert answer.status == 200, answer.body
    return {member["value"] for member in answer.body.get("members", [])}


async def test_urn_qualified_members_add_is_applied(scim: Scim) -> None:
    # a PATCH whose path is the fully qualified `...:Group:members` (RFC 7644 §3.10 allows the
    # schema URN prefix) adds the member.
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    gid = await _group_with(scim, alice["id"])
    answer = await scim.patch(
        f"/Groups/{gid}", {"op": "add", "path": MEMBERS_URN, "value": [{"value": bob["id"]}]}
    )
    assert answer.status == 204, answer.body
    assert await _member_ids(scim, gid) == {alice["id"], bob["id"]}


async def test_urn_qualified_member_remove_is_applied(scim: Scim) -> None:
    # `remove ...:Group:members[value eq "X"]` removes X (a deprovisioning step).
    alice = await scim.create_user("alice")
    gid = await _group_with(scim, alice["id"])
    path = f'{MEMBERS_URN}[value eq "{alice["id"]}"]'
    answer = await scim.patch(f"/Groups/{gid}", {"op": "remove", "path": path})
    assert answer.status == 204, answer.body
    assert await _member_ids(scim, gid) == set()


async def test_urn_qualified_members_in_a_pathless_value_are_applied(scim: Scim) -> None:
    # a path-less add whose value is keyed by the qualified members path adds the member.
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    gid = await _group_with(scim, alice["id"])
    answer = await scim.patch(
        f"/Groups/{gid}", {"op": "add", "value": {MEMBERS_URN: [{"value": bob["id"]}]}}
    )
    assert answer.status == 204, answer.body
    assert await _member_ids(scim, gid) == {alice["id"], bob["id"]}


async def test_a_huge_start_index_is_not_a_500(scim: Scim) -> None:
    # A startIndex past every backend's integer range is an empty page, not a driver error.
    await scim.create_user("alice")
    answer = await scim.get("/Users?startIndex=99999999999999999999999")
    assert answer.status == 200, answer.body
    assert answer.body["Resources"] == []


async def test_a_huge_start_index_at_the_root_is_not_a_500(scim: Scim) -> None:
    # Same as above for POST /.search.
    await scim.create_user("alice")
    answer = await scim.post(
        "/.search", {"schemas": [SEARCH_REQUEST], "startIndex": 99999999999999999999999}
    )
    assert answer.status == 200, answer.body


async def test_a_lone_surrogate_in_a_body_is_400(scim: Scim) -> None:
    # 400 (the JSON escape \ud800 decodes to a string that is not valid Unicode text).
    await scim.create_user("alice")
    raw = (
        b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
        b'"Operations":[{"op":"replace","path":"title","value":"\\ud800"}]}'
    )
    answer = await scim.request("PATCH", "/Users/1", raw=raw)
    assert answer.status == 400, answer.body
    assert answer.body["scimType"] == "invalidSyntax"


async def test_a_nul_character_is_refused_alike_by_every_backend(scim: Scim) -> None:
    # PostgreSQL cannot store U+0000, a directory would cut the value: 400 everywhere.
    user = await scim.create_user("alice")
    created = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "nul\u0000x"})
    patched = await scim.patch(
        f"/Users/{user['id']}", {"op": "replace", "path": "title", "value": "a\u0000b"}
    )
    for answer in (created, patched):
        assert (answer.status, answer.body.get("scimType")) == (400, "invalidValue")
        assert "NUL" in answer.body["detail"]
    assert "title" not in (await scim.get(f"/Users/{user['id']}")).body
    with_nul = 'userName eq "a' + chr(0) + 'b"'
    found = await scim.get(f"/Users?filter={q(with_nul)}")
    assert (found.status, found.body.get("scimType")) == (400, "invalidFilter")
    # An escaped backslash before u0000 is text, not a NUL.
    kept = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "back\\u0000"})
    assert kept.status == 201, kept.body


async def test_a_lone_surrogate_in_a_search_filter_is_400(scim: Scim) -> None:
    # 400 invalidFilter/invalidValue.
    answer = await scim.request(
        "POST", "/Users/.search", raw=b'{"filter": "userName eq \\"\\ud800\\""}'
    )
    assert answer.status == 400, answer.body


async def test_root_search_keeps_users_matching_the_other_side_of_an_or(scim: Scim) -> None:
    # RFC 7644 §3.4.2.1: `members pr` is false on
    # Users, so `displayName eq "Shared" or members pr` still matches the user named "Shared".
    user = await scim.create_user("alice", displayName="Shared")
    await _group_with(scim, user["id"])
    answer = await scim.post(
        "/.search",
        {"schemas": [SEARCH_REQUEST], "filter": 'displayName eq "Shared" or members pr'},
    )
    assert answer.status == 200, answer.body
    assert user["id"] in {r["id"] for r in answer.body["Resources"]}


async def test_root_search_keeps_one_type_by_meta_resource_type(scim: Scim) -> None:
    # meta.resourceType is known without the backend (RFC 7643 §3.1): the way to narrow a
    # search at the root (RFC 7644 §3.4.3) to one type.
    user = await scim.create_user("alice")
    group = await _group_with(scim, user["id"])
    for written, expected in [
        ('meta.resourceType eq "User"', [user["id"]]),
        ('meta.resourceType eq "Group"', [group]),
        ('meta.resourceType ne "User"', [group]),
        ("meta.resourceType pr", [user["id"], group]),
    ]:
        answer = await scim.post("/.search", {"schemas": [SEARCH_REQUEST], "filter": written})
        assert answer.status == 200, (written, answer.body)
        assert [r["id"] for r in answer.body["Resources"]] == expected, written
    only_groups = q('meta.resourceType eq "Group"')
    listed = await scim.get(f"/Users?filter={only_groups}")
    assert (listed.status, listed.body["totalResults"]) == (200, 0)


async def test_root_search_sorted_by_a_user_attribute_still_counts_groups(scim: Scim) -> None:
    # sortBy names an attribute Groups lack; groups sort as unassigned (RFC 7644 §3.4.2.3), they
    # are not removed.
    user = await scim.create_user("alice")
    await _group_with(scim, user["id"])
    answer = await scim.post("/.search", {"schemas": [SEARCH_REQUEST], "sortBy": "userName"})
    assert answer.status == 200, answer.body
    assert answer.body["totalResults"] == 2


async def test_root_search_sorts_unassigned_values_of_the_other_types_by_the_order(
    scim: Scim,
) -> None:
    # RFC 7644 §3.4.2.3: resources without the value sort last ascending, first
    # descending; groups have no userName.
    alice, bob = await scim.create_user("alice"), await scim.create_user("bob")
    group = await _group_with(scim, alice["id"])
    for order, expected in [
        ("ascending", [alice["id"], bob["id"], group]),
        ("descending", [group, bob["id"], alice["id"]]),
    ]:
        body = {"schemas": [SEARCH_REQUEST], "sortBy": "userName", "sortOrder": order}
        answer = await scim.post("/.search", body)
        assert answer.status == 200, answer.body
        assert [r["id"] for r in answer.body["Resources"]] == expected, order


async def test_root_search_sorted_by_an_attribute_of_both_types_is_refused(scim: Scim) -> None:
    # Users and groups both have displayName: listed one type after the other, they would
    # not be in the order asked for.
    body = {"schemas": [SEARCH_REQUEST], "sortBy": "displayName"}
    answer = await scim.post("/.search", body)
    assert (answer.status, answer.body.get("scimType")) == (400, "invalidValue"), answer.body
    # Kept to one type by the filter, they sort.
    await scim.create_user("bob", displayName="Bob")
    await scim.create_user("al", displayName="Al")
    body["filter"] = 'meta.resourceType eq "User"'
    answer = await scim.post("/.search", body)
    assert answer.status == 200, answer.body
    assert [r["displayName"] for r in answer.body["Resources"]] == ["Al", "Bob"]


async def test_a_bad_meta_filter_names_no_backend_column(scim: Scim) -> None:
    # 400 invalidFilter whose detail names the SCIM attribute, never the backend column.
    for written in ("meta.lastModified gt 5", 'meta.created co "2020"'):
        answer = await scim.get(f"/Users?filter={q(written)}")
        assert answer.status == 400, answer.body
        assert answer.body.get("scimType") == "invalidFilter", answer.body
        assert "_at" not in answer.body["detail"], answer.body


async def test_joining_a_group_changes_the_users_version(scim: Scim) -> None:
    # the user's `groups` changed, so its version changes and a conditional GET with the old
    # ETag answers 200 with the new groups.
    user = await scim.create_user("alice")
    before = await scim.get(f"/Users/{user['id']}")
    await _group_with(scim, user["id"])
    answer = await scim.get(
        f"/Users/{user['id']}", headers={"If-None-Match": before.headers["ETag"]}
    )
    assert answer.status == 200


async def test_if_none_match_star_on_an_existing_resource_is_304(scim: Scim) -> None:
    # RFC 7232 §3.2: `If-None-Match: *` is false when the resource exists, so a GET
    # answers 304.
    user = await scim.create_user("alice")
    answer = await scim.get(f"/Users/{user['id']}", headers={"If-None-Match": "*"})
    assert answer.status == 304


async def test_if_none_match_on_a_write_of_an_existing_resource_is_412(scim: Scim) -> None:
    # RFC 7232 §3.2: on a method other than GET or HEAD, a false If-None-Match is 412,
    # and nothing is written.
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    version = user["meta"]["version"]
    title = {"op": "replace", "path": "title", "value": "Lead"}
    for tags in ("*", version, f'W/"other", {version}'):
        body = {"schemas": [USER_SCHEMA], "userName": "bob"}
        put = await scim.put(path, body, headers={"If-None-Match": tags})
        patch = await scim.patch(path, title, headers={"If-None-Match": tags})
        delete = await scim.delete(path, headers={"If-None-Match": tags})
        assert (put.status, patch.status, delete.status) == (412, 412, 412), tags
    after = await scim.get(path)
    assert after.body["userName"] == "alice"
    assert "title" not in after.body
    # A version it does not name: the write is made.
    written = await scim.patch(path, title, headers={"If-None-Match": 'W/"other"'})
    assert written.status == 200
    assert written.body["title"] == "Lead"


async def test_if_match_on_a_get_of_another_version_is_412(scim: Scim) -> None:
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    stale = await scim.get(path, headers={"If-Match": 'W/"not-the-version"'})
    assert stale.status == 412
    assert stale.body["status"] == "412"
    current = await scim.get(path, headers={"If-Match": user["meta"]["version"]})
    assert current.status == 200


async def test_an_empty_if_match_fails_every_write_instead_of_waiving_the_condition(
    scim: Scim,
) -> None:
    """`If-Match:` sent empty (a client whose ETag was unset) names no version: no tag
    matches (RFC 7232 §3.1), so 412, where it made the write unconditional."""
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    for blank in ("", "  "):
        empty = {"If-Match": blank}
        title = {"op": "replace", "path": "title", "value": "Lead"}
        answers = [
            await scim.patch(path, title, headers=empty),
            await scim.put(path, {"schemas": [USER_SCHEMA], "userName": "bob"}, headers=empty),
            await scim.delete(path, headers=empty),
        ]
        assert [a.status for a in answers] == [412, 412, 412], [a.body for a in answers]
    after = await scim.get(path)
    assert (after.body["userName"], after.body.get("title")) == ("alice", None)


async def test_a_blank_user_name_is_refused_on_every_write(scim: Scim) -> None:
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    blank = "   "
    answers = [
        await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": blank}),
        await scim.put(path, {"schemas": [USER_SCHEMA], "userName": blank}),
        await scim.patch(path, {"op": "replace", "path": "userName", "value": blank}),
        await scim.patch(path, {"op": "replace", "value": {"userName": blank}}),
    ]
    assert [(a.status, a.body.get("scimType")) for a in answers] == [(400, "invalidValue")] * 4
    assert (await scim.get(path)).body["userName"] == "alice"


@pytest.mark.parametrize("blank", ["   ", "\u00a0", "\t"])
async def test_a_blank_group_name_is_refused_on_every_write(scim: Scim, blank: str) -> None:
    # Accepted, a group of spaces alone could not be found by any filter (Entra matches
    # groups by displayName), and on a directory a second one of NBSP collided with it.
    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"})
    path = f"/Groups/{group.body['id']}"
    answers = [
        await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": blank}),
        await scim.put(path, {"schemas": [GROUP_SCHEMA], "displayName": blank}),
        await scim.patch(path, {"op": "replace", "path": "displayName", "value": blank}),
        await scim.patch(path, {"op": "replace", "value": {"displayName": blank}}),
    ]
    assert [(a.status, a.body.get("scimType")) for a in answers] == [(400, "invalidValue")] * 4
    assert answers[0].body["detail"] == "displayName must not be blank"
    assert (await scim.get(path)).body["displayName"] == "Ops"
    listed = await scim.get("/Groups")
    assert [each["displayName"] for each in listed.body["Resources"]] == ["Ops"]


async def test_a_patch_path_naming_no_attribute_is_refused(scim: Scim) -> None:
    # RFC 7644 §3.5.2: an operation that cannot be applied fails the request; it is never
    # dropped while the answer says 200.
    user = await scim.create_user("alice", title="Engineer")
    path = f"/Users/{user['id']}"
    for target in ("foo", "members", "name.nickname", f"{ENTERPRISE}:costCentre"):
        answer = await scim.patch(
            path,
            {"op": "replace", "path": "title", "value": "Lead"},
            {"op": "replace", "path": target, "value": "x"},
        )
        assert (answer.status, answer.body.get("scimType")) == (400, "invalidPath"), target
    assert (await scim.get(path)).body["title"] == "Engineer"


async def test_an_unqualified_extension_attribute_is_the_extensions(scim: Scim) -> None:
    boss = await scim.create_user("boss")
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    answer = await scim.patch(
        path,
        {"op": "replace", "path": "department", "value": "Sales"},
        {"op": "replace", "path": "manager.value", "value": boss["id"]},
    )
    assert answer.status == 200, answer.body
    enterprise = (await scim.get(path)).body[ENTERPRISE]
    assert enterprise["department"] == "Sales"
    assert enterprise["manager"]["value"] == boss["id"]


async def test_a_path_under_an_undeclared_schema_is_ignored(scim: Scim) -> None:
    # Entra sends its directory's custom extensions whether or not a service declares them.
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:tag"
    answer = await scim.patch(
        path,
        {"op": "replace", "path": custom, "value": "x"},
        {"op": "replace", "path": "title", "value": "Lead"},
    )
    assert answer.status == 200, answer.body
    assert (await scim.get(path)).body["title"] == "Lead"


@pytest.mark.parametrize(
    ("operation", "named"),
    [
        ({"op": "replace", "path": "externalId", "value": {"a": 1}}, "externalId"),
        ({"op": "replace", "path": "title", "value": ["a", "b"]}, "title"),
        ({"op": "replace", "value": {"displayName": {"x": 1}}}, "displayName"),
    ],
)
async def test_a_refused_value_is_named_in_scim_terms(
    scim: Scim, operation: dict[str, object], named: str
) -> None:
    user = await scim.create_user("alice")
    answer = await scim.patch(f"/Users/{user['id']}", operation)
    assert answer.status == 400
    detail = answer.body["detail"]
    assert detail.startswith(f"{named}: "), detail
    for internal in ("validation error", "_", "type=", "User[", "pydantic"):
        assert internal not in detail, detail


async def test_groups_filtered_by_either_of_two_members(scim: Scim) -> None:
    ids = [(await scim.create_user(name))["id"] for name in ("u1", "u2", "u3")]
    made = {}
    for n, member in enumerate(ids):
        body = {"schemas": [GROUP_SCHEMA], "displayName": f"g{n}", "members": [{"value": member}]}
        made[(await scim.post("/Groups", body)).body["id"]] = f"g{n}"
    either = f'members[value eq "{ids[0]}" or value eq "{ids[1]}"]'
    answer = await scim.get(f"/Groups?filter={q(either)}")
    assert answer.status == 200, answer.body
    assert sorted(each["displayName"] for each in answer.body["Resources"]) == ["g0", "g1"]


async def test_a_pathless_value_keyed_by_a_selection_is_applied(scim: Scim) -> None:
    # Keys of a path-less value are paths: one selecting entries is applied like the same
    # operation with that path, never dropped under a 200.
    user = await scim.create_user("alice", emails=[{"type": "work", "value": "a@x.example"}])
    path = f"/Users/{user['id']}"
    answer = await scim.patch(
        path,
        {
            "op": "Replace",
            "value": {'emails[type eq "work"].value': "b@x.example", "title": "Lead"},
        },
    )
    assert answer.status == 200, answer.body
    after = (await scim.get(path)).body
    assert [each["value"] for each in after["emails"]] == ["b@x.example"]
    assert after["title"] == "Lead"
    unknown = await scim.patch(path, {"op": "replace", "value": {"foo": "x", "title": "CTO"}})
    assert (unknown.status, unknown.body.get("scimType")) == (400, "invalidPath")
    assert (await scim.get(path)).body["title"] == "Lead"


LEGACY_ENTERPRISE = "urn:scim:schemas:extension:enterprise:2.0"


async def test_onelogin_enterprise_user_schema_template(scim: Scim) -> None:
    """OneLogin's Enterprise User Schema template names SCIM 1.1's schemas: its department
    and manager were dropped on POST (201) and cleared by a PUT (200)."""
    boss = await scim.create_user("boss")
    legacy = "urn:scim:schemas:extension:enterprise:1.0"
    body = {
        "schemas": ["urn:scim:schemas:core:1.0", legacy],
        "userName": "carol@example.com",
        "emails": {"value": "carol@example.com", "type": "work", "primary": True},
        legacy: {"department": "Sales", "manager": {"managerId": boss["id"]}},
    }
    created = await scim.post("/Users", body)
    assert created.status == 201, created.body
    assert created.body[ENTERPRISE]["department"] == "Sales"
    assert created.body[ENTERPRISE]["manager"]["value"] == boss["id"]
    body[legacy] = {"department": "Marketing", "manager": {"managerId": boss["id"]}}
    replaced = await scim.put(f"/Users/{created.body['id']}", body)
    assert replaced.status == 200, replaced.body
    assert replaced.body[ENTERPRISE]["department"] == "Marketing"
    assert replaced.body[ENTERPRISE]["manager"]["value"] == boss["id"]


async def test_onelogin_legacy_schema_names_in_patch(scim: Scim) -> None:
    user = await scim.create_user("alice")
    path = f"/Users/{user['id']}"
    answer = await scim.patch(
        path,
        {"op": "replace", "path": "urn:scim:schemas:core:2.0:title", "value": "Lead"},
        {
            "op": "replace",
            "path": f"{LEGACY_ENTERPRISE}:department",
            "value": "Sales",
        },
        {"op": "replace", "value": {f"{LEGACY_ENTERPRISE}": {"organization": "EU"}}},
    )
    assert answer.status == 200, answer.body
    after = (await scim.get(path)).body
    assert after["title"] == "Lead"
    assert after[ENTERPRISE]["department"] == "Sales"
    assert after[ENTERPRISE]["organization"] == "EU"


async def test_group_lists_and_searches_show_members_as_get_does(scim: Scim) -> None:
    # `members` is returned by default (RFC 7643 §4.2), in a query's results as in a GET
    # (RFC 7644 §3.4.2): a list of groups must not drop it.
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    gid = await _group_with(scim, alice["id"], bob["id"])
    expected = {alice["id"], bob["id"]}
    assert await _member_ids(scim, gid) == expected
    by_name, by_id = q('displayName eq "Probe"'), q(f'id eq "{gid}"')
    paths = ["/Groups", f"/Groups?filter={by_name}", f"/Groups?filter={by_id}&attributes=members"]
    for path in paths:
        answer = await scim.get(path)
        assert answer.status == 200, answer.body
        [group] = answer.body["Resources"]
        assert {member["value"] for member in group.get("members", [])} == expected, path
    searched = await scim.post(
        "/Groups/.search", {"schemas": [SEARCH_REQUEST], "filter": 'displayName eq "Probe"'}
    )
    assert searched.status == 200, searched.body
    [group] = searched.body["Resources"]
    assert {member["value"] for member in group.get("members", [])} == expected


@pytest.mark.parametrize(
    "filter_",
    ['title eq "\\ud800"', 'userName eq "a\\udfffb"', 'title eq "a\\u0000b"', 'title co "\\u0000"'],
)
async def test_filter_values_no_backend_can_hold_are_400_on_every_backend(
    scim: Scim, filter_: str
) -> None:
    # A lone surrogate or a NUL, spelled by a JSON escape in the filter (RFC 7644 §3.4.2.2
    # takes JSON's strings), reaches no driver: 400 invalidFilter alike everywhere.
    await scim.create_user("alice", title="a")
    listed = await scim.get(f"/Users?filter={q(filter_)}")
    assert (listed.status, listed.body.get("scimType")) == (400, "invalidFilter"), listed.body
    searched = await scim.post("/Users/.search", {"schemas": [SEARCH_REQUEST], "filter": filter_})
    assert (searched.status, searched.body.get("scimType")) == (400, "invalidFilter")


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('title eq ""', set()),
        ('title ne ""', {"alice", "bob"}),
        ('not (title eq "")', {"alice", "bob"}),
        ('title co ""', {"alice"}),
        ('title sw ""', {"alice"}),
        ('title ew ""', {"alice"}),
        ('userName co "" and title pr', {"alice"}),
    ],
)
async def test_comparisons_with_the_empty_string_agree_on_every_backend(
    scim: Scim, filter_: str, expected: set[str]
) -> None:
    # Every string contains "" and none equals it (RFC 7644 §3.4.2.2); a directory cannot
    # evaluate `(title=)` nor encode `(title=**)`, which answered nothing and 500.
    await scim.create_user("alice", title="Engineer")
    await scim.create_user("bob")
    answer = await scim.get(f"/Users?filter={q(filter_)}")
    assert answer.status == 200, answer.body
    assert {user["userName"] for user in answer.body["Resources"]} == expected


async def test_renaming_a_group_gives_its_members_new_etags(scim: Scim) -> None:
    # A member shows the group's name in `groups[].display`: its representation changed,
    # so must its version (RFC 7644 §3.14), or If-None-Match would answer 304 for it.
    alice = await scim.create_user("alice")
    gid = await _group_with(scim, alice["id"])
    before = await scim.get(f"/Users/{alice['id']}")
    renamed = await scim.patch(
        f"/Groups/{gid}", {"op": "replace", "path": "displayName", "value": "Renamed"}
    )
    assert renamed.status in (200, 204), renamed.body
    after = await scim.get(f"/Users/{alice['id']}")
    assert [group["display"] for group in after.body["groups"]] == ["Renamed"]
    assert after.body["meta"]["version"] != before.body["meta"]["version"]
    unchanged = await scim.get(
        f"/Users/{alice['id']}", headers={"If-None-Match": before.body["meta"]["version"]}
    )
    assert unchanged.status == 200


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"[" * 1000 + b"]" * 1000, "nests deeper than 32 levels"),
        (b'{"a":' * 900 + b'"\\u0000"' + b"}" * 900, "nests deeper than 32 levels"),
        (b'{"schemas": [], "userName": "a", "x": ' + b"9" * 5000 + b"}", "a number too long"),
    ],
)
async def test_bodies_that_would_exhaust_the_parser_are_400(
    scim: Scim, raw: bytes, detail: str
) -> None:
    # A 2 KB body nested 1,000 deep overflowed json's recursion, an integer of more than
    # 4,300 digits is refused by int(): both answered 500 with a logged traceback.
    for method, path in (("POST", "/Users"), ("POST", "/Users/.search")):
        answer = await scim.request(method, path, raw=raw)
        assert (answer.status, answer.body["scimType"]) == (400, "invalidSyntax"), answer.body
        assert detail in answer.body["detail"]


@pytest.mark.parametrize(
    ("filter_", "status", "scim_type"),
    [
        (" or ".join(['title eq "x"'] * 3000), 400, "tooMany"),  # 45 KB
        ("not (" * 40 + 'title eq "x"' + ")" * 40, 400, "invalidFilter"),
        ("(" * 33 + 'title eq "x"' + ")" * 33, 400, "invalidFilter"),
        ('title eq "' + "(" * 40 + '"', 200, None),  # parentheses inside a value
        ('title eq "\\"' + "(" * 40 + '"', 200, None),  # after an escaped quote too
        ('"' + '\\"' * 1000, 400, "invalidFilter"),  # a string that never ends
    ],
)
async def test_filters_too_long_or_too_deep_are_refused_before_parsing(
    scim: Scim, filter_: str, status: int, scim_type: str | None
) -> None:
    # Parsing takes time in proportion to the text and holds the service meanwhile (a
    # 700 KB filter took seconds before its 200 comparisons were counted).
    searched = await scim.post("/Users/.search", {"schemas": [SEARCH_REQUEST], "filter": filter_})
    assert searched.status == status, searched.body
    assert searched.body.get("scimType") == scim_type


def test_long_filters_leave_no_parse_in_the_shape_cache() -> None:
    from scim2_models import User

    from bridge import search

    before = len(search._shapes)
    for n in range(5):
        filter_ = " or ".join([f'title eq "{n}"'] * (100 + n))
        search._parsed((User,), {"filter": filter_})
    assert len(search._shapes) == before
    search._parsed((User,), {"filter": 'nickName eq "a" and locale sw "b" and title pr'})
    assert len(search._shapes) == before + 1  # a short one is kept


async def test_a_patch_of_too_many_operations_is_413_and_writes_nothing(scim: Scim) -> None:
    # Each operation is validated and applied while the service serves nothing else.
    user = await scim.create_user("busy", title="before")
    operation = {"op": "replace", "path": "title", "value": "after"}
    lower_case = {"schemas": [PATCH_SCHEMA], "operations": [operation] * 1001}
    refused = await scim.request("PATCH", f"/Users/{user['id']}", lower_case)
    assert refused.status == 413, refused.body  # however the client spells Operations
    refused = await scim.patch(f"/Users/{user['id']}", *[operation] * 1001)
    assert refused.status == 413, refused.body
    assert "at most 1000 operations" in refused.body["detail"]
    assert (await scim.get(f"/Users/{user['id']}")).body["title"] == "before"
    accepted = await scim.patch(f"/Users/{user['id']}", *[operation] * 1000)
    assert accepted.status == 200, accepted.body


@pytest.mark.parametrize("path", ["manager.value", f"{ENTERPRISE}:manager.value"])
async def test_removing_the_managers_value_removes_the_manager(scim: Scim, path: str) -> None:
    """The manager's only writable sub-attribute is its value (RFC 7643 §4.3): removing it
    leaves no manager, as removing `manager` does."""
    boss = await scim.create_user("boss")
    user = await scim.create_user("alice")
    where = f"/Users/{user['id']}"
    answer = await scim.patch(where, {"op": "replace", "path": "manager", "value": boss["id"]})
    assert answer.status == 200, answer.body
    answer = await scim.patch(where, {"op": "remove", "path": path})
    assert answer.status == 200, answer.body
    assert "manager" not in answer.body.get(ENTERPRISE, {})
    assert "manager" not in (await scim.get(where)).body.get(ENTERPRISE, {})


async def test_replacing_the_managers_value_with_nothing_removes_the_manager(scim: Scim) -> None:
    boss = await scim.create_user("boss")
    user = await scim.create_user("alice")
    where = f"/Users/{user['id']}"
    answer = await scim.patch(
        where, {"op": "replace", "path": "manager.value", "value": boss["id"]}
    )
    assert answer.body[ENTERPRISE]["manager"]["value"] == boss["id"]
    answer = await scim.patch(where, {"op": "replace", "path": "manager.value", "value": ""})
    assert answer.status == 200, answer.body
    assert "manager" not in (await scim.get(where)).body.get(ENTERPRISE, {})


@pytest.mark.parametrize(
    "address",
    ["jane@corp.local", "jane@intranet", "Jane.Doe@Contoso.COM", "user@xn--bcher-kva.example"],
)
async def test_an_email_address_is_stored_as_sent(scim: Scim, address: str) -> None:
    """RFC 5321 addresses that a strict validator refuses (a `.local` Active Directory
    domain) or rewrites (domain case, IDNA) are kept as the identity provider sent them,
    and found by the same value."""
    answer = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "jane",
            "emails": [{"value": address, "type": "work"}],
        },
    )
    assert answer.status == 201, answer.body
    assert answer.body["emails"][0]["value"] == address
    by_address = q(f'emails.value eq "{address}"')
    found = await scim.get(f"/Users?filter={by_address}")
    assert [each["id"] for each in found.body["Resources"]] == [answer.body["id"]]
    path = f"/Users/{answer.body['id']}"
    other = address.replace("jane", "joan").replace("user@", "joan@")
    patched = await scim.patch(
        path, {"op": "replace", "path": 'emails[type eq "work"].value', "value": other}
    )
    assert patched.status == 200, patched.body
    assert (await scim.get(path)).body["emails"][0]["value"] == other


async def test_a_put_without_active_keeps_a_disabled_account_disabled(scim: Scim) -> None:
    """RFC 7644 §3.5.1: an attribute left out of a PUT is not asserted; the account state
    stays as it is instead of reading as enabled."""
    user = await scim.create_user("parked", active=False)
    path = f"/Users/{user['id']}"
    answer = await scim.put(path, {"schemas": [USER_SCHEMA], "userName": "parked", "title": "X"})
    assert answer.status == 200, answer.body
    assert answer.body["active"] is False
    assert (await user_state(scim.backend, "parked") or {})["active"] is False
    enabled = await scim.put(path, {"schemas": [USER_SCHEMA], "userName": "parked", "active": True})
    assert enabled.body["active"] is True


async def test_attributes_with_excluded_attributes_is_refused_in_scim_names(scim: Scim) -> None:
    answer = await scim.get("/Users?attributes=userName&excludedAttributes=title")
    assert answer.status == 400, answer.body
    assert answer.body["detail"] == (
        "'attributes' and 'excludedAttributes' are mutually exclusive"
    ), answer.body


async def test_validation_messages_name_no_python_class(scim: Scim) -> None:
    # pydantic's words name the models (`instance of EnterpriseUser`, `ScimFilter`): a
    # client is told SCIM's types instead.
    search = {"schemas": [SEARCH_REQUEST], "filter": 42}
    answer = await scim.post("/Users/.search", search)
    assert (answer.status, answer.body["detail"]) == (400, "filter: expected a string")
    user = {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "x", ENTERPRISE: "manager"}
    answer = await scim.post("/Users", user)
    assert (answer.status, answer.body["detail"]) == (400, "Input should be an object")
    answer = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "y", "name": "N"})
    assert (answer.status, answer.body["detail"]) == (400, "name: Input should be an object")
    created = await scim.create_user("z")
    answer = await scim.request("PATCH", f"/Users/{created['id']}", raw=b'{"Operations": [1]}')
    assert answer.status == 400, answer.body
    assert "[" not in answer.body["detail"], answer.body  # PatchOperation[User[...]] was named
    assert answer.body["detail"].endswith("Input should be an object"), answer.body


async def test_a_boolean_compared_to_anything_else_is_an_invalid_filter(scim: Scim) -> None:
    # `active eq 1` matched nothing under a 200 (and `ne` everything).
    await scim.create_user("alice", active=True)
    for written in ("active eq 1", 'active ne "yes"'):
        answer = await scim.get(f"/Users?filter={q(written)}")
        assert (answer.status, answer.body.get("scimType")) == (400, "invalidFilter"), written
    for written in ("active eq true", 'active eq "True"'):
        answer = await scim.get(f"/Users?filter={q(written)}")
        assert (answer.status, answer.body["totalResults"]) == (200, 1), (written, answer.body)


MANAGER_REMOVALS = [
    {"op": "remove", "path": 'manager[value eq "ID"]'},
    {"op": "Remove", "path": f'{ENTERPRISE}:manager[value eq "ID"]'},
    {"op": "Remove", "path": f"{ENTERPRISE}:manager", "value": [{"$ref": None, "value": "ID"}]},
    {"op": "remove", "path": "manager", "value": {"value": "ID"}},
]


@pytest.mark.parametrize("removal", MANAGER_REMOVALS)
async def test_entra_removes_the_manager_it_names(scim: Scim, removal: dict[str, object]) -> None:
    """Entra names the manager it removes (a filter, or a value as for members): removed
    when it is the manager, left alone when it is another (a remove whose selection
    matches nothing changes nothing). It was 400 invalidFilter, so no manager could go."""
    boss = await scim.create_user("boss")
    other = await scim.create_user("other")
    report = await scim.create_user("report", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})
    path = f"/Users/{report['id']}"

    def naming(manager: dict[str, str]) -> dict[str, object]:
        return dict(json.loads(json.dumps(removal).replace("ID", manager["id"])))

    kept = await scim.patch(path, naming(other))
    assert kept.status == 200, kept.body
    assert kept.body[ENTERPRISE]["manager"]["value"] == boss["id"]
    removed = await scim.patch(path, naming(boss))
    assert removed.status == 200, removed.body
    assert ENTERPRISE not in (await scim.get(path)).body


async def test_a_manager_removal_on_a_group_shifts_no_other_operation(scim: Scim) -> None:
    """A group's member operations are split out before the others are applied: the
    condition of Entra's manager removal (meaningless on a group) was looked up by place,
    and skipped the displayName replace that came after it."""
    alice = await scim.create_user("alice")
    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g"})
    path = f"/Groups/{group.body['id']}"
    answer = await scim.patch(
        path,
        {"op": "add", "path": "members", "value": [{"value": alice["id"]}]},
        {"op": "remove", "path": "manager", "value": "zz"},
        {"op": "replace", "path": "displayName", "value": "renamed"},
    )
    assert answer.status in (200, 204), answer.body
    assert (await scim.get(path)).body["displayName"] == "renamed"


async def test_a_manager_filter_with_a_bad_escape_is_400(scim: Scim) -> None:
    report = await scim.create_user("report")
    answer = await scim.patch(
        f"/Users/{report['id']}", {"op": "remove", "path": 'manager[value eq "\\u00"]'}
    )
    assert (answer.status, answer.body.get("scimType")) == (400, "invalidFilter"), answer.body


async def test_member_ids_naming_no_user_are_named_in_the_400_and_nothing_is_written(
    scim: Scim,
) -> None:
    """Among many members, the admin reads which ids were wrong: one not shaped as this
    backend's ids at all, and one that was a user's until it was deleted."""
    alice = await scim.create_user("alice")
    gone = await scim.create_user("gone")
    assert (await scim.delete(f"/Users/{gone['id']}")).status == 204
    stranger = "not-an-id-of-this-service"
    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g"})
    path = f"/Groups/{group.body['id']}"
    for ghosts in ([gone["id"]], [stranger], [gone["id"], stranger]):
        members = [{"value": alice["id"]}, *({"value": ghost} for ghost in ghosts)]
        answers = [
            await scim.patch(path, {"op": "add", "path": "members", "value": members}),
            await scim.post(
                "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "h", "members": members}
            ),
        ]
        for answer in answers:
            assert (answer.status, answer.body["scimType"]) == (400, "invalidValue"), answer.body
            detail = answer.body["detail"]
            assert detail.startswith("members: no user has th"), detail
            assert all(f'"{ghost}"' in detail for ghost in ghosts), detail
            assert alice["id"] not in detail
        assert not (await scim.get(path)).body.get("members")
    named_h = quote('displayName eq "h"')
    listed = await scim.get(f"/Groups?filter={named_h}")
    assert listed.body["totalResults"] == 0


async def test_a_value_that_is_the_mappings_stand_in_for_none_is_refused(ldap_scim: Scim) -> None:
    """The OpenLDAP preset stores `-` in sn when a user has no family name (inetOrgPerson
    requires one) and reads it back as none: a family name of `-` was answered 201 and
    then shown as absent. It is refused, and nothing is written."""
    scim = ldap_scim
    answer = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "dash",
            "name": {"givenName": "Ann", "familyName": "-"},
        },
    )
    assert (answer.status, answer.body.get("scimType")) == (400, "invalidValue"), answer.body
    assert "name.familyName" in answer.body["detail"]
    named_dash = quote('userName eq "dash"')
    listed = await scim.get(f"/Users?filter={named_dash}")
    assert listed.body["totalResults"] == 0
    ann = await scim.create_user("ann", name={"givenName": "Ann", "familyName": "Lee"})
    operation = {"op": "replace", "path": "name.familyName", "value": "-"}
    answer = await scim.patch(f"/Users/{ann['id']}", operation)
    assert (answer.status, answer.body.get("scimType")) == (400, "invalidValue"), answer.body
    assert (await scim.get(f"/Users/{ann['id']}")).body["name"]["familyName"] == "Lee"
    # Only the stand-in itself reads back as none: "- " is a value, kept and shown.
    operation = {"op": "replace", "path": "name.familyName", "value": "- "}
    assert (await scim.patch(f"/Users/{ann['id']}", operation)).status == 200
    assert (await scim.get(f"/Users/{ann['id']}")).body["name"]["familyName"] == "- "
    deactivate = {"op": "replace", "path": "active", "value": False}  # the name is not sent
    assert (await scim.patch(f"/Users/{ann['id']}", deactivate)).status == 200
    # A user whose given name renders the formatted name's default as "-" is made: that
    # value is the mapping's, not the client's.
    dash = {"schemas": [USER_SCHEMA], "userName": "given", "name": {"givenName": "-"}}
    assert (await scim.post("/Users", dash)).status == 201
    removed = await scim.patch(f"/Users/{ann['id']}", {"op": "remove", "path": "name.familyName"})
    assert removed.status == 200, removed.body  # no value at all is what `-` stands for
    assert "familyName" not in (await scim.get(f"/Users/{ann['id']}")).body.get("name", {})
