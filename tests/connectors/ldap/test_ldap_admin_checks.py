"""What `scim-bridge check` tells an admin about a directory configuration: a mapping that
cannot create an entry, an anonymous connection that may not write, a server that cannot
be reached and why, a secret where a name belongs. Every server here is a real slapd."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ports import free_port
from slapd import SlapdServer

from bridge.config import ConfigError, load_config
from connectors.base import ConnectorError, Kind, Unavailable
from connectors.ldap import LdapConnector, LdapSettings
from connectors.ldap import connector as ldap_connector
from mappings import load_mapping

INET_ORG_PERSON = """
[users]
object = "ou=people"
key = "entryUUID"
classes = ["top", "person", "organizationalPerson", "inetOrgPerson"]
rdn = "uid={userName}"

[users.attributes]
userName = { field = "uid", unique = true }
"""


def _dead_url() -> str:
    """An ldap:// URL on a loopback port nothing listens on."""
    return f"ldap://127.0.0.1:{free_port()}"


@pytest.fixture
def verified(ldap_settings: Callable[..., LdapSettings], tmp_path: Path) -> Callable[..., Any]:
    """verify() of a connector on a mapping file, its path shown as my.toml."""

    async def found(mapping: str, **overrides: Any) -> list[str]:
        path = tmp_path / "my.toml"
        path.write_text(mapping)
        connector = LdapConnector(ldap_settings(**overrides), load_mapping(path).backend)
        await connector.open()
        try:
            return [line.replace(str(path), "my.toml") for line in await connector.verify()]
        finally:
            await connector.close()

    return found


def config_problems(tmp_path: Path, connector: str) -> list[str]:
    """The lines `check` prints for a configuration file's [connector] table."""
    path = tmp_path / "config.toml"
    path.write_text(
        'mapping = "ldap-openldap"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TOKEN"\n'
        f'[connector]\ntype = "ldap"\n{connector}\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    return [line.replace(str(path), "config.toml") for line in refused.value.problems]


# --- 1. Attributes the object classes require ---------------------------------------------


async def test_a_required_attribute_nothing_writes_is_refused(
    verified: Callable[..., Any],
) -> None:
    # Every create would fail with an objectClassViolation, answered to the client as a
    # value of its own the directory refused.
    assert await verified(INET_ORG_PERSON) == [
        "my.toml: users.classes: object class 'person' requires 'cn' and 'sn', which the "
        "mapping never writes: every create would fail (map a SCIM attribute to it, with "
        "`empty` or `default` for when that one is absent, or set it in [users.constants])"
    ]


async def test_the_rdn_an_alias_a_default_and_a_constant_write_required_attributes(
    verified: Callable[..., Any],
) -> None:
    # cn is written by the RDN alone, sn under its alias, or by a default, or a constant.
    mapping = INET_ORG_PERSON.replace('rdn = "uid={userName}"', 'rdn = "cn={userName}"')
    assert await verified(mapping + '"name.familyName" = "surname"\n') == []
    default = '"name.familyName" = { field = "sn", default = "{userName}" }\n'
    assert await verified(mapping + default) == []
    constant = mapping.replace(
        "[users.attributes]", '[users.constants]\nsn = "-"\n\n[users.attributes]'
    )
    assert await verified(constant) == []


async def test_a_required_attribute_of_an_optional_scim_attribute_counts_as_written(
    verified: Callable[..., Any],
    ldap_settings: Callable[..., LdapSettings],
    tmp_path: Path,
) -> None:
    # As a NOT NULL column mapped from an optional attribute on SQL: the mapping passes,
    # and a create without a value is refused naming the attribute the directory needs.
    mapping = INET_ORG_PERSON + '"name.familyName" = "sn"\n"name.formatted" = "cn"\n'
    assert await verified(mapping) == []
    path = tmp_path / "my.toml"
    connector = LdapConnector(ldap_settings(), load_mapping(path).backend)
    await connector.open()
    try:
        with pytest.raises(ConnectorError) as refused:
            await connector.create(Kind.USERS, {"uid": "nosn", "cn": "No Sn"})
    finally:
        await connector.close()
    assert refused.value.field == "sn"


# --- 2. An anonymous connection --------------------------------------------------------


async def test_an_anonymous_connection_the_directory_lets_not_write_is_refused(
    verified: Callable[..., Any],
) -> None:
    mapping = (Path(__file__).parents[3] / "mappings" / "ldap-openldap.toml").read_text()
    assert await verified(mapping, bind_dn="", password_env=None) == [
        "bind_dn: none is set, and the directory refuses writes from an anonymous "
        "connection (strongerAuthRequired): set bind_dn and password_env to an account "
        "that may write"
    ]


async def test_a_write_refused_for_want_of_authentication_says_so(
    ldap_settings: Callable[..., LdapSettings], caplog: pytest.LogCaptureFixture
) -> None:
    connector = LdapConnector(
        ldap_settings(bind_dn="", password_env=None), load_mapping("ldap-openldap").backend
    )
    await connector.open()
    try:
        with (
            caplog.at_level(logging.ERROR, "scim_bridge.ldap"),
            pytest.raises(ConnectorError) as refused,
        ):
            await connector.create(Kind.USERS, {"uid": "anon", "sn": "a", "cn": "a"})
    finally:
        await connector.close()
    assert not isinstance(refused.value, Unavailable)
    assert refused.value.message == "the directory requires the service to authenticate"
    assert any(
        "requires authentication" in record.getMessage()
        and "strongerAuthRequired" in record.getMessage()
        for record in caplog.records
    )


# --- 3. Why a server cannot be used --------------------------------------------------------


async def _refusal(settings: LdapSettings) -> str:
    connector = LdapConnector(settings, load_mapping("ldap-openldap").backend)
    try:
        with pytest.raises(Unavailable) as refused:
            await connector.open()
    finally:
        await connector.close()
    return refused.value.message


async def test_start_tls_to_a_server_without_tls_says_so(
    ldap_settings: Callable[..., LdapSettings], slapd: SlapdServer
) -> None:
    assert await _refusal(ldap_settings(start_tls=True)) == (
        f"cannot connect to the directory ({slapd.url}: the server does not offer StartTLS "
        "(it answered protocolError): it has no TLS set up)"
    )


async def test_ldaps_to_a_plain_port_says_the_handshake_failed(
    ldap_settings: Callable[..., LdapSettings], slapd: SlapdServer
) -> None:
    url = slapd.url.replace("ldap://", "ldaps://")
    assert await _refusal(ldap_settings(urls=[url])) == (
        f"cannot connect to the directory ({url}: TLS handshake failed "
        "(UNEXPECTED_EOF_WHILE_READING): is this port plain ldap://, not ldaps://?)"
    )


async def test_an_unknown_host_is_named(ldap_settings: Callable[..., LdapSettings]) -> None:
    assert await _refusal(ldap_settings(urls=["ldaps://nohost.invalid"])) == (
        "cannot connect to the directory (ldaps://nohost.invalid: host name "
        "'nohost.invalid' not found)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "ldap://cn=admin:Adm1nPassw0rd!@127.0.0.1:389",
        "ldap://admin:Adm1n@Passw0rd/x@127.0.0.1:389",
        "ldaps://Adm1nPassw0rd!@127.0.0.1",
    ],
)
def test_credentials_in_a_url_are_refused_without_echoing_them(tmp_path: Path, url: str) -> None:
    problems = config_problems(tmp_path, f'urls = ["{url}"]')
    scheme = url.partition("://")[0]
    port = ":389" if url.endswith(":389") else ""
    assert problems == [
        f"config.toml: connector.urls: '{scheme}://127.0.0.1{port}' is given with a user name "
        "or password (user:password@), which an LDAP URL cannot carry: give the account as "
        "bind_dn and its password in the variable password_env names"
    ]
    assert "Passw0rd" not in problems[0]


