"""Slips in a configuration a black-box probe found accepted, or reported in a way that
repeats a secret or misleads: each is refused in one line naming the file and the key."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2
import pytest
from config_files import TOKEN, Write, check_output, check_problems, load_problems, sql_config
from scim_client import BASE, write_config
from served import spawn_serve
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.config import load_config
from connectors.webhook.outbox import NewEvent, Outbox

PASTED_TOKEN = "li4YqsDwBwoPP8PFRM82JOImiL581_BNUTyaM5j4t4o"
PASTED_SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU"
PASTED_PASSWORD = "Corp2024Passw0rd"
HOOK = '[webhooks.hr]\nurl = "https://hr.example.com/in"\nsecret_env = "HR_SECRET"\n'


def token_entry(variable: str) -> str:
    return f'[[auth.tokens]]\nenv = "{variable}"\n'


def ldap_config(connector: str, urls: str = '["ldap://127.0.0.1:9"]') -> str:
    return (
        'mapping = "ldap-openldap"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f'[connector]\ntype = "ldap"\nurls = {urls}\n{connector}\n'
    )


# --- 1: a secret where a variable's name belongs is never repeated --------------------------

NOT_REPEATED = (
    "the environment variable named here is not set (its name is not repeated: one not in "
    "capitals may be a secret written there by mistake)"
)


def test_a_token_written_as_the_variable_name_is_not_repeated(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = check_problems(write(sql_config(tokens=token_entry(PASTED_TOKEN))), capsys)
    assert lines == [f"config.toml: auth.tokens[0].env: {NOT_REPEATED}"]


def test_a_webhook_secret_written_as_the_variable_name_is_not_repeated(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = HOOK.replace("HR_SECRET", PASTED_SECRET)
    lines = check_problems(write(sql_config(rest=hook + '[users]\nnotify = ["hr"]\n')), capsys)
    assert lines == [f"config.toml: webhooks.hr.secret_env: {NOT_REPEATED}"]


def test_a_bind_password_written_as_the_variable_name_is_not_repeated(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    text = ldap_config(
        f'bind_dn = "cn=admin,dc=example,dc=org"\npassword_env = "{PASTED_PASSWORD}"'
    )
    lines = check_problems(write(text), capsys)
    assert lines == [f"config.toml: connector.password_env: {NOT_REPEATED}"]


def test_a_secret_written_twice_as_a_variable_name_is_not_repeated(write: Write) -> None:
    tokens = f'[[auth.tokens]]\nenv = "{PASTED_TOKEN}"\n' * 2
    text = (
        'mapping = "sql-default"\n'
        + tokens
        + '[connector]\ntype = "sql"\nurl = "sqlite+aiosqlite:///b.db"\n'
    )
    (line,) = load_problems(write(text))
    assert PASTED_TOKEN not in line
    assert line.startswith("config.toml: auth.tokens[1].env: this name is already auth.tokens[0]")


def test_a_conventional_variable_name_is_still_named(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = check_problems(write(sql_config(tokens=token_entry("UNSET_SLIPS_TOKEN"))), capsys)
    assert lines == [
        "config.toml: auth.tokens[0].env: environment variable UNSET_SLIPS_TOKEN is not set"
    ]


@pytest.mark.parametrize("written", ["$UNSET_SLIPS_TOKEN", "${UNSET_SLIPS_TOKEN}"])
def test_a_shell_reference_is_told_to_drop_its_dollar(
    write: Write, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    # No shell expands the file: the name is what env takes. (It was blamed as a secret.)
    lines = check_problems(write(sql_config(tokens=token_entry(written))), capsys)
    assert lines == [
        "config.toml: auth.tokens[0].env: give the variable's name without the shell's $: "
        '"UNSET_SLIPS_TOKEN"'
    ]


def test_tokens_written_as_one_table_are_told_the_double_brackets(write: Write) -> None:
    text = (
        'mapping = "sql-default"\n[auth.tokens]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        '[connector]\ntype = "sql"\nurl = "sqlite+aiosqlite:///b.db"\n'
    )
    assert load_problems(write(text)) == [
        "config.toml: auth.tokens: must be a list of tables: write each one as "
        "[[auth.tokens]], not [auth.tokens]"
    ]


@pytest.mark.parametrize("key", ["token", "Token", "secret"])
def test_a_token_written_in_the_file_is_told_where_it_goes_without_repeating_it(
    write: Write, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """Not `unknown key`, which left the admin to guess."""
    lines = check_problems(
        write(sql_config(tokens=f'[[auth.tokens]]\n{key} = "{TOKEN}"\n')), capsys
    )
    assert lines == [
        f"config.toml: auth.tokens[0].{key}: a token is never written in the file (nor "
        "repeated here): put it in an environment variable named by env (env = "
        '"SCIM_BRIDGE_TOKEN" in [[auth.tokens]]), or its SHA-256 digest in sha256 '
        "(`scim-bridge token new` prints both)"
    ]


def test_a_single_url_where_a_list_belongs_shows_the_list_without_the_value(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = check_problems(write(ldap_config("", urls='"ldap://10.1.2.3:389"')), capsys)
    assert lines == ['config.toml: connector.urls: must be a list: urls = ["ldap://..."]']


def test_a_single_value_where_another_list_belongs_shows_the_list(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = check_problems(write(sql_config(rest='[users]\nnotify = "hr"\n')), capsys)
    assert lines == ['config.toml: users.notify: must be a list: notify = ["..."]']


# --- 2: an unescaped @ in a database password ----------------------------------------------


@pytest.mark.parametrize("key", ["connector.url", "events.store"])
def test_an_unescaped_at_sign_in_a_password_is_named_without_the_password(
    write: Write, key: str
) -> None:
    url = "postgresql+asyncpg://scim:Tr0ub4dor@2024@db.internal:5432/scim"
    if key == "connector.url":
        text = sql_config(url=url, connector="")
    else:
        text = sql_config(rest=f'{HOOK}[users]\nnotify = ["hr"]\n[events]\nstore = "{url}"\n')
    (line,) = load_problems(write(text))
    assert line == (
        f"config.toml: {key}: its password holds an @, which a URL writes as %40 (the URL is "
        "not repeated: it holds a password)"
    )
    assert "Tr0ub4dor" not in line
    assert "2024" not in line


def test_an_escaped_at_sign_is_fine(write: Write) -> None:
    url = "postgresql+asyncpg://scim:Tr0ub4dor%402024@db.internal:5432/scim"
    load_config(write(sql_config(url=url, connector="")))


# --- 3, 4, 7: numbers and addresses -------------------------------------------------------


def test_a_page_size_beyond_any_database_integer_is_refused(write: Write) -> None:
    text = sql_config(server="max_page_size = 99999999999999999999")
    assert load_problems(write(text)) == [
        "config.toml: server.max_page_size: input should be less than or equal to 100000"
    ]


def test_a_listen_address_with_a_scheme_says_so(write: Write) -> None:
    text = sql_config().replace('"127.0.0.1:8080"', '"http://127.0.0.1:8080"')
    assert load_problems(write(text)) == [
        "config.toml: server.listen: is HOST:PORT without a scheme: drop http:// "
        "(127.0.0.1:8080, [::1]:8080)"
    ]


def test_a_poll_interval_that_would_spin_is_refused(write: Write) -> None:
    text = sql_config(rest=f'{HOOK}[users]\nnotify = ["hr"]\n[events]\npoll_interval = 1e-9\n')
    assert load_problems(write(text)) == [
        "config.toml: events.poll_interval: must be at least 0.1 seconds: a write wakes "
        "delivery at once, and polling faster only keeps a core busy"
    ]


# --- 5, 6: file paths, relative to the configuration file ---------------------------------


def test_a_missing_mapping_file_names_the_key_and_the_path_tried(
    write: Write, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = check_problems(write(sql_config(mapping="nosuch.toml")), capsys)
    assert lines == [
        f"config.toml: mapping: no such file: {tmp_path / 'nosuch.toml'} (a mapping file's "
        "path is relative to the configuration file's directory)"
    ]


def test_a_ca_file_is_relative_to_the_configuration_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "etc"
    directory.mkdir()
    shutil.copy(ssl.get_default_verify_paths().cafile or "", directory / "ca.pem")
    config = directory / "config.toml"
    config.write_text(ldap_config('ca_file = "ca.pem"', urls='["ldaps://127.0.0.1:636"]'))
    monkeypatch.chdir(tmp_path)  # elsewhere than the configuration file
    settings = load_config(pathlib.Path("etc/config.toml"))
    assert getattr(settings.connector, "ca_file", None) == str(directory / "ca.pem")


def test_a_missing_ca_file_names_the_path_tried(write: Write, tmp_path: pathlib.Path) -> None:
    text = ldap_config('ca_file = "missing.pem"', urls='["ldaps://127.0.0.1:636"]')
    assert load_problems(write(text)) == [
        f"config.toml: connector.ca_file: '{tmp_path / 'missing.pem'}' is not a readable file"
    ]


# --- 8: tokens no client can present ------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (
            f"Bearer {TOKEN}",
            "starts with 'Bearer ': give the token alone (clients send 'Bearer ' before it)",
        ),
        (
            "first-half-0123 second-half-4567",
            "holds white space, which cannot follow 'Bearer ' in an Authorization header",
        ),
        (
            "tökén-0123456789abcdef",
            "holds characters other than printable ASCII, which an Authorization header does "
            "not carry",
        ),
    ],
)
def test_a_token_no_client_can_present_is_refused(
    write: Write,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    problem: str,
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", token + "\n")
    lines = check_problems(write(sql_config()), capsys)
    assert lines == [
        f"config.toml: auth.tokens[0].env: the token in SCIM_BRIDGE_TEST_TOKEN {problem}"
    ]
    assert token not in "\n".join(lines)


# --- 9, 10: events ------------------------------------------------------------------------


def test_group_events_for_a_mapping_without_groups_are_refused(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    text = sql_config(mapping="sql-hr-table", rest=f'{HOOK}[groups]\nnotify = ["hr"]\n')
    lines = check_problems(write(text), capsys)
    assert (
        "config.toml: groups.notify: the mapping maps no groups, so no group event is ever "
        "sent and webhooks.hr would receive none from it"
    ) in lines


def test_check_names_the_events_table_serve_creates(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = check_output(write(sql_config(rest=f'{HOOK}[users]\nnotify = ["hr"]\n')), capsys)
    assert (
        "ok: the backend is reachable; serve creates its tables: users, groups, memberships, "
        "scim_bridge_events"
    ) in lines


def test_check_names_the_events_table_of_a_store_of_its_own(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    store = '[events]\nstore = "sqlite+aiosqlite:///events.db"\n'
    text = sql_config(rest=f'{HOOK}[users]\nnotify = ["hr"]\n{store}')
    lines = check_output(write(text), capsys)
    assert (
        "ok: the backend is reachable; serve creates its tables: users, groups, memberships"
        in lines
    )
    assert "ok: events.store is reachable; serve creates its table: scim_bridge_events" in lines
    assert not pathlib.Path("events.db").exists()  # a check creates nothing


# --- 11, 12: what the processes print -----------------------------------------------------


def listed_into_a_closed_pipe(config: pathlib.Path, *extra: str) -> tuple[int, str]:
    """`events list` with its reader gone (`| head -1`): exit status and stderr."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bridge", "events", "list", "--config", str(config), *extra],
            stdout=writing,
            stderr=subprocess.PIPE,
            cwd=pathlib.Path.cwd(),
            env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[2])},
            timeout=60,
            check=False,
        )
    finally:
        os.close(writing)
    return done.returncode, done.stderr.decode()


