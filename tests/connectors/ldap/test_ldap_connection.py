"""Connecting to the directory: failover, TLS and its certificate checks, credentials, and
recovery after an outage without restarting anything. Every server here is a real slapd."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ports import free_port
from slapd import SlapdServer, start_slapd

from connectors.base import ConnectorError, Kind, Unavailable
from connectors.ldap import LdapConnector, LdapSettings
from mappings import load_mapping

PASSWORD_ENV = "SCIM_BRIDGE_TEST_LDAP_PASSWORD"


def _dead_url() -> str:
    """An ldap:// URL on a loopback port nothing listens on."""
    return f"ldap://127.0.0.1:{free_port()}"


def settings_for(server: SlapdServer, tree: str, **overrides: Any) -> LdapSettings:
    values: dict[str, Any] = {
        "type": "ldap",
        "urls": [server.url],
        "base_dn": tree,
        "bind_dn": server.admin_dn,
        "password_env": PASSWORD_ENV,
        "pool_size": 2,
        "retry_after": 7,
        **overrides,
    }
    return LdapSettings.model_validate(values)


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch, slapd: SlapdServer) -> None:
    monkeypatch.setenv(PASSWORD_ENV, slapd.admin_password)


@pytest.fixture(scope="module")
def tls_slapd(
    tmp_path_factory: pytest.TempPathFactory, slapd: SlapdServer
) -> Iterator[SlapdServer]:
    """A second server with ldaps:// and StartTLS, its certificate from a CA of its own."""
    server = start_slapd(tmp_path_factory.mktemp("tls-slapd"), tls=True)
    yield server
    server.stop()


async def opened(settings: LdapSettings) -> LdapConnector:
    connector = LdapConnector(settings, load_mapping("ldap-openldap").backend)
    await connector.open()
    return connector


async def test_an_unreachable_directory_is_unavailable_and_says_why(
    slapd: SlapdServer, ldap_tree: str
) -> None:
    connector = LdapConnector(
        settings_for(slapd, ldap_tree, urls=[_dead_url()]),
        load_mapping("ldap-openldap").backend,
    )
    with pytest.raises(Unavailable) as refused:
        await connector.open()
    await connector.close()
    assert refused.value.retry_after == 7
    assert "connection refused" in refused.value.message


async def test_the_next_server_is_tried_when_one_is_down(
    slapd: SlapdServer, ldap_tree: str
) -> None:
    connector = await opened(settings_for(slapd, ldap_tree, urls=[_dead_url(), slapd.url]))
    try:
        created = await connector.create(Kind.USERS, {"uid": "failover", "sn": "f", "cn": "f"})
        assert (await connector.get(Kind.USERS, created.id)).values["uid"] == "failover"
    finally:
        await connector.close()


async def test_wrong_credentials_are_named_without_the_password(
    slapd: SlapdServer, ldap_tree: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password-4711")
    connector = LdapConnector(settings_for(slapd, ldap_tree), load_mapping("ldap-openldap").backend)
    with pytest.raises(ConnectorError) as refused:
        await connector.open()
    await connector.close()
    assert not isinstance(refused.value, Unavailable)
    assert "credentials" in refused.value.message
    assert "4711" not in refused.value.message


def _tls_tree(server: SlapdServer, name: str) -> str:
    return server.make_tree(name)


async def test_ldaps_checks_the_certificate_against_the_ca_file(tls_slapd: SlapdServer) -> None:
    tree = _tls_tree(tls_slapd, "ldaps")
    trusted = await opened(
        settings_for(tls_slapd, tree, urls=[tls_slapd.tls_url], ca_file=str(tls_slapd.ca_file))
    )
    try:
        created = await trusted.create(Kind.USERS, {"uid": "secure", "sn": "s", "cn": "s"})
        assert created.values["uid"] == "secure"
    finally:
        await trusted.close()
    # The test CA is not among the system's: certificate checking (on by default) refuses.
    with pytest.raises(Unavailable) as refused:
        await opened(settings_for(tls_slapd, tree, urls=[tls_slapd.tls_url]))
    assert "certificate" in refused.value.message
    # The certificate names 127.0.0.1 only: reached as localhost, the host name check refuses.
    as_localhost = tls_slapd.tls_url.replace("127.0.0.1", "localhost")
    with pytest.raises(Unavailable) as mismatch:
        await opened(
            settings_for(tls_slapd, tree, urls=[as_localhost], ca_file=str(tls_slapd.ca_file))
        )
    assert "does not name the host" in mismatch.value.message
    unchecked = await opened(
        settings_for(tls_slapd, tree, urls=[as_localhost], verify_certificates=False)
    )
    await unchecked.close()


async def test_start_tls_upgrades_the_plain_port_and_checks_the_certificate(
    tls_slapd: SlapdServer,
) -> None:
    tree = _tls_tree(tls_slapd, "starttls")
    upgraded = await opened(
        settings_for(tls_slapd, tree, start_tls=True, ca_file=str(tls_slapd.ca_file))
    )
    try:
        created = await upgraded.create(Kind.USERS, {"uid": "upgraded", "sn": "u", "cn": "u"})
        assert created.values["uid"] == "upgraded"
    finally:
        await upgraded.close()
    with pytest.raises(Unavailable) as refused:
        await opened(settings_for(tls_slapd, tree, start_tls=True))
    assert "certificate" in refused.value.message


async def test_the_connector_recovers_by_itself_when_the_directory_comes_back(
    tmp_path: Path,
) -> None:
    own = start_slapd(tmp_path / "outage")
    try:
        tree = own.make_tree("outage")
        connector = await opened(settings_for(own, tree))
        try:
            created = await connector.create(Kind.USERS, {"uid": "steady", "sn": "s", "cn": "s"})
            own.stop()
            with pytest.raises(Unavailable) as down:
                await connector.get(Kind.USERS, created.id)
            assert down.value.retry_after == 7
            own.start()
            # The first request after the restart succeeds: the dead connections are
            # replaced before use, with no restart of the connector.
            for _ in range(3):
                assert (await connector.get(Kind.USERS, created.id)).values["uid"] == "steady"
        finally:
            await connector.close()
    finally:
        own.stop()


def test_a_connection_that_met_itself_is_no_server() -> None:
    # Reconnecting to a stopped local server whose port is in the ephemeral range, the
    # kernel may choose that port as the source: the socket then reads back its own bind
    # request (an ldap3 KeyError). Such a connection counts as refused.
    from connectors.ldap.pool import _connected_to_itself

    met = socket.socket()
    met.bind(("127.0.0.1", 0))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    normal = socket.socket()
    try:
        met.connect(met.getsockname())  # TCP simultaneous open with itself
        normal.connect(listener.getsockname())
        assert _connected_to_itself(met)
        assert not _connected_to_itself(normal)
        assert not _connected_to_itself(None)
    finally:
        for each in (met, normal, listener):
            each.close()
