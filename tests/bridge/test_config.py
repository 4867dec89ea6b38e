"""Configuration errors: each is one exact line, all are reported, and the CLI exits 2."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from bridge.cli import main
from bridge.config import ConfigError, load_config, parse_listen

REPOSITORY = pathlib.Path(__file__).parents[2]
DIGEST = "a" * 64

VALID = f"""\
mapping = "sql-default"

[server]
listen = "127.0.0.1:8080"
base_path = "/scim/v2"
max_body_bytes = 1048576
max_page_size = 1000
public_url = ""

[[auth.tokens]]
sha256 = "{DIGEST}"

[connector]
type = "sql"
url = "sqlite+aiosqlite:///bridge.db"
create_tables = true
"""


@pytest.fixture
def write_config(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    """Write config.toml in a fresh working directory, so messages name `config.toml`."""
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> pathlib.Path:
        path = pathlib.Path("config.toml")
        path.write_text(text)
        return path

    return write


def check_problems(path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run `scim-bridge check`, expect exit status 2, return the problem lines."""
    status = main(["check", "--config", str(path)])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    return err.splitlines()


def edited(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(
            edited('listen = "127.0.0.1:8080"', 'listen = "localhost"'),
            "config.toml: server.listen: expected HOST:PORT, got 'localhost'",
            id="listen-without-port",
        ),
        pytest.param(
            edited('listen = "127.0.0.1:8080"', 'listen = "::1:8080"'),
            "config.toml: server.listen: write an IPv6 address in brackets: [::1]:8080",
            id="listen-ipv6-without-brackets",
        ),
        pytest.param(
            edited('listen = "127.0.0.1:8080"', 'listen = "[::g]:8080"'),
            "config.toml: server.listen: '::g' is not an IPv6 address",
            id="listen-bad-ipv6",
        ),
        pytest.param(
            edited('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:65536"'),
            "config.toml: server.listen: '65536' is not a port number (0-65535)",
            id="listen-port-too-large",
        ),
        pytest.param(
            edited('listen = "127.0.0.1:8080"', 'listen = "my host:8080"'),
            "config.toml: server.listen: 'my host' is not a host name or address",
            id="listen-bad-host",
        ),
        pytest.param(
            edited('listen = "127.0.0.1:8080"', "listen = 8080"),
            "config.toml: server.listen: input should be a valid string",
            id="listen-wrong-type",
        ),
        pytest.param(
            edited('base_path = "/scim/v2"', 'base_path = "scim/v2"'),
            "config.toml: server.base_path: must start with '/', got 'scim/v2'",
            id="base-path-relative",
        ),
        pytest.param(
            edited('base_path = "/scim/v2"', 'base_path = "/scim?v=2"'),
            "config.toml: server.base_path: must be a plain path, got '/scim?v=2'",
            id="base-path-query",
        ),
        pytest.param(
            edited("max_body_bytes = 1048576", "max_body_bytes = 10"),
            "config.toml: server.max_body_bytes: input should be greater than or equal to 4096",
            id="max-body-bytes-tiny",
        ),
        pytest.param(
            edited("max_body_bytes = 1048576", "max_body_bytes = 99999999999999"),
            "config.toml: server.max_body_bytes: input should be less than or equal to 1073741824",
            id="max-body-bytes-huge",
        ),
        pytest.param(
            edited('base_path = "/scim/v2"', 'base_path = "/scim/../v2"'),
            "config.toml: server.base_path: must be a path without empty, '.' or '..' "
            "segments, got '/scim/../v2'",
            id="base-path-dot-segments",
        ),
        pytest.param(
            edited('base_path = "/scim/v2"', 'base_path = "/scim//v2"'),
            "config.toml: server.base_path: must be a path without empty, '.' or '..' "
            "segments, got '/scim//v2'",
            id="base-path-empty-segment",
        ),
        pytest.param(
            edited('base_path = "/scim/v2"', 'base_path = "//scim/v2"'),
            "config.toml: server.base_path: must be a path without empty, '.' or '..' "
            "segments, got '//scim/v2'",
            id="base-path-leading-empty-segment",
        ),
        pytest.param(
            edited("max_page_size = 1000", 'max_page_size = "1000"'),
            "config.toml: server.max_page_size: input should be a valid integer",
            id="max-page-size-string",
        ),
        pytest.param(
            edited('public_url = ""', 'public_url = "ftp://admin:pa55@idm.example.com"'),
            "config.toml: server.public_url: must be an http:// or https:// URL without a "
            "query or fragment",
            id="public-url-scheme",
        ),
        pytest.param(
            edited('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:8080"\nlisten_port = 1'),
            "config.toml: server.listen_port: unknown key (did you mean 'listen'?)",
            id="unknown-key",
        ),
        pytest.param(
            edited("[server]", "[servers]"),
            "config.toml: servers: unknown key (did you mean 'server'?)",
            id="unknown-table",
        ),
        pytest.param(
            edited('mapping = "sql-default"\n', ""),
            "config.toml: mapping: field required",
            id="mapping-missing",
        ),
        pytest.param(
            edited('mapping = "sql-default"', 'mapping = "sql-defualt"'),
            "config.toml: mapping: 'sql-defualt' is not a preset (did you mean 'sql-default'?) "
            "(ldap-389ds, "
            "ldap-active-directory, ldap-openldap, sql-default, sql-hr-table); "
            "a mapping file's path ends in .toml",
            id="mapping-unknown-preset",
        ),
        pytest.param(
            edited(f'[[auth.tokens]]\nsha256 = "{DIGEST}"\n', ""),
            "config.toml: auth: field required",
            id="auth-missing",
        ),
        pytest.param(
            edited(f'[[auth.tokens]]\nsha256 = "{DIGEST}"\n', "[auth]\ntokens = []\n"),
            "config.toml: auth.tokens: list should have at least 1 item after validation, not 0",
            id="no-tokens",
        ),
        pytest.param(
            edited(f'sha256 = "{DIGEST}"', f'sha256 = "{DIGEST}"\nenv = "SCIM_BRIDGE_TOKEN"'),
            "config.toml: auth.tokens[0]: give exactly one of env or sha256",
            id="token-env-and-sha256",
        ),
        pytest.param(
            edited(f'sha256 = "{DIGEST}"', ""),
            "config.toml: auth.tokens[0]: give exactly one of env or sha256",
            id="token-neither",
        ),
        pytest.param(
            edited(f'sha256 = "{DIGEST}"', 'sha256 = "not-a-digest"'),
            "config.toml: auth.tokens[0].sha256: must be the 64 hex digits of a SHA-256 digest",
            id="token-bad-sha256",
        ),
        pytest.param(
            edited(f'sha256 = "{DIGEST}"', 'env = "SCIM BRIDGE"'),
            "config.toml: auth.tokens[0].env: not the name of an environment variable; give the "
            "name of the variable that holds the secret, never the secret itself",
            id="token-bad-env-name",
        ),
        pytest.param(
            edited('url = "sqlite+aiosqlite:///bridge.db"\n', ""),
            "config.toml: connector.url: field required",
            id="connector-url-missing",
        ),
        pytest.param(
            edited('type = "sql"', 'type = "nosql"'),
            "config.toml: connector.type: must be one of 'sql', 'ldap', 'webhook'",
            id="connector-type",
        ),
        pytest.param(
            edited(
                'url = "sqlite+aiosqlite:///bridge.db"',
                'url = "postgresql://scim:secret@127.0.0.1/scim"',
            ),
            "config.toml: connector.url: unsupported database scheme 'postgresql': use one of "
            "sqlite+aiosqlite://, postgresql+asyncpg://, mysql+aiomysql://, mariadb+aiomysql://",
            id="connector-url-scheme",
        ),
        pytest.param(
            edited('public_url = ""', 'public_url = ""\nworkers = 0'),
            "config.toml: server.workers: input should be greater than or equal to 1",
            id="workers-zero",
        ),
        pytest.param(
            edited('public_url = ""', 'public_url = ""\nworkers = 2'),
            "config.toml: server.workers: connector.url is a SQLite file, which takes one "
            "writer at a time; use PostgreSQL or MariaDB, or workers = 1",
            id="workers-on-sqlite",
        ),
        pytest.param(
            edited('public_url = ""', 'public_url = ""\nworkers = 2')
            .replace("sqlite+aiosqlite:///bridge.db", "postgresql+asyncpg://postgres@127.0.0.1/db")
            .replace("create_tables = true\n", "")
            + '[users]\nnotify = ["hr"]\n[events]\nstore = "sqlite+aiosqlite:///events.db"\n'
            '[webhooks.hr]\nurl = "http://127.0.0.1:9/"\nsecret_env = "HR_SECRET"\n',
            "config.toml: server.workers: events.store is a SQLite file, which takes one "
            "writer at a time; use PostgreSQL or MariaDB, or workers = 1",
            id="workers-with-sqlite-events",
        ),
        pytest.param(
            'source = "elsewhere.toml"\n' + VALID,
            "config.toml: source: unknown key",
            id="source-is-not-a-key",
        ),
        pytest.param(
            edited('base_path = "/scim/v2"', 'base_path = "/scim/v2'),
            "config.toml: invalid TOML: illegal character '\\n' (at line 5, column 22)",
            id="toml-syntax",
        ),
    ],
)
def test_each_problem_is_one_exact_line(
    write_config, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    assert check_problems(write_config(text), capsys) == [line]


def test_every_problem_is_reported_at_once(write_config, capsys) -> None:
    text = (
        edited('listen = "127.0.0.1:8080"', 'listen = "localhost"')
        .replace("max_page_size = 1000", "max_page_size = -1")
        .replace(f'sha256 = "{DIGEST}"', 'sha256 = "abc"')
        .replace('url = "sqlite+aiosqlite:///bridge.db"\n', "")
    )
    assert check_problems(write_config(text), capsys) == [
        "config.toml: server.listen: expected HOST:PORT, got 'localhost'",
        "config.toml: server.max_page_size: input should be greater than 0",
        "config.toml: auth.tokens[0].sha256: must be the 64 hex digits of a SHA-256 digest",
        "config.toml: connector.url: field required",
    ]


def test_mapping_written_after_a_table(write_config, capsys) -> None:
    text = edited('mapping = "sql-default"\n', "") + 'mapping = "sql-default"\n'
    assert check_problems(write_config(text), capsys) == [
        "config.toml: connector.mapping: unknown key "
        "(a top-level key such as mapping must come before the first [table])",
        "config.toml: mapping: field required",
    ]


def test_missing_file(write_config, capsys) -> None:
    assert check_problems(pathlib.Path("absent.toml"), capsys) == ["absent.toml: file not found"]


def test_not_utf8(write_config, capsys) -> None:
    path = write_config("")
    path.write_bytes(b'# settings\nmapping = "\xff"\n')
    assert check_problems(path, capsys) == [
        "config.toml: line 2: not UTF-8 text (byte 0xff); save it as UTF-8"
    ]


def test_a_byte_order_mark_is_named(write_config, capsys) -> None:
    path = write_config("")
    path.write_bytes(b'\xef\xbb\xbfmapping = "sql-default"\n')
    assert check_problems(path, capsys) == [
        "config.toml: starts with a byte order mark; save it as UTF-8 without BOM"
    ]


def test_a_password_in_the_url_is_never_repeated(write_config, capsys) -> None:
    text = edited('url = "sqlite+aiosqlite:///bridge.db"', 'url = "oracle://scim:hunter2@db/scim"')
    (line,) = check_problems(write_config(text), capsys)
    assert line.startswith("config.toml: connector.url: ")
    assert "hunter2" not in line


def test_python_m_bridge_reports_and_exits_2(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "check", "--config", "absent.toml"],
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "absent.toml: file not found\n",
    )


