"""The scim-bridge command: token new, check and serve, end to end on SQLite."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import re
import signal
import socket
import sqlite3
import sys

import aiohttp
import pytest
from ports import free_port

from bridge.auth import TokenVerifier
from bridge.cli import main
from bridge.config import load_config
from connectors import build_connector
from mappings import load_mapping

CONNECTOR = """\
[connector]
type = "sql"
url = "sqlite+aiosqlite:///{database}"
"""


def write_config(
    directory: pathlib.Path,
    *,
    mapping: str = "sql-default",
    tokens: str = '[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n',
    create_tables: bool = True,
    server: str = "",
) -> pathlib.Path:
    path = directory / "config.toml"
    connector = CONNECTOR.format(database=directory / "bridge.db")
    path.write_text(
        f'mapping = "{mapping}"\n\n{tokens}\n{connector}'
        f"create_tables = {str(create_tables).lower()}\n"
        + (f"\n[server]\n{server}" if server else "")
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_token_new_configures_a_working_verifier(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "token", "new")
    assert (status, err) == (0, "")
    token = re.fullmatch(r"token: (\S+)", out.splitlines()[0])
    assert token is not None
    export = re.search(r"^export SCIM_BRIDGE_TOKEN='(\S+)'$", out, re.MULTILINE)
    assert export is not None
    assert export[1] == token[1]
    # The printed [[auth.tokens]] entries, pasted into a file as printed, work.
    tables = re.findall(r"^\[\[auth\.tokens\]\]\n\S+ = \"\S+\"$", out, re.MULTILINE)
    assert len(tables) == 2
    path = write_config(tmp_path, tokens="\n".join(tables) + "\n")
    auth = load_config(path).auth
    assert [(each.env, each.sha256 is not None) for each in auth.tokens] == [
        ("SCIM_BRIDGE_TOKEN", False),
        (None, True),
    ]
    for entry in auth.tokens:
        verifier = TokenVerifier.from_settings(
            auth.model_copy(update={"tokens": [entry]}),
            {"SCIM_BRIDGE_TOKEN": export[1]},
            str(path),
        )
        assert verifier.verify(token[1])
        assert not verifier.verify(token[1][:-1])


def test_token_new_prints_a_fresh_token_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, "token", "new")[1]
    second = run(capsys, "token", "new")[1]
    assert first.splitlines()[0] != second.splitlines()[0]


def test_check_passes_on_the_embedded_default(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    path = write_config(tmp_path)
    status, out, err = run(capsys, "check", "--config", str(path))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"ok: {path}: configuration is valid"
    assert lines[1] == "ok: 1 bearer token(s) configured"
    assert lines[2] == "ok: mapping sql-default: users and groups"
    assert lines[3] == (
        "ok: the backend is reachable; serve creates its tables: users, groups, memberships"
    )
    # A check writes nothing: the tables were made in a transaction rolled back, and the
    # database file that connecting created is gone again.
    assert sorted(each.name for each in tmp_path.iterdir()) == ["config.toml"]
    # The service creates them at its start; a check then finds them.
    asyncio.run(_open_and_close(path))
    assert (tmp_path / "bridge.db").exists()
    status, out, err = run(capsys, "check", "--config", str(path))
    assert (status, err) == (0, "")
    assert out.splitlines()[3] == (
        "ok: the backend is reachable and holds everything the mapping names"
    )


async def _open_and_close(path: pathlib.Path) -> None:
    """What `serve` does to the backend at start, without serving."""
    settings = load_config(path)
    connector = build_connector(settings.connector, load_mapping("sql-default").backend)
    await connector.open()
    await connector.close()


def test_check_leaves_an_existing_database_as_it_was(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """create_tables would add the missing tables to a file holding some: the check sees
    what would be made, reports what no creating can fix, and adds nothing."""
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    path = write_config(tmp_path)
    database = tmp_path / "bridge.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, user_name TEXT)")
    status, _, err = run(capsys, "check", "--config", str(path))
    assert status == 2
    assert 'table "users" has no column' in err
    again = run(capsys, "check", "--config", str(path))
    assert (again[0], again[2]) == (2, err)
    with sqlite3.connect(database) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [name for (name,) in tables] == ["users"]


def test_check_warns_of_what_runs_but_is_likely_a_slip(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An events store no webhook feeds, and a port that changes at every start, pass
    `check` (the service runs) but are said, each on a line of its own."""
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    path = write_config(tmp_path, server='listen = "127.0.0.1:0"\n')
    path.write_text(
        path.read_text() + f'\n[events]\nstore = "sqlite+aiosqlite:///{tmp_path}/events.db"\n'
    )
    status, out, err = run(capsys, "check", "--config", str(path))
    assert (status, err) == (0, "")
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {path}: events.store: no webhook receives events (connector.webhooks, "
        "users.notify and groups.notify name none), so nothing is ever kept there",
        f"warning: {path}: server.listen: port 0 takes any free port, another at each "
        "start, which an identity provider's base URL cannot follow; name a port (--listen "
        "127.0.0.1:0 is for trials)",
    ]
    assert f"ok: {path}: configuration is valid" in out


