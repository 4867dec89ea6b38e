"""TLS to MySQL and MariaDB (connectors.sql.mysql_tls): a URL with `ssl_ca` gets an
encrypted, verified session or no session at all. aiomysql alone took SQLAlchemy's `ssl`
options as "true" and went on in clear text with a server that offered no TLS.

A MariaDB server of the test's own with a certificate from a CA of its own
(tests/mariadb_server.py, tests/slapd.py's make_certificates); the shared one on
127.0.0.1:3306 serves no TLS, which is what the refusal needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from config_files import Write, check_output, check_problems, load_problems, sql_config
from mariadb_server import HOST, execute, private_mariadb
from slapd import make_certificates

from connectors.sql.engine import make_engine
from connectors.sql.settings import SqlSettings


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca: Path
    """The CA that signed the server's certificate (for 127.0.0.1)."""
    other_ca: Path
    """A CA that signed nothing the server holds."""
    client_cert: Path
    client_key: Path
    other_client_cert: Path
    other_client_key: Path
    """A client certificate from the other CA, which the server refuses."""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    certificates = tmp_path_factory.mktemp("certificates")
    ca = make_certificates(certificates)
    elsewhere = tmp_path_factory.mktemp("other-ca")
    other_ca = make_certificates(elsewhere)
    options = [
        f"--ssl-ca={ca}",
        f"--ssl-cert={certificates / 'server.pem'}",
        f"--ssl-key={certificates / 'server.key'}",
    ]
    with private_mariadb(tmp_path_factory.mktemp("mariadb"), options) as port:
        execute(port, "CREATE DATABASE bridge")
        # The server's own certificate serves as the client's: MariaDB verifies a client
        # certificate against its CA when one is sent.
        yield TlsServer(
            port,
            ca,
            other_ca,
            client_cert=certificates / "server.pem",
            client_key=certificates / "server.key",
            other_client_cert=elsewhere / "server.pem",
            other_client_key=elsewhere / "server.key",
        )


def _url(port: int, query: str) -> str:
    return f"mariadb+aiomysql://root@{HOST}:{port}/bridge?{query}"


async def _session_cipher(url: str) -> str:
    """The TLS cipher of a session the connector's engine opens ('' without TLS)."""
    engine = make_engine(SqlSettings(type="sql", url=url))
    try:
        async with engine.connect() as connection:
            row = (await connection.execute(sa.text("SHOW SESSION STATUS LIKE 'Ssl_cipher'"))).one()
            return str(row[1])
    finally:
        await engine.dispose()


async def test_a_url_with_ssl_ca_gets_an_encrypted_session(tls_server: TlsServer) -> None:
    assert await _session_cipher(_url(tls_server.port, f"ssl_ca={tls_server.ca}")) != ""


async def test_without_ssl_options_the_session_is_not_encrypted(tls_server: TlsServer) -> None:
    """The contrast that shows the cipher above comes from the URL's options."""
    assert await _session_cipher(_url(tls_server.port, "charset=utf8mb4")) == ""


async def test_a_client_certificate_goes_with_the_ca(tls_server: TlsServer) -> None:
    query = (
        f"ssl_ca={tls_server.ca}&ssl_cert={tls_server.client_cert}&ssl_key={tls_server.client_key}"
    )
    assert await _session_cipher(_url(tls_server.port, query)) != ""


def test_a_client_certificate_the_server_refuses_is_said(
    write: Write, capsys, tls_server: TlsServer
) -> None:
    query = (
        f"ssl_ca={tls_server.ca}&ssl_cert={tls_server.other_client_cert}"
        f"&ssl_key={tls_server.other_client_key}"
    )
    problems = check_problems(write(sql_config(url=_url(tls_server.port, query))), capsys)
    assert problems == [
        f"config.toml: connector.url: mariadb+aiomysql://root@{HOST}:{tls_server.port}/bridge: "
        "TLS failed: tlsv1_alert_unknown_ca"
    ]


def test_check_passes_over_tls(write: Write, capsys, tls_server: TlsServer) -> None:
    url = _url(tls_server.port, f"ssl_ca={tls_server.ca}")
    check_output(write(sql_config(url=url)), capsys)


def test_a_server_certificate_from_another_ca_is_refused(
    write: Write, capsys, tls_server: TlsServer
) -> None:
    url = _url(tls_server.port, f"ssl_ca={tls_server.other_ca}")
    problems = check_problems(write(sql_config(url=url)), capsys)
    assert problems == [
        f"config.toml: connector.url: mariadb+aiomysql://root@{HOST}:{tls_server.port}/bridge: "
        "the server's TLS certificate was refused: self-signed certificate in certificate chain"
    ]


def test_a_server_without_tls_is_refused_not_used_in_clear_text(
    write: Write, capsys, tls_server: TlsServer
) -> None:
    """The shared server serves no TLS: with ssl_ca the connection stops before it logs in."""
    url = f"mariadb+aiomysql://root@{HOST}:3306/mysql?ssl_ca={tls_server.ca}"
    problems = check_problems(write(sql_config(url=url, connector="")), capsys)
    assert problems == [
        f"config.toml: connector.url: mariadb+aiomysql://root@{HOST}:3306/mysql: "
        "the server offers no TLS, which the URL's ssl_ options require"
    ]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("ssl=true", "takes TLS as ssl_ca=FILE (or ssl_capath=DIR), with ssl_cert=FILE and "
         "ssl_key=FILE for a client certificate, not as ssl"),
        ("ssl_ca=/nonexistent/ca.pem", "ssl_ca: no such file"),
        ("ssl_ca={not_pem}", "ssl_ca: cannot be read as PEM certificates"),
        ("ssl_capath=/nonexistent", "ssl_capath: no such directory"),
        ("ssl_ca={ca}&ssl_key={ca}", "ssl_key: goes with ssl_cert, the client certificate it "
         "is the key of"),
        ("ssl_ca={ca}&ssl_cert={not_pem}", "ssl_cert and ssl_key: not a PEM client certificate "
         "and its private key"),
        ("ssl_ca={ca}&ssl_cipher=NO-SUCH-CIPHER", "ssl_cipher: names no cipher OpenSSL offers"),
        ("ssl_ca={ca}&ssl_check_hostname=perhaps",
         "an option of the query has a value mariadb+aiomysql cannot read"),
    ],
    ids=["ssl", "ca-missing", "ca-not-pem", "capath-missing", "key-alone", "cert-not-pem",
         "cipher", "check-hostname"],
)  # fmt: skip
def test_tls_options_are_checked_when_the_file_loads(
    write: Write, tmp_path: Path, query: str, problem: str
) -> None:
    """Before anything connects, one line naming the option, never its value."""
    ca = make_certificates(tmp_path)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    url = _url(3306, query.format(ca=ca, not_pem=not_pem))
    url = url.replace("root@", "root:s3cr3t@")
    problems = load_problems(write(sql_config(url=url, connector="")))
    prefix = "mariadb+aiomysql " if problem.startswith("takes") else ""
    assert problems == [f"config.toml: connector.url: {prefix}{problem}"]
    assert "s3cr3t" not in problems[0]
