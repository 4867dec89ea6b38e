"""Start-up problems found in review: each is one line naming the file and the key, never a
traceback, never a secret (a password, a token, a URL that may carry one)."""

from __future__ import annotations

import hashlib
import pathlib
import socket

import pytest
from config_files import TOKEN, check_problems, load_problems, sql_config
from scim_client import LDAP_PASSWORD_ENV, write_ldap_config
from slapd import SlapdServer

from bridge.cli import main
from bridge.config import load_config
from connectors.ldap import LdapSettings


def webhook_config(url: str = "https://hr.example.com/in", extra: str = "") -> str:
    return (
        'mapping = "sql-default"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        '[connector]\ntype = "webhook"\nurl = "sqlite+aiosqlite:///events.db"\n'
        f'webhooks = ["hr"]\n[webhooks.hr]\nurl = "{url}"\nsecret_env = "HR_SECRET"\n{extra}\n'
    )


def ldap_config(connector: str, urls: str = '["ldap://127.0.0.1:389"]') -> str:
    return (
        'mapping = "ldap-openldap"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "ldap"\nurls = {urls}\n{connector}\n'
    )


# --- D18: [connector] values have their TOML type, as in every other table -----------------


@pytest.mark.parametrize(
    ("connector", "line"),
    [
        ('pool_size = "10"', "connector.pool_size: input should be a valid integer"),
        ("pool_size = 10.0", "connector.pool_size: input should be a valid integer"),
        ("pool_size = 100000", "connector.pool_size: input should be less than or equal to 256"),
        ('create_tables = "yes"', "connector.create_tables: input should be a valid boolean"),
        ("create_tables = 1", "connector.create_tables: input should be a valid boolean"),
        ('connect_timeout = "5"', "connector.connect_timeout: input should be a valid number"),
    ],
)
def test_sql_connector_values_are_strict(write, connector: str, line: str) -> None:
    assert load_problems(write(sql_config(connector=connector))) == [f"config.toml: {line}"]


def test_webhook_connector_values_are_strict(write) -> None:
    text = webhook_config().replace('webhooks = ["hr"]', 'webhooks = ["hr"]\npool_size = "4"')
    assert load_problems(write(text)) == [
        "config.toml: connector.pool_size: input should be a valid integer"
    ]


def test_a_whole_number_is_a_timeout(write) -> None:
    settings = load_config(write(sql_config(connector="connect_timeout = 5")))
    assert settings.connector.connect_timeout == 5.0


# --- C14/D15: timeouts are finite, positive and at most a day ------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            sql_config(connector="connect_timeout = inf"),
            "connector.connect_timeout: input should be a finite number",
        ),
        (
            sql_config(connector="connect_timeout = 86401"),
            "connector.connect_timeout: input should be less than or equal to 86400",
        ),
        (
            webhook_config(extra="timeout = inf"),
            "webhooks.hr.timeout: input should be a finite number",
        ),
        (
            webhook_config(extra="timeout = nan"),
            "webhooks.hr.timeout: input should be a finite number",
        ),
        (
            webhook_config(extra="max_age = nan"),
            "webhooks.hr.max_age: input should be a finite number",
        ),
        (
            webhook_config(extra="retry_max = 1e300"),
            "webhooks.hr.retry_max: input should be less than or equal to 86400",
        ),
        (
            ldap_config("operation_timeout = inf"),
            "connector.operation_timeout: input should be a finite number",
        ),
        (
            ldap_config("connect_timeout = nan"),
            "connector.connect_timeout: input should be a finite number",
        ),
        (
            ldap_config("retry_after = 100000000000000000"),
            "connector.retry_after: input should be less than or equal to 3600",
        ),
    ],
    ids=[
        "sql-inf",
        "sql-over-a-day",
        "webhook-inf",
        "webhook-nan",
        "max-age-nan",
        "retry-max-huge",
        "ldap-operation-inf",
        "ldap-connect-nan",
        "ldap-retry-after-huge",
    ],
)
def test_durations_are_finite_and_bounded(write, text: str, line: str) -> None:
    assert load_problems(write(text)) == [f"config.toml: {line}"]


def test_retry_max_is_no_shorter_than_retry_initial(write) -> None:
    text = webhook_config(extra="retry_initial = 1000\nretry_max = 1")
    assert load_problems(write(text)) == [
        "config.toml: webhooks.hr.retry_max: is shorter than retry_initial (1000 seconds)"
    ]