def test_events_list_into_a_closed_pipe_exits_quietly(write: Write) -> None:
    config = write(sql_config(rest=f'{HOOK}[users]\nnotify = ["hr"]\n'))
    assert listed_into_a_closed_pipe(config) == (141, "")


def test_a_long_events_list_into_a_closed_pipe_exits_quietly_too(write: Write) -> None:
    """More than stdout's buffer of lines: the pipe breaks while the store is still being
    read, which answered status 2 blaming the database."""
    config = write(sql_config(rest=f'{HOOK}[users]\nnotify = ["hr"]\n'))

    async def pending_events() -> None:
        engine = create_async_engine("sqlite+aiosqlite:///bridge.db")
        try:
            async with engine.begin() as connection:
                outbox = Outbox()
                await outbox.create(connection)
                await outbox.append(
                    connection,
                    (
                        NewEvent(f"msg_{n}", "hr", "user.updated", "User", str(n), "{}")
                        for n in range(300)
                    ),
                )
        finally:
            await engine.dispose()

    asyncio.run(pending_events())
    assert listed_into_a_closed_pipe(config, "--limit", "300") == (141, "")


@pytest.fixture
def served_log(
    tmp_path: pathlib.Path,
) -> Iterator[tuple[str, pathlib.Path, subprocess.Popen[bytes]]]:
    config = write_config(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/served.db", extra="create_tables = true"
    )
    log = tmp_path / "serve.log"
    process, url = spawn_serve(config, log, {})
    try:
        yield url, log, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def test_a_body_that_is_not_gzip_is_one_log_line(
    served_log: tuple[str, pathlib.Path, subprocess.Popen[bytes]],
) -> None:
    url, log, process = served_log
    answer = httpx2.post(  # no token: anyone can send this
        f"{url}/Users",
        content=b"not gzip at all",
        headers={"Content-Type": "application/scim+json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 401
    for _ in range(100):
        if "could not be read" in log.read_text():
            break
        time.sleep(0.05)
    process.terminate()
    process.wait(timeout=10)
    written = log.read_text()
    assert "Traceback" not in written
    assert "ERROR" not in written
    assert (
        "WARNING aiohttp.server: a request body could not be read (ContentEncodingError); "
        "its connection is closed"
    ) in written
    assert BASE in written  # the access log line is kept


# --- A mapping's slips are said by check --------------------------------------------------


def test_a_slot_type_rfc_7643_does_not_list_is_a_warning_of_check(
    write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    preset = pathlib.Path(__file__).parents[2] / "mappings" / "sql-default.toml"
    text = preset.read_text().replace('emails[type eq "work"]', 'emails[type eq "wrok"]', 1)
    pathlib.Path("mine.toml").write_text(text)
    out = check_output(write(sql_config(mapping="mine.toml")), capsys)
    warnings = [line for line in out if line.startswith("warning:") and "wrok" in line]
    assert len(warnings) == 1, out
    assert warnings[0].startswith("warning: mine.toml: ")