def test_defaults_and_normalisation(write_config) -> None:
    text = VALID.replace('listen = "127.0.0.1:8080"\n', "")
    text = text.replace('base_path = "/scim/v2"', 'base_path = "/scim/v2/"')
    text = text.replace('public_url = ""', 'public_url = "https://idm.example.com/"')
    text = text.replace(f'sha256 = "{DIGEST}"', f'sha256 = "{"AB" * 32}"')
    settings = load_config(write_config(text))
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.server.base_path == "/scim/v2"
    assert settings.server.public_url == "https://idm.example.com"
    assert settings.auth.tokens[0].sha256 == "ab" * 32
    assert settings.source == pathlib.Path("config.toml")


def test_empty_public_url_means_none(write_config) -> None:
    assert load_config(write_config(VALID)).server.public_url is None


def test_server_table_may_be_left_out(write_config) -> None:
    server = VALID[VALID.index("[server]") : VALID.index("[[auth.tokens]]")]
    settings = load_config(write_config(VALID.replace(server, "")))
    assert settings.server.listen == "127.0.0.1:8080"
    assert settings.server.max_page_size == 1000


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:8443", ("::1", 8443)),
        ("scim.example.com:0", ("scim.example.com", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (":8080", "expected HOST:PORT, got ':8080'"),
        ("[::1]", "expected [IPv6]:PORT, got '[::1]'"),
        ("[::1]8080", "expected [IPv6]:PORT, got '[::1]8080'"),
        ("host:", "'' is not a port number (0-65535)"),
        ("host:-1", "'-1' is not a port number (0-65535)"),
        ("host:80a", "'80a' is not a port number (0-65535)"),
        ("-host:80", "'-host' is not a host name or address"),
    ],
)
def test_parse_listen_refuses(listen: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_listen(listen)


def test_mapping_preset_and_paths(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    path.write_text(VALID)
    assert load_config(path).mapping_source() == "sql-default"
    path.write_text(VALID.replace('"sql-default"', '"mappings/hr.toml"'))
    assert load_config(path).mapping_source() == tmp_path / "etc" / "mappings" / "hr.toml"
    path.write_text(VALID.replace('"sql-default"', '"hr.toml"'))
    assert load_config(path).mapping_source() == tmp_path / "etc" / "hr.toml"
    path.write_text(VALID.replace('"sql-default"', '"/srv/scim/hr.toml"'))
    assert load_config(path).mapping_source() == pathlib.Path("/srv/scim/hr.toml")


def test_config_error_joins_its_problems() -> None:
    error = ConfigError(["a.toml: x: wrong", "a.toml: y: wrong too"])
    assert error.problems == ["a.toml: x: wrong", "a.toml: y: wrong too"]
    assert str(error) == "a.toml: x: wrong\na.toml: y: wrong too"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(
            edited('mapping = "sql-default"', 'mappng = "sql-default"'),
            "config.toml: mappng: unknown key (did you mean 'mapping'?)",
            id="top-level",
        ),
        pytest.param(
            edited('sha256 = "', 'sha265 = "'),
            "config.toml: auth.tokens[0].sha265: unknown key (did you mean 'sha256'?)",
            id="list-item",
        ),
        pytest.param(
            edited("create_tables = true", "create_table = true"),
            "config.toml: connector.create_table: unknown key (did you mean 'create_tables'?)",
            id="connector-by-its-type",
        ),
        pytest.param(
            VALID + '[webhooks.audit]\nurl = "http://127.0.0.1:9/e"\nsecret_env = "S"\n'
            "timout = 3\n",
            "config.toml: webhooks.audit.timout: unknown key (did you mean 'timeout'?)",
            id="named-table",
        ),
        pytest.param(
            VALID + "[events]\nfavourite_colour = 1\n",
            "config.toml: events.favourite_colour: unknown key",
            id="nothing-near",
        ),
    ],
)
def test_an_unknown_key_names_the_one_meant(
    write_config, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    """A misspelt key is refused with the nearest key that table takes, in every kind of
    table: the top level, an item of a list, the connector of the chosen `type`, a named
    table. Nothing is offered when no key is near."""
    assert line in check_problems(write_config(text), capsys)


def test_a_token_given_as_a_string_is_told_where_tokens_go(
    write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tokens = "..."` was told `must be a list: tokens = ["..."]`, which led the admin to
    write the token into the file as a list of strings (refused next as no table)."""
    text = edited(f'[[auth.tokens]]\nsha256 = "{DIGEST}"', '[auth]\ntokens = "hunter2"')
    [line] = check_problems(write_config(text), capsys)
    assert line.startswith(
        "config.toml: auth.tokens: must be a list of tables: write each one as [[auth.tokens]]; "
        "a token is never written in the file"
    )
    assert "hunter2" not in line