# --- 4. A secret where a variable's name belongs -------------------------------------------


def test_a_password_pasted_into_password_env_is_not_echoed(tmp_path: Path) -> None:
    connector = (
        'urls = ["ldap://127.0.0.1:389"]\nbind_dn = "cn=admin,dc=example,dc=org"\n'
        'password_env = "Adm1nPassw0rd!"'
    )
    assert config_problems(tmp_path, connector) == [
        "config.toml: connector.password_env: not the name of an environment variable; give "
        "the name of the variable that holds the secret, never the secret itself"
    ]


# --- 5. Each server of a failover list -------------------------------------------------------


async def test_a_server_down_behind_one_that_answers_is_a_warning(
    ldap_settings: Callable[..., LdapSettings],
    slapd: SlapdServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = _dead_url()
    connector = LdapConnector(
        ldap_settings(urls=[dead, slapd.url]), load_mapping("ldap-openldap").backend
    )
    await connector.open()
    try:
        with caplog.at_level(logging.WARNING, "scim_bridge.ldap"):
            assert await connector.verify() == []
    finally:
        await connector.close()
    line = (
        f"urls: {dead}: connection refused; another server answers, and is used while this "
        "one is down"
    )
    assert [each for each in connector.warnings if each.startswith("urls:")] == [line]
    assert f"connector: {line}" in [record.getMessage() for record in caplog.records]


async def test_every_server_answering_is_no_warning(
    ldap_settings: Callable[..., LdapSettings], slapd: SlapdServer
) -> None:
    connector = LdapConnector(
        ldap_settings(urls=[slapd.url, slapd.url]), load_mapping("ldap-openldap").backend
    )
    await connector.open()
    try:
        assert await connector.verify() == []
    finally:
        await connector.close()
    assert [each for each in connector.warnings if each.startswith("urls:")] == []


# --- 6. memberOf that cannot be checked yet ---------------------------------------------------

UNTOLD = (
    "groups.members.member_of: no user found is in a group yet, so whether the directory "
    "keeps memberOf for member cannot be told"
)


async def test_member_of_on_a_tree_with_no_membership_is_a_warning_until_one(
    ldap: LdapConnector,
) -> None:
    # A new directory proves nothing: were memberOf not kept, every group would read as
    # empty with nothing said (the check finds that only once a user is in a group).
    assert await ldap.verify() == []
    assert sum(line.startswith(UNTOLD) for line in ldap.warnings) == 1
    user = await ldap.create(Kind.USERS, {"uid": "ana", "cn": "Ana", "sn": "A"})
    await ldap.create(Kind.GROUPS, {"cn": "crew"}, members=[user.id])
    assert await ldap.verify() == []
    assert not any(line.startswith(UNTOLD) for line in ldap.warnings)


async def test_a_base_dn_the_directory_serves_without_an_entry_is_told_so(
    ldap_settings: Callable[..., LdapSettings], slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory set up with its suffix but no entry there yet: not `the directory holds`
    the very DN said not to exist."""
    empty = f"ou=not-made-yet,{slapd.base_dn}"
    monkeypatch.setattr(ldap_connector, "naming_contexts", lambda connection: [empty.upper()])
    connector = LdapConnector(ldap_settings(base_dn=empty), load_mapping("ldap-openldap").backend)
    await connector.open()
    try:
        assert await connector.verify() == [
            f"base_dn: the entry '{empty}' does not exist: the directory serves this tree, "
            "but holds no entry at its top yet"
        ]
    finally:
        await connector.close()