# --- D16: webhook URLs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "https://hr.example.com:99999/in?token=s3cr3t",
            "has a port that is not a number from 1 to 65535",
        ),
        (
            "https://hr example.com/in?token=s3cr3t",
            "has a host that is neither a host name nor an IP address",
        ),
        (
            "https://hr.example.com:/in?token=s3cr3t",
            "has a port that is not a number from 1 to 65535",
        ),
    ],
    ids=["port-out-of-range", "host-with-a-space", "empty-port"],
)
def test_a_webhook_url_needs_a_real_host_and_port(write, url: str, problem: str) -> None:
    problems = load_problems(write(webhook_config(url=url)))
    assert problems == [f"config.toml: webhooks.hr.url: {problem}"]
    assert "s3cr3t" not in "\n".join(problems)


def test_an_ip_address_and_an_idn_host_are_hosts(write) -> None:
    load_config(write(webhook_config(url="http://[::1]:8080/in")))
    load_config(write(webhook_config(url="https://exämple.com/in")))


# --- D17: server.public_url ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "problem"),
    [
        (
            "https://idm.example.com/scim/v2",
            "ends with base_path '/scim/v2', which is appended to it; give the URL without it "
            "(its path is only a proxy's own prefix)",
        ),
        (
            "https://admin:s3cr3t@idm.example.com",
            "must not hold user:password@: every Location header would publish it",
        ),
        ("https://idm.example.com:99999", "has a port that is not a number from 1 to 65535"),
        ("https://idm example.com", "has a host that is neither a host name nor an IP address"),
    ],
    ids=["base-path-twice", "credentials", "port", "host"],
)
def test_public_url_mistakes(write, public_url: str, problem: str) -> None:
    problems = load_problems(write(sql_config(server=f'public_url = "{public_url}"')))
    assert problems == [f"config.toml: server.public_url: {problem}"]
    assert "s3cr3t" not in "\n".join(problems)


def test_public_url_may_carry_a_proxy_prefix(write) -> None:
    settings = load_config(write(sql_config(server='public_url = "https://example.com/idm/"')))
    assert settings.server.public_url == "https://example.com/idm"


# --- D19: tokens --------------------------------------------------------------------------


def test_a_short_token_is_refused(write, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "change-me\n")
    assert check_problems(write(sql_config()), capsys) == [
        "config.toml: auth.tokens[0].env: the token in SCIM_BRIDGE_TEST_TOKEN is shorter than "
        "16 characters (scim-bridge token new makes one)"
    ]


def test_a_sixteen_character_token_is_enough(write, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "0123456789abcdef")
    assert main(["check", "--config", str(write(sql_config()))]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("tokens", "line"),
    [
        (
            '[[auth.tokens]]\nenv = "A_TOKEN"\n[[auth.tokens]]\nenv = "A_TOKEN"\n',
            "auth.tokens[1].env: A_TOKEN is already auth.tokens[0]",
        ),
        (
            f'[[auth.tokens]]\nsha256 = "{"ab" * 32}"\n[[auth.tokens]]\nsha256 = "{"AB" * 32}"\n',
            "auth.tokens[1].sha256: this digest is already auth.tokens[0]",
        ),
        (
            f'[[auth.tokens]]\nsha256 = "{hashlib.sha256(b"").hexdigest().upper()}"\n',
            "auth.tokens[0].sha256: is the digest of the empty string, not of a token",
        ),
    ],
    ids=["same-env", "same-digest-any-case", "empty-string-digest"],
)
def test_tokens_are_distinct_and_not_empty(write, tokens: str, line: str) -> None:
    assert load_problems(write(sql_config(tokens=tokens))) == [f"config.toml: {line}"]


# --- D20, C13, E23 and password_env: the LDAP connector's settings -------------------------


@pytest.mark.parametrize("option", ['ca_file = "{ca}"', "verify_certificates = false"])
def test_a_tls_option_without_tls_is_refused(write, tmp_path: pathlib.Path, option: str) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    key = option.split(" ")[0]
    assert load_problems(write(ldap_config(option.format(ca=ca)))) == [
        f"config.toml: connector.{key}: has no effect: every URL is ldap:// without start_tls, "
        "so nothing is encrypted; use ldaps:// or start_tls = true"
    ]


def test_verify_certificates_applies_with_start_tls(write) -> None:
    load_config(write(ldap_config("start_tls = true\nverify_certificates = false")))
    load_config(write(ldap_config("verify_certificates = false", urls='["ldaps://h:636"]')))


def test_a_ca_file_that_is_not_pem_is_named(write, tmp_path: pathlib.Path) -> None:
    not_pem = tmp_path / "hostname"
    not_pem.write_text("idm.example.com\n")
    text = ldap_config(f'ca_file = "{not_pem}"', urls='["ldaps://h:636"]')
    assert load_problems(write(text)) == [
        f"config.toml: connector.ca_file: '{not_pem}' holds no PEM certificate"
    ]


