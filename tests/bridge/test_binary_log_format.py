"""A MariaDB server that writes its binary log as statements (binlog_format = STATEMENT)
refuses the READ COMMITTED writes that synchronous webhook receivers need: `check` (and so
`serve`) says so before anything is served, for the SQL and the webhook connector alike.
A server of the test's own (tests/mariadb_server.py), since the shared one logs nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pymysql
import pytest
from config_files import Write, check_output, check_problems
from mariadb_server import HOST, execute, private_mariadb
from ports import free_port

PROBLEM = (
    "config.toml: connector: the database writes its binary log as statements "
    "(binlog_format = STATEMENT), and then refuses the READ COMMITTED writes that a "
    "synchronous webhook receiver needs (error 1665): set binlog_format = MIXED or ROW on "
    "the server, or make the receivers asynchronous (synchronous = false)"
)


@pytest.fixture(scope="module")
def statement_logging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a MariaDB server logging statements, with an empty database `bridge`."""
    options = ["--log-bin=binary-log", "--binlog-format=STATEMENT", "--server-id=1"]
    with private_mariadb(tmp_path_factory.mktemp("mariadb"), options) as port:
        execute(port, "CREATE DATABASE bridge")
        yield port


def _config(port: int, connector: str, synchronous: bool) -> str:
    url = f"mysql+aiomysql://root@{HOST}:{port}/bridge?charset=utf8mb4"
    receiver = (
        '[webhooks.hr]\nurl = "http://127.0.0.1:9/in"\nsecret_env = "HR_SECRET"\n'
        f"synchronous = {str(synchronous).lower()}\n"
    )
    if connector == "sql":
        source = f'type = "sql"\nurl = "{url}"\ncreate_tables = true\n'
        return _with(source, receiver + '[users]\nnotify = ["hr"]\n')
    return _with(f'type = "webhook"\nurl = "{url}"\nwebhooks = ["hr"]\n', receiver)


def _with(connector: str, rest: str) -> str:
    return (
        'mapping = "sql-default"\n[server]\nlisten = "127.0.0.1:8080"\n'
        '[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
        f"[connector]\n{connector}{rest}"
    )


def test_such_a_server_refuses_a_read_committed_write(statement_logging: int) -> None:
    """The premise of the check: even a write that changes no row is refused."""
    execute(statement_logging, "CREATE TABLE bridge.probe (id INT PRIMARY KEY) ENGINE=InnoDB")
    try:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            execute(
                statement_logging,
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                "UPDATE bridge.probe SET id = id WHERE id = 1",
            )
        assert refused.value.args[0] == 1665
    finally:
        execute(statement_logging, "DROP TABLE bridge.probe")


@pytest.mark.parametrize("connector", ["sql", "webhook"])
def test_synchronous_receivers_on_a_server_logging_statements_are_refused(
    statement_logging: int, write: Write, capsys: pytest.CaptureFixture[str], connector: str
) -> None:
    path = write(_config(statement_logging, connector, synchronous=True))
    assert check_problems(path, capsys) == [PROBLEM]


def test_serve_refuses_to_start_there(statement_logging: int, write: Write) -> None:
    """`serve` opens the connector (its tables made) before it verifies: the other path.
    A process of its own, stopped if it serves instead."""
    path = write(_config(statement_logging, "sql", synchronous=True))
    port = free_port()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bridge", "serve", "--config", str(path), "--listen",
             f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("serve started on a server logging statements")
    assert (done.returncode, done.stderr.splitlines()) == (2, [PROBLEM])


@pytest.mark.parametrize("connector", ["sql", "webhook"])
def test_asynchronous_receivers_need_no_read_committed_write(
    statement_logging: int, write: Write, capsys: pytest.CaptureFixture[str], connector: str
) -> None:
    path = write(_config(statement_logging, connector, synchronous=False))
    assert "ok: config.toml: configuration is valid" in check_output(path, capsys)


def test_a_server_logging_mixed_takes_synchronous_receivers(
    statement_logging: int, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    """MIXED logs a READ COMMITTED write as rows: nothing to say (new connections take the
    global format)."""
    execute(statement_logging, "SET GLOBAL binlog_format = 'MIXED'")
    try:
        path = write(_config(statement_logging, "sql", synchronous=True))
        assert "ok: config.toml: configuration is valid" in check_output(path, capsys)
    finally:
        execute(statement_logging, "SET GLOBAL binlog_format = 'STATEMENT'")