def test_check_of_a_plain_configuration_warns_of_nothing(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    path = write_config(tmp_path, server='listen = "127.0.0.1:8080"\n')
    status, out, _ = run(capsys, "check", "--config", str(path))
    assert status == 0
    assert "warning" not in out


def test_check_reports_a_column_the_mapping_names_but_the_table_lacks(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    with sqlite3.connect(tmp_path / "bridge.db") as database:
        database.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, login TEXT NOT NULL)")
    (tmp_path / "people.toml").write_text(
        '[users]\nobject = "people"\nkey = "id"\n\n'
        '[users.attributes]\nuserName = "login"\ntitle = "job_title"\n'
    )
    path = write_config(tmp_path, mapping="people.toml", create_tables=False)
    status, out, err = run(capsys, "check", "--config", str(path))
    assert (status, out) == (2, "")
    assert err.splitlines() == [f'{path}: connector: table "people" has no column "job_title"']


def test_check_reports_token_and_mapping_problems_together(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCIM_BRIDGE_TEST_TOKEN", raising=False)
    (tmp_path / "broken.toml").write_text('[users]\nkey = "id"\n')
    path = write_config(tmp_path, mapping="broken.toml")
    status, out, err = run(capsys, "check", "--config", str(path))
    assert (status, out) == (2, "")
    lines = err.splitlines()
    assert lines[0] == (
        f"{path}: auth.tokens[0].env: environment variable SCIM_BRIDGE_TEST_TOKEN is not set"
    )
    assert lines[1:]  # then the mapping's own lines
    assert all(line.startswith(f"{tmp_path / 'broken.toml'}: ") for line in lines[1:])


def test_check_reports_an_unreachable_backend(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    path = write_config(tmp_path, create_tables=False)
    # Port 9 (discard) on loopback: nothing listens there.
    path.write_text(
        path.read_text().replace(
            f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}",
            "postgresql+asyncpg://postgres:pw-not-shown@127.0.0.1:9/scim",
        )
    )
    status, out, err = run(capsys, "check", "--config", str(path))
    assert (status, out) == (2, "")
    assert err.splitlines() == [
        f"{path}: connector.url: postgresql+asyncpg://postgres@127.0.0.1:9/scim: "
        "connection refused (is the server running, on this port?)"
    ]
    assert "pw-not-shown" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["serve"], ["token"], ["serve", "--config", "c.toml", "--listen", "x"]):
        with pytest.raises(SystemExit) as raised:
            main(argv)
        assert raised.value.code == 2
    assert "expected HOST:PORT, got 'x'" in capsys.readouterr().err


async def start_serve(
    path: pathlib.Path, env: dict[str, str], *extra: str, default_sigint: bool = False
) -> asyncio.subprocess.Process:
    """`serve` in a process of its own. With `default_sigint`, SIGINT raises
    KeyboardInterrupt in it, as in a terminal, even when the tests run as a background
    job (which a shell starts with SIGINT ignored, and a child inherits that)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "serve",
        "--config",
        str(path),
        *extra,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_default_sigint if default_sigint else None,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def environment(**values: str) -> dict[str, str]:
    """This process's environment without the test token, with the repository importable."""
    env = {key: value for key, value in os.environ.items() if key != "SCIM_BRIDGE_TEST_TOKEN"}
    return env | {"PYTHONPATH": str(pathlib.Path(__file__).parents[2])} | values


async def test_serve_without_its_token_does_not_start(tmp_path: pathlib.Path) -> None:
    path = write_config(tmp_path)
    process = await start_serve(path, environment())
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert out == b""
    assert err.decode().splitlines() == [
        f"{path}: auth.tokens[0].env: environment variable SCIM_BRIDGE_TEST_TOKEN is not set"
    ]


async def _served_url(process: asyncio.subprocess.Process) -> tuple[str, bytes]:
    """The base URL `serve` logs once it serves, and what it wrote on stderr until then."""
    assert process.stderr is not None
    before = b""
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=30)
        assert line, "serve exited before serving"
        before += line
        pattern = r"serving SCIM 2.0 at (http://127\.0\.0\.1:(\d+)/scim/v2)$"
        found = re.search(pattern, line.decode().rstrip())
        if found:
            return found[1], before