@pytest.mark.parametrize(
    ("connector", "key"),
    [
        ('base_dn = "this is not a dn"', "base_dn"),
        ('base_dn = "dc=example,,dc=org"', "base_dn"),
        ('bind_dn = "ghost"\npassword_env = "P"', "bind_dn"),
        ('bind_dn = "c n=admin,dc=example"\npassword_env = "P"', "bind_dn"),
    ],
)
def test_a_dn_that_does_not_parse_is_named(write, connector: str, key: str) -> None:
    expected = {
        "base_dn": "is not a DN such as dc=example,dc=org (RFC 4514)",
        "bind_dn": "is not a DN such as cn=scim,dc=example,dc=org (RFC 4514), nor an Active "
        "Directory logon name (svc-scim@corp.example.com, CORP\\svc-scim)",
    }
    assert load_problems(write(ldap_config(connector))) == [
        f"config.toml: connector.{key}: {expected[key]}"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "svc-scim@corp.example.com",
        "svc.scim@corp",
        "CORP\\\\svc-scim",
        "CORP\\\\John Smith",
        "CORP\\\\svc$",
    ],
)
def test_active_directory_logon_names_bind_as_they_do_in_ad(write, name: str) -> None:
    # Active Directory takes a user principal name or a down-level logon name in a simple
    # bind (MS-ADTS 5.1.1.1.1); admins configure them as often as a DN.
    text = ldap_config(f'bind_dn = "{name}"\npassword_env = "P"')
    assert load_config(write(text)).connector.bind_dn == name.replace("\\\\", "\\")


def test_lenient_dns_still_load(write) -> None:
    text = ldap_config('base_dn = "OU=C# devs, DC=example,DC=org"\nbind_dn = ""')
    assert load_config(write(text)).connector.base_dn.startswith("OU=C#")


def test_password_env_without_bind_dn_is_refused(write) -> None:
    assert load_problems(write(ldap_config('password_env = "LDAP_PASSWORD"'))) == [
        "config.toml: connector.password_env: has no effect without bind_dn: an anonymous "
        "bind sends no password"
    ]


def test_an_empty_bind_password_is_named(write, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LDAP_PASSWORD", " \n")
    text = ldap_config('bind_dn = "cn=admin,dc=example,dc=org"\npassword_env = "LDAP_PASSWORD"')
    assert check_problems(write(text), capsys) == [
        "config.toml: connector.password_env: environment variable LDAP_PASSWORD is empty"
    ]


def test_a_bind_password_loses_its_trailing_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDAP_PASSWORD", "s3cret\n")
    settings = LdapSettings(
        type="ldap", urls=["ldap://h"], bind_dn="cn=a", password_env="LDAP_PASSWORD"
    )
    assert settings.password() == "s3cret"


def test_a_password_file_with_a_newline_binds(
    tmp_path: pathlib.Path,
    slapd: SlapdServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    monkeypatch.setenv(LDAP_PASSWORD_ENV, slapd.admin_password + "\n")
    path = write_ldap_config(tmp_path, slapd, slapd.make_tree("startup-newline"))
    assert main(["check", "--config", str(path)]) == 0, capsys.readouterr().err


# --- Unused [webhooks.NAME] ---------------------------------------------------------------


def test_a_webhook_nothing_names_is_refused(write) -> None:
    text = webhook_config() + '[webhooks.audit]\nurl = "https://a.example.com"\nsecret_env = "A"\n'
    assert load_problems(write(text)) == [
        "config.toml: webhooks.audit: no connector.webhooks, users.notify or groups.notify "
        "names it, so it would receive nothing"
    ]


# --- D21: server.listen -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "problem"),
    [
        ("999.1.1.1:8080", "'999.1.1.1' is not an IPv4 address"),
        ("127.0.0.1:²", "'²' is not a port number (0-65535)"),
    ],
)
def test_a_listen_address_that_cannot_be_bound_is_refused(write, listen: str, problem: str) -> None:
    text = sql_config().replace('listen = "127.0.0.1:8080"', f'listen = "{listen}"')
    assert load_problems(write(text)) == [f"config.toml: server.listen: {problem}"]


def test_check_resolves_the_listen_host(write, capsys) -> None:
    text = sql_config().replace("127.0.0.1:8080", "no-such-host.invalid:8080")
    assert check_problems(write(text), capsys) == [
        "config.toml: server.listen: host name 'no-such-host.invalid' not found"
    ]


def test_serve_names_the_key_it_cannot_listen_on(write, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        text = sql_config().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        status = main(["serve", "--config", str(write(text))])
    err = capsys.readouterr().err
    assert status == 2
    assert f"config.toml: server.listen: cannot listen on 127.0.0.1:{port}: " in err
    assert "Traceback" not in err


# --- C12: options of a database URL -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "postgresql+asyncpg://postgres:s3cr3t@127.0.0.1/db?sslmode=require",
            "postgresql+asyncpg takes no option 'sslmode' (asyncpg spells it ssl=require)",
        ),
        (
            "postgresql+asyncpg://postgres:s3cr3t@127.0.0.1/db?prepared_statement_cache_size=x",
            "an option of the query has a value postgresql+asyncpg cannot read",
        ),
        (
            "mariadb+aiomysql://root:s3cr3t@127.0.0.1/db?bogus=1",
            "mariadb+aiomysql takes no option 'bogus'",
        ),
        ("sqlite+aiosqlite:///x.db?bogus=1", "sqlite+aiosqlite takes no option 'bogus'"),
        (
            "postgresql+asyncpg://postgres:s3cr3t@127.0.0.1/db?ssl=true",
            "ssl='true': asyncpg takes one of disable, allow, prefer, require, verify-ca, "
            "verify-full",
        ),
        (
            "mysql+aiomysql://root:s3cr3t@127.0.0.1/db?charset=s3cr3t",
            "charset: MySQL has no character set of that name (utf8mb4, used when none is "
            "given, stores every name an identity provider sends)",
        ),
    ],
    ids=["sslmode", "bad-value", "mariadb", "sqlite", "ssl-value", "charset"],
)
def test_an_unknown_url_option_is_named(write, url: str, problem: str) -> None:
    problems = load_problems(write(sql_config(url=url, connector="")))
    assert problems == [f"config.toml: connector.url: {problem}"]
    assert "s3cr3t" not in "\n".join(problems)


