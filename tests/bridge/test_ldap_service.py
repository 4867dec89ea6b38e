"""The bridge in front of OpenLDAP: start-up checks, outages, directory errors as SCIM errors."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import quote

import ldap3
import pytest
from ports import free_port
from scim_client import (
    ENTERPRISE,
    GROUP_SCHEMA,
    LDAP_PASSWORD_ENV,
    TOKEN,
    USER_SCHEMA,
    Scim,
    write_ldap_config,
)
from served import serve_config
from slapd import SlapdServer, start_slapd
from test_cli import write_config

from bridge.cli import main


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, slapd: SlapdServer) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    monkeypatch.setenv(LDAP_PASSWORD_ENV, slapd.admin_password)


@pytest.mark.usefixtures("environment")
def test_check_passes_on_the_openldap_preset(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_ldap_config(tmp_path, slapd, slapd.make_tree("check-ok"))
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "ok: mapping ldap-openldap: users and groups" in out


@pytest.mark.usefixtures("environment")
def test_check_warns_of_a_failover_server_that_does_not_answer(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    config = write_ldap_config(tmp_path, slapd, slapd.make_tree("check-failover"))
    config.write_text(
        config.read_text().replace(f'urls = ["{slapd.url}"]', f'urls = ["{dead}", "{slapd.url}"]')
    )
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        f"warning: {config}: connector: urls: {dead}: connection refused; another server "
        "answers, and is used while this one is down"
    ) in out
    assert "ok: the backend is reachable and holds everything the mapping names" in out


MISSPELLED = """
[users]
object = "ou=people"
key = "entryUUID"
classes = ["inetOrgPersn"]
rdn = "uid={userName}"
[users.attributes]
userName = "uid"
title = "titel"
"""


@pytest.mark.usefixtures("environment")
def test_check_names_classes_and_attributes_the_directory_does_not_know(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "people.toml").write_text(MISSPELLED)
    tree = slapd.make_tree("check-typos")
    config = write_ldap_config(tmp_path, slapd, tree, mapping="people.toml")
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{config}: connector: users: the directory's schema has no object class 'inetOrgPersn' "
        "(did you mean 'inetOrgPerson'?)",
        f"{config}: connector: users: the directory's schema has no attribute type 'titel' "
        "(did you mean 'title'?)",
    ]


@pytest.mark.usefixtures("environment")
def test_check_names_a_container_that_does_not_exist(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = slapd.make_tree("check-no-people")
    connection = slapd.connection()
    try:
        assert connection.delete(f"ou=people,{tree}")
    finally:
        connection.unbind()
    config = write_ldap_config(tmp_path, slapd, tree)
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{config}: connector: users: the entry 'ou=people,{tree}' does not exist"
    ]


@pytest.mark.parametrize("base_dn", ["dc=example,dc=com", "ou=nowhere,dc=example,dc=org"])
@pytest.mark.usefixtures("environment")
def test_check_names_a_base_dn_that_does_not_exist_and_the_trees_the_directory_holds(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], base_dn: str
) -> None:
    """Not every container under it missing, which pointed at the mapping."""
    config = write_ldap_config(tmp_path, slapd, base_dn)
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{config}: connector: base_dn: the entry '{base_dn}' does not exist; the directory "
        f"holds {slapd.base_dn}"
    ]


@pytest.mark.usefixtures("environment")
def test_check_says_an_archive_written_as_a_full_dn_is_relative_to_base_dn(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = slapd.make_tree("check-archive-whole")
    moved = f'[users]\non_delete = "move"\narchive = "ou=archive,{tree}"\n'
    config = write_ldap_config(tmp_path, slapd, tree, extra=moved)
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{config}: users.archive: the entry 'ou=archive,{tree},{tree}' does not exist: "
        "archive is relative to connector.base_dn, which it already ends with; write "
        'archive = "ou=archive"'
    ]


@pytest.mark.usefixtures("environment")
def test_check_says_a_mapping_object_written_as_a_full_dn_is_relative_to_base_dn(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = slapd.make_tree("check-object-whole")
    preset = pathlib.Path(__file__).parents[2] / "mappings" / "ldap-openldap.toml"
    mapping = tmp_path / "people.toml"
    mapping.write_text(
        preset.read_text().replace('object = "ou=people"', f'object = "ou=people,{tree}"')
    )
    config = write_ldap_config(tmp_path, slapd, tree, mapping="people.toml")
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{mapping}: users.object: the entry 'ou=people,{tree},{tree}' does not exist: "
        "object is relative to connector.base_dn, which it already ends with; write "
        'object = "ou=people"'
    ]


WRONG_PASSWORD = "not-the-password-4711"


@pytest.mark.parametrize("wrong", ["bind_dn", "password"])
@pytest.mark.usefixtures("environment")
def test_check_names_the_settings_of_credentials_the_directory_refuses(
    slapd: SlapdServer,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    wrong: str,
) -> None:
    """The bind DN's key, and the password's variable by its name: never the password."""
    config = write_ldap_config(tmp_path, slapd, slapd.make_tree(f"check-bind-{wrong}"))
    if wrong == "bind_dn":
        config.write_text(config.read_text().replace(slapd.admin_dn, f"cn=admn,{slapd.base_dn}"))
    else:
        monkeypatch.setenv(LDAP_PASSWORD_ENV, WRONG_PASSWORD)
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{config}: connector: the directory refused the service account's credentials: "
        f"check connector.bind_dn, and the password in the environment variable "
        f"{LDAP_PASSWORD_ENV} (named by connector.password_env)"
    ]
    assert WRONG_PASSWORD not in err
    assert slapd.admin_password not in err


async def test_an_outage_is_503_with_retry_after_and_ends_by_itself(
    tmp_path: pathlib.Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = start_slapd(tmp_path / "slapd")
    try:
        monkeypatch.setenv(LDAP_PASSWORD_ENV, own.admin_password)
        tree = own.make_tree("outage")
        config = write_ldap_config(tmp_path, own, tree)
        scim = await serve_config(config, aiohttp_client, None)
        user = await scim.create_user("steady")
        own.stop()
        down = await scim.get(f"/Users/{user['id']}")
        assert down.status == 503
        assert down.headers["Retry-After"] == "5"
        assert down.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert "ldap" not in down.body["detail"].lower()
        assert (
            await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": "x"})
        ).status == 503
        own.start()
        back = await scim.get(f"/Users/{user['id']}")
        assert back.status == 200, back.body
        assert back.body["userName"] == "steady"
    finally:
        own.stop()


async def test_a_value_the_directory_refuses_is_400_naming_the_scim_attribute(
    ldap_scim: Scim,
) -> None:
    scim = ldap_scim
    # mail is an IA5 string: the directory refuses non-ASCII addresses.
    answer = await scim.post(
        "/Users",
        {
            "schemas": [USER_SCHEMA],
            "userName": "jo",
            "emails": [{"type": "work", "value": "jö@exämple.com"}],
        },
    )
    assert answer.status == 400, answer.body
    assert answer.body["scimType"] == "invalidValue"
    assert answer.body["detail"].startswith('emails[type eq "work"].value: ')
    assert "mail" not in answer.body["detail"].replace("emails", "")
    assert await scim.backend.user("jo") is None


async def test_a_write_left_half_done_is_reported_in_scim_terms(
    ldap_scim: Scim, monkeypatch: pytest.MonkeyPatch
) -> None:
    scim = ldap_scim
    user = await scim.create_user("jdoe", title="Engineer")

    def refused(self: ldap3.Connection, *args: Any, **kwargs: Any) -> Any:
        raise ldap3.core.exceptions.LDAPUnwillingToPerformResult("refused")

    original = ldap3.Connection.modify
    calls: list[str] = []

    def modify_once(self: ldap3.Connection, dn: str, changes: Any, controls: Any = None) -> Any:
        calls.append(dn)
        if len(calls) > 1:
            raise ldap3.core.exceptions.LDAPBusyResult("busy")
        return original(self, dn, changes, controls=controls)

    monkeypatch.setattr(ldap3.Connection, "modify_dn", refused)
    monkeypatch.setattr(ldap3.Connection, "modify", modify_once)
    answer = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "path": "userName", "value": "john"},
        {"op": "replace", "path": "title", "value": "Lead"},
    )
    assert answer.status == 500
    assert answer.body["detail"].endswith("written nonetheless: title")
    monkeypatch.undo()
    stored = await scim.backend.user("jdoe")
    assert stored is not None
    assert stored["title"] == ["Lead"]


DATABASE_PACKAGES = ("sqlalchemy", "asyncpg", "aiomysql", "aiosqlite")

LOADED_PACKAGES = """
import asyncio, os, sys
from pathlib import Path
from bridge.cli import application
app, settings = asyncio.run(application(Path(sys.argv[1]), os.environ))
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def packages_loaded_by_a_service(config: pathlib.Path) -> set[str]:
    """The top-level packages a fresh interpreter has loaded once it has checked `config`
    and built the application, as `serve` does before it listens."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED_PACKAGES, str(config)],
        env=os.environ | {"PYTHONPATH": str(pathlib.Path(__file__).parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(done.stdout.split())


@pytest.mark.usefixtures("environment")
def test_a_service_on_a_directory_never_loads_the_database_libraries(
    slapd: SlapdServer, tmp_path: pathlib.Path
) -> None:
    """SQLAlchemy and the drivers take some 20 MB per worker that a directory never uses."""
    ldap_config = write_ldap_config(tmp_path, slapd, slapd.make_tree("no-sql"))
    loaded = packages_loaded_by_a_service(ldap_config)
    assert {"ldap3", "aiohttp", "bridge"} <= loaded  # the probe sees what a service loads
    assert loaded.isdisjoint(DATABASE_PACKAGES)
    (tmp_path / "sql").mkdir()
    sql_config = write_config(tmp_path / "sql")
    assert {"sqlalchemy", "aiosqlite"} <= packages_loaded_by_a_service(sql_config)


async def test_a_name_too_long_for_the_directory_is_400_not_a_busy_server(
    ldap_scim: Scim,
) -> None:
    # back-mdb refuses a name over ~245 bytes with a bare `other` (80): that is no outage
    # to retry (503) but a value it cannot store, and nothing of the request is written.
    scim = ldap_scim
    long_name = "x" * 300
    created = await scim.post("/Users", {"schemas": [USER_SCHEMA], "userName": long_name})
    assert (created.status, created.body["scimType"]) == (400, "invalidValue"), created.body
    assert created.body["detail"].startswith("userName: ")
    assert await scim.backend.user(long_name) is None

    user = await scim.create_user("short", title="Engineer")
    renamed = await scim.patch(
        f"/Users/{user['id']}",
        {"op": "replace", "value": {"userName": "é" * 150, "title": "Chief"}},
    )
    assert (renamed.status, renamed.body["scimType"]) == (400, "invalidValue"), renamed.body
    assert renamed.body["detail"].startswith("userName: ")
    kept = await scim.get(f"/Users/{user['id']}")
    assert (kept.body["userName"], kept.body["title"]) == ("short", "Engineer")

    group = await scim.post("/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "g" * 300})
    assert (group.status, group.body["scimType"]) == (400, "invalidValue"), group.body
    assert group.body["detail"].startswith("displayName: ")


@pytest.mark.usefixtures("environment")
def test_check_names_an_archive_that_does_not_exist(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Else a DELETE disables the user, fails to move it, and answers 404 as if it were gone.
    tree = slapd.make_tree("check-archive")
    moved = '[users]\non_delete = "move"\narchive = "{}"\n'
    config = write_ldap_config(tmp_path, slapd, tree, extra=moved.format("ou=archiv"))
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{config}: users.archive: the entry 'ou=archiv,{tree}' does not exist"
    ]
    config = write_ldap_config(tmp_path, slapd, tree, extra=moved.format("ou=archive"))
    assert main(["check", "--config", str(config)]) == 0


@pytest.mark.usefixtures("environment")
def test_a_mapping_problem_found_in_the_directory_names_the_mapping_file(
    slapd: SlapdServer, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preset = pathlib.Path(__file__).parents[2] / "mappings" / "ldap-openldap.toml"
    mapping = tmp_path / "people.toml"
    mapping.write_text(preset.read_text().replace('title = "title"', 'title = "uidNumber"'))
    tree = slapd.make_tree("check-attribution")
    config = write_ldap_config(tmp_path, slapd, tree, mapping="people.toml")
    assert main(["check", "--config", str(config)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{mapping}: users.attributes.title: 'uidNumber' "), line


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("name.familyName pr", {"alice"}),
        ("name pr", {"alice"}),
        ("not (name.familyName pr)", {"bob"}),
        ('name.familyName eq "-"', set()),
        ('name.familyName co "-"', set()),
        ('name.familyName ne "Smith"', {"bob"}),
        ('name.familyName ne "-"', {"alice", "bob"}),
        ('name.familyName sw "S"', {"alice"}),
    ],
)
async def test_the_stand_in_for_no_family_name_is_no_value_in_filters(
    ldap_scim: Scim, filter_: str, expected: set[str]
) -> None:
    # The preset writes `sn: -` for a user without a family name (sn is required) and
    # reads it back as none: filters see none too, as they do on every other backend.
    scim = ldap_scim
    await scim.create_user("alice", name={"givenName": "Alice", "familyName": "Smith"})
    await scim.create_user("bob")
    answer = await scim.get(f"/Users?filter={quote(filter_, safe='')}")
    assert answer.status == 200, answer.body
    assert {user["userName"] for user in answer.body["Resources"]} == expected


@pytest.mark.usefixtures("environment")
def test_check_on_an_unreachable_directory_prints_one_line(
    slapd: SlapdServer, tmp_path: pathlib.Path
) -> None:
    # As an admin runs it (a process of its own: pytest's log capture would hide the
    # connector's own log record, which logging's last-resort handler printed too).
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        port = closed.getsockname()[1]
        config = write_ldap_config(tmp_path, slapd, slapd.base_dn)
        config.write_text(config.read_text().replace(slapd.url, f"ldap://127.0.0.1:{port}"))
        checked = subprocess.run(
            [sys.executable, "-m", "bridge", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        )
    finally:
        closed.close()
    assert checked.returncode == 2
    lines = checked.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{config}: connector: "), lines


@pytest.mark.parametrize(
    ("order", "expected"),
    [("ascending", ["carol", "alice", "bob"]), ("descending", ["bob", "alice", "carol"])],
)
async def test_the_stand_in_for_no_family_name_sorts_as_no_value(
    ldap_scim: Scim, order: str, expected: list[str]
) -> None:
    # Users without a value come last ascending, first descending (RFC 7644 §3.4.2.3);
    # the stored `sn: -` sorted first, before "Adams".
    scim = ldap_scim
    await scim.create_user("alice", name={"givenName": "Alice", "familyName": "Smith"})
    await scim.create_user("bob")
    await scim.create_user("carol", name={"givenName": "Carol", "familyName": "Adams"})
    answer = await scim.get(f"/Users?sortBy=name.familyName&sortOrder={order}")
    assert answer.status == 200, answer.body
    assert [user["userName"] for user in answer.body["Resources"]] == expected


async def test_sorting_by_the_manager_is_refused_in_a_directory(ldap_scim: Scim) -> None:
    # The directory holds the manager's DN: users came in the order of their managers'
    # DNs, not of the ids the answer shows (RFC 7644 §3.4.2.3).
    scim = ldap_scim
    zed = await scim.create_user("zed")
    amy = await scim.create_user("amy")
    for name, boss in (("one", zed), ("two", amy)):
        manager = {ENTERPRISE: {"manager": {"value": boss["id"]}}}
        await scim.create_user(name, schemas=[USER_SCHEMA, ENTERPRISE], **manager)
    for path in (f"{ENTERPRISE}:manager.value", "manager.value"):
        answer = await scim.get(f"/Users?sortBy={quote(path)}")
        assert answer.status == 400, answer.body
        assert answer.body["scimType"] == "invalidValue"
        assert "manager" in answer.body["detail"]
        assert "uid=" not in answer.body["detail"]
    assert (await scim.get("/Users?sortBy=userName")).status == 200


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew"])
async def test_a_value_of_spaces_alone_is_refused_not_misread(ldap_scim: Scim, op: str) -> None:
    """slapd drops the spaces around a value: `ew " "` matched every user and `sw " "`
    none, where SQL compares the spaces. Refused, as what the directory cannot evaluate is."""
    scim = ldap_scim
    await scim.create_user("trail ")
    await scim.create_user("plain")
    spaces = quote(f'userName {op} "  "')
    answer = await scim.get(f"/Users?filter={spaces}")
    assert (answer.status, answer.body.get("scimType")) == (400, "invalidFilter"), answer.body


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ('externalId eq "AbC-1"', {"upper"}),
        ('externalId eq "abc-1"', {"lower"}),
        ('externalId eq "ABC-1"', set()),
        ('externalId ne "AbC-1"', {"lower", "none"}),
        ('externalId eq "AbC-1" or userName eq "none"', {"upper", "none"}),
    ],
)
async def test_external_id_compares_with_case_although_its_attribute_ignores_it(
    ldap_scim: Scim, filter_: str, expected: set[str]
) -> None:
    """externalId is caseExact (RFC 7643 §3.1); the preset keeps it in `description`,
    whose caseIgnoreMatch found both users for either spelling."""
    scim = ldap_scim
    await scim.create_user("upper", externalId="AbC-1")
    await scim.create_user("lower", externalId="abc-1")
    await scim.create_user("none")
    answer = await scim.get(f"/Users?filter={quote(filter_, safe='')}")
    assert answer.status == 200, answer.body
    assert {user["userName"] for user in answer.body["Resources"]} == expected
    assert answer.body["totalResults"] == len(expected)


@pytest.mark.parametrize("others", [0, 1])
async def test_a_group_a_deleted_user_leaves_gets_a_new_etag(ldap_scim: Scim, others: int) -> None:
    """slapd's memberof overlay (memberof-refint) takes a deleted user out of its groups
    by an internal write that keeps the group's entryCSN: the group changed and kept its
    ETag, and an If-Match with it passed. With or without another member (the last one
    leaving puts the placeholder in)."""
    scim = ldap_scim
    leaving = await scim.create_user("leaving")
    staying = [await scim.create_user(f"staying{n}") for n in range(others)]
    members = [{"value": user["id"]} for user in [leaving, *staying]]
    created = await scim.post(
        "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "crew", "members": members}
    )
    assert created.status == 201, created.body
    path = f"/Groups/{created.body['id']}"
    old = (await scim.get(path)).body["meta"]["version"]
    assert (await scim.delete(f"/Users/{leaving['id']}")).status == 204
    after = await scim.get(path)
    assert after.body["meta"]["version"] != old
    assert [member["value"] for member in after.body.get("members", [])] == [
        user["id"] for user in staying
    ]
    stale = await scim.patch(
        path,
        {"op": "replace", "path": "displayName", "value": "renamed"},
        headers={"If-Match": old},
    )
    assert stale.status == 412, stale.body