async def serve_until_sigterm(
    path: pathlib.Path, token: str, requests: list[tuple[str, int]]
) -> str:
    """Start `serve`, GET each (path and query, expected status) with the token after one
    GET without it, stop it with SIGTERM, and return everything it wrote on stderr."""
    process = await start_serve(
        path, environment(SCIM_BRIDGE_TEST_TOKEN=token), "--listen", "127.0.0.1:0"
    )
    try:
        url, before = await _served_url(process)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/Users") as response:
                assert response.status == 401
            headers = {"Authorization": f"Bearer {token}"}
            for target, status in requests:
                async with session.get(f"{url}{target}", headers=headers) as response:
                    assert response.status == status
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0
        return (before + rest).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_serve_answers_with_the_token_then_stops_on_sigterm(
    tmp_path: pathlib.Path,
) -> None:
    path = write_config(tmp_path)
    stderr = await serve_until_sigterm(path, "serve-token-0123456789", [("/Users", 200)])
    assert "serve-token-0123456789" not in stderr


async def test_serve_logs_a_port_0_of_the_file_but_not_of_listen(
    tmp_path: pathlib.Path,
) -> None:
    path = write_config(tmp_path)
    stderr = await serve_until_sigterm(path, "serve-token-0123456789", [])
    assert "port 0" not in stderr  # --listen 127.0.0.1:0: asked for on purpose
    path = write_config(tmp_path, server='listen = "127.0.0.1:0"\n')
    process = await start_serve(path, environment(SCIM_BRIDGE_TEST_TOKEN="t-0123456789abcdef"))
    try:
        _, before = await _served_url(process)
        assert f"{path}: server.listen: port 0 takes any free port" in before.decode()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), timeout=30)


async def test_the_access_log_names_each_request_without_its_query(
    tmp_path: pathlib.Path,
) -> None:
    path = write_config(tmp_path)
    query = '/Users?filter=userName eq "private.person@example.com"'
    stderr = await serve_until_sigterm(
        path, "serve-token-0123456789", [(query, 200), ("/Users/404", 404)]
    )
    assert re.search(r'127\.0\.0\.1 "GET /scim/v2/Users" 200 \d+ [\d.]+ms$', stderr, re.M)
    assert re.search(r'"GET /scim/v2/Users/404" 404 \d+ [\d.]+ms$', stderr, re.M)
    assert re.search(r'"GET /scim/v2/Users" 401 ', stderr)
    assert "private.person" not in stderr
    assert "serve-token-0123456789" not in stderr