def test_known_url_options_load(write) -> None:
    for url in (
        "postgresql+asyncpg://postgres@127.0.0.1/db?ssl=require&prepared_statement_cache_size=0",
        "postgresql+asyncpg://postgres@127.0.0.1/db?ssl=verify-full",
        "postgresql+asyncpg://postgres@127.0.0.1/db?ssl=verify_ca",  # asyncpg takes both
        "mysql+aiomysql://root@127.0.0.1/db?charset=utf8mb4",  # ssl_*: test_mysql_tls.py
        "mariadb+aiomysql://root@127.0.0.1/db?charset=latin1",
        "sqlite+aiosqlite:///file:x.db?mode=ro&uri=true",
        "sqlite+aiosqlite:///x.db?timeout=3",
    ):
        load_config(write(sql_config(url=url, connector="")))


# --- C11, E27: a database that refuses the connection ---------------------------------------


@pytest.mark.parametrize(
    ("url", "line"),
    [
        (
            "postgresql+asyncpg://postgres:s3cr3t@127.0.0.1:5432/startup_no_such_db",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/startup_no_such_db: "
            'database "startup_no_such_db" does not exist',
        ),
        (
            "postgresql+asyncpg://startup_no_role:s3cr3t@127.0.0.1:5432/postgres",
            "postgresql+asyncpg://startup_no_role@127.0.0.1:5432/postgres: "
            'role "startup_no_role" does not exist',
        ),
        (
            "mariadb+aiomysql://root:s3cr3t@127.0.0.1:3306/mysql",
            "mariadb+aiomysql://root@127.0.0.1:3306/mysql: "
            "access denied for user 'root' (wrong password?)",
        ),
        (
            "mariadb+aiomysql://root@127.0.0.1:3306/startup_no_such_db",
            "mariadb+aiomysql://root@127.0.0.1:3306/startup_no_such_db: "
            "database 'startup_no_such_db' does not exist",
        ),
        (
            "sqlite+aiosqlite:////nonexistent/startup/x.db",
            "sqlite+aiosqlite:////nonexistent/startup/x.db: "
            "directory '/nonexistent/startup' of the database file does not exist",
        ),
    ],
    ids=["pg-database", "pg-role", "mariadb-password", "mariadb-database", "sqlite-directory"],
)
def test_a_refused_connection_is_one_line_with_its_cause(
    write, capsys, url: str, line: str
) -> None:
    connector = "create_tables = true" if url.startswith("sqlite") else ""
    problems = check_problems(write(sql_config(url=url, connector=connector)), capsys)
    if problems and "connection refused" in problems[0]:
        pytest.skip("the database server is not running")
    assert problems == [f"config.toml: connector.url: {line}"]
