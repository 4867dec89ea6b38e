"""A MariaDB server of a test's own, for what the shared one on 127.0.0.1:3306 is not
configured to show (it writes no binary log): its own data directory (mariadb-install-db),
a free port on 127.0.0.1, the options a test gives, stopped at the end.

Missing server binaries skip the tests that need one, or fail them when CI=true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pymysql
from ports import free_port
from required import missing

HOST = "127.0.0.1"
START_SECONDS = 30


def _binaries() -> tuple[str, str]:
    server, install = shutil.which("mariadbd"), shutil.which("mariadb-install-db")
    if server is None or install is None:
        missing("mariadbd and mariadb-install-db are not installed", "install mariadb-server")
    return server, install


@contextmanager
def private_mariadb(directory: Path, options: Sequence[str]) -> Iterator[int]:
    """Run a server on `directory` with `options` (mariadbd's own) until the block ends;
    its port. root connects without a password, over TCP only."""
    server, install = _binaries()
    data = directory / "data"
    # --user=root: as root (CI), mariadbd refuses to start unless told to stay root.
    user = ["--user=root"] if os.geteuid() == 0 else []
    root_login = "--auth-root-authentication-method=normal"  # root by password (none)
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", root_login, *user],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={data}",
            f"--port={port}",
            f"--bind-address={HOST}",
            f"--socket={directory / 'mariadb.sock'}",
            *user,
            *options,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(port, process, directory / "server.log")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            pymysql.connect(host=HOST, port=port, user="root", password="").close()
            return
        except pymysql.err.OperationalError:
            time.sleep(0.1)
    raise RuntimeError(f"mariadbd did not start:\n{log.read_text(errors='replace')[-2000:]}")


def execute(port: int, *statements: str) -> None:
    """Run `statements` as root, each committed."""
    connection = pymysql.connect(host=HOST, port=port, user="root", password="", autocommit=True)
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()