async def test_a_path_cannot_write_a_line_of_its_own_into_the_access_log(
    tmp_path: pathlib.Path,
) -> None:
    path = write_config(tmp_path)
    forged = "/x%0d%0a2026-12-01 INFO scim_bridge.access: forged%00"
    stderr = await serve_until_sigterm(path, "serve-token-0123456789", [(forged, 404)])
    assert not any(line.startswith("2026-12-01 INFO") for line in stderr.splitlines())
    assert "\x00" not in stderr
    assert re.search(r'"GET /scim/v2/x%0[dD]%0[aA]2026-12-01', stderr)


async def test_the_access_log_can_be_turned_off(tmp_path: pathlib.Path) -> None:
    path = write_config(tmp_path, server="access_log = false\n")
    stderr = await serve_until_sigterm(path, "serve-token-0123456789", [("/Users", 200)])
    assert "serving SCIM 2.0 at" in stderr
    assert '"GET /scim/v2/Users"' not in stderr


async def test_a_long_request_line_is_served_and_an_overlong_one_is_not_logged(
    tmp_path: pathlib.Path,
) -> None:
    path = write_config(tmp_path)
    long = '/Users?filter=externalId eq "private' + "x" * 20_000 + '"'
    overlong = '/Users?filter=externalId eq "private' + "x" * 100_000 + '"'
    stderr = await serve_until_sigterm(
        path, "serve-token-0123456789", [(long, 200), (overlong, 414)]
    )
    assert "private" not in stderr
    assert "Traceback" not in stderr
    assert "LineTooLong; the request is not logged" in stderr


async def test_a_request_aiohttp_cannot_parse_gets_a_scim_error_that_quotes_nothing(
    tmp_path: pathlib.Path,
) -> None:
    """aiohttp's own answer quotes the line it could not parse: here, the token."""
    token = "serve-token-0123456789"
    process = await start_serve(
        write_config(tmp_path), environment(SCIM_BRIDGE_TEST_TOKEN=token), "--listen", "127.0.0.1:0"
    )
    malformed = [
        f"Authorization: Bearer {token}\x01",  # a control character in a value
        f"Authorization Bearer {token}",  # no colon
        f"X-A: 1\r\n Authorization: Bearer {token}",  # an obsolete line folding
    ]
    try:
        url, _ = await _served_url(process)
        port = int(url.split(":")[2].split("/")[0])
        for header in malformed:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n".encode())
            answer = await asyncio.wait_for(reader.read(), timeout=10)  # it closes
            writer.close()
            head, _, body = answer.decode().partition("\r\n\r\n")
            assert head.startswith("HTTP/1.0 400 ") or head.startswith("HTTP/1.1 400 ")
            assert "Content-Type: application/scim+json" in head
            assert "Server: scim-bridge\r\n" in head
            assert json.loads(body) == {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "detail": "the request is not valid HTTP/1.1",
            }
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(f"{url}/Users", headers=headers) as response:
                assert response.status == 200
                assert response.headers["Server"] == "scim-bridge"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert token not in stderr.decode()
        assert stderr.decode().count("BadHttpMessage; the request is not logged") == 3
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_events_list_reads_a_database_without_events_and_leaves_it_so(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    sqlite3.connect(tmp_path / "bridge.db").close()
    assert run(capsys, "events", "list", "--config", str(path)) == (
        0,
        "pending: 0  delivered: 0  failed: 0\n",
        "",
    )
    with sqlite3.connect(tmp_path / "bridge.db") as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []


def test_events_commands_name_an_unreachable_store_in_one_line(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    port = free_port()  # a port nothing listens on
    path.write_text(
        path.read_text()
        + f'\n[events]\nstore = "postgresql+asyncpg://postgres@127.0.0.1:{port}/none"\n'
    )
    status, out, err = run(capsys, "events", "list", "--config", str(path))
    assert status == 2
    assert err.splitlines() == [
        f"{path}: events.store: postgresql+asyncpg://postgres@127.0.0.1:{port}/none: "
        "connection refused (is the server running, on this port?)"
    ]
    assert "Traceback" not in out + err


def test_events_list_limit_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["events", "list", "--config", "c.toml", "--limit", "-1"])
    assert raised.value.code == 2
    assert "expected a positive whole number, got '-1'" in capsys.readouterr().err


async def test_a_connection_that_never_finishes_its_request_is_closed(
    tmp_path: pathlib.Path,
) -> None:
    # Without it, connections sending their headers a line at a time (or nothing) were
    # held until the process ran out of file descriptors, no token needed.
    path = write_config(tmp_path, server="idle_timeout = 1\n")
    process, port = await serving(path)
    try:
        started = asyncio.get_running_loop().time()
        half = await asyncio.open_connection("127.0.0.1", port)
        silent = await asyncio.open_connection("127.0.0.1", port)
        half[1].write(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n")
        for reader, writer in (half, silent):
            assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # closed
            writer.close()
            await writer.wait_closed()
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), timeout=30)


def test_accept_failures_are_logged_once_a_minute() -> None:
    from bridge.access_log import _Throttled

    throttled = _Throttled("socket.accept() out of system resource")

    def record(at: float) -> logging.LogRecord:
        made = logging.LogRecord(
            "asyncio",
            logging.ERROR,
            "",
            0,
            "socket.accept() out of system resource",
            None,
            (OSError, OSError(24, "Too many open files"), None),
        )
        made.created = at
        return made

    first, flood, later = record(100.0), [record(100.0 + n / 10) for n in range(500)], record(161)
    assert throttled.filter(first)
    assert first.exc_info is None  # the traceback, identical each time, goes
    assert not any(throttled.filter(each) for each in flood)
    assert throttled.filter(later)
    assert "500 more since the last one" in str(later.msg)
    other = logging.LogRecord("asyncio", logging.ERROR, "", 0, "something else", None, None)
    assert throttled.filter(other)


async def test_a_quote_in_a_path_cannot_blur_the_access_log_fields(
    tmp_path: pathlib.Path,
) -> None:
    path = write_config(tmp_path)
    process, port = await serving(path)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'GET /scim/v2/Users/a"b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        await writer.wait_closed()
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = await asyncio.wait_for(process.communicate(), timeout=30)
    assert '"GET /scim/v2/Users/a%22b" 401 ' in rest.decode()


async def serving(path: pathlib.Path) -> tuple[asyncio.subprocess.Process, int]:
    """`serve` started on a free port, and that port once it serves."""
    process = await start_serve(
        path,
        environment(SCIM_BRIDGE_TEST_TOKEN="serve-token-0123456789"),
        "--listen",
        "127.0.0.1:0",
    )
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), timeout=30)).decode()
        assert line, "serve exited before serving"
        found = re.search(r"serving SCIM 2.0 at http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return process, int(found[1])


async def test_sigint_while_the_backend_is_slow_to_answer_stops_without_a_traceback(
    tmp_path: pathlib.Path,
) -> None:
    # A database that accepts the connection and never greets: serve waits for it at start
    # (connect_timeout 60 s), and Ctrl-C then stops it as asked, with no traceback.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        path = write_config(tmp_path)
        port = silent.getsockname()[1]
        path.write_text(
            path.read_text()
            .replace(
                f'url = "sqlite+aiosqlite:///{tmp_path / "bridge.db"}"',
                f'url = "mysql+aiomysql://root@127.0.0.1:{port}/db"\nconnect_timeout = 60',
            )
            .replace("create_tables = true\n", "")
        )
        process = await start_serve(
            path, environment(SCIM_BRIDGE_TEST_TOKEN="t" * 32), default_sigint=True
        )
        # Interrupted once it connects (past its imports, however slow the machine), and
        # never greeted.
        silent.setblocking(False)
        loop = asyncio.get_running_loop()
        accepted, _ = await asyncio.wait_for(loop.sock_accept(silent), timeout=60)
        try:
            await asyncio.sleep(0.2)
            process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            accepted.close()
        assert process.returncode == 130, err
        assert b"Traceback" not in err
        assert err.decode().splitlines()[-1] == "interrupted"
    finally:
        silent.close()
