"""Mistakes in the configuration of events are named before anything starts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from backends import create_database, drop_database
from receiver import SECRET
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.cli import main
from bridge.config import ConfigError, load_config

SQL = (
    'mapping = "sql-default"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
    '[connector]\ntype = "sql"\nurl = "sqlite+aiosqlite:///{tmp}/x.db"\ncreate_tables = true\n'
)
LDAP = (
    'mapping = "ldap-openldap"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
    '[connector]\ntype = "ldap"\nurls = ["ldap://127.0.0.1:9"]\n'
)
HOOK = '[webhooks.hr]\nurl = "https://hr.example.com/events"\nsecret_env = "HR_SECRET"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SQL + '[users]\nnotify = ["hr"]\n', "users.notify: no [webhooks.hr] table"),
        (
            SQL + HOOK + '[groups]\nnotify = ["audit"]\n',
            "groups.notify: no [webhooks.audit] table (known: hr)",
        ),
        (
            LDAP + HOOK + '[users]\nnotify = ["hr"]\n',
            "events.store: a directory has no database for events; name one",
        ),
        (
            SQL
            + HOOK
            + "synchronous = true\n"
            + HOOK.replace("hr", "audit")
            + "synchronous = true\n"
            + '[users]\nnotify = ["hr", "audit"]\n',
            "webhooks.audit.synchronous: one synchronous webhook per resource type "
            "(webhooks.hr is one already)",
        ),
        (
            LDAP
            + HOOK
            + 'synchronous = true\n[users]\nnotify = ["hr"]\n'
            + '[events]\nstore = "sqlite+aiosqlite:///e.db"\n',
            "webhooks.hr.synchronous: a refusal can only undo a change written in the same "
            "transaction as its event",
        ),
        (
            LDAP.replace("[[auth", "[server]\nworkers = 2\n[[auth")
            + HOOK
            + '[users]\nnotify = ["hr"]\n'
            + '[events]\nstore = "postgresql+asyncpg://postgres@127.0.0.1/events"\n',
            "server.workers: a directory's events are put in the order of its writes inside "
            "one process; with webhooks on a ldap connector, workers must be 1",
        ),
        (
            SQL + '[webhooks.hr]\nurl = "htps://h.example/T0/s3cr3t"\nsecret_env = "HR_SECRET"\n',
            "webhooks.hr.url: is not an http:// or https:// URL with a host",
        ),
        (
            # The secret itself pasted where its variable's name goes: never quoted.
            SQL + HOOK.replace('"HR_SECRET"', '"whsec_o8xZbQLK+50="'),
            "webhooks.hr.secret_env: not the name of an environment variable; give the name of "
            "the variable that holds the secret, never the secret itself",
        ),
        (
            SQL.replace('type = "sql"', 'type = "webhook"').replace(
                "create_tables = true\n", "webhooks = []\n"
            ),
            "connector.webhooks: list should have at least 1 item",
        ),
        (
            # Events that would vanish with the process, undelivered.
            LDAP + HOOK + '[users]\nnotify = ["hr"]\n[events]\nstore = "sqlite+aiosqlite://"\n',
            "events.store: names an in-memory SQLite database, emptied whenever the service stops",
        ),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text.replace("{tmp}", str(tmp_path)))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "o8xZbQLK" not in str(caught.value.problems)
    assert any(line.startswith(f"{path}: {expected}") for line in caught.value.problems), (
        caught.value.problems
    )
    assert "s3cr3t" not in str(caught.value)  # a URL's token is never repeated


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        (None, "webhooks.hr.secret_env: environment variable HR_SECRET is not set"),
        (
            "plain-text-secret",
            "webhooks.hr.secret_env: environment variable HR_SECRET: must start with whsec_ "
            "followed by a base64 key",
        ),
    ],
)
def test_check_names_a_secret_that_cannot_be_used(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    secret: str | None,
    expected: str,
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    if secret is None:
        monkeypatch.delenv("HR_SECRET", raising=False)
    else:
        monkeypatch.setenv("HR_SECRET", secret)
    path = tmp_path / "config.toml"
    path.write_text(SQL.replace("{tmp}", str(tmp_path)) + HOOK + '[users]\nnotify = ["hr"]\n')
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}: {expected}"]
    assert "plain-text-secret" not in "\n".join(err)


def test_check_passes_with_a_usable_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    monkeypatch.setenv("HR_SECRET", SECRET)
    path = tmp_path / "config.toml"
    path.write_text(SQL.replace("{tmp}", str(tmp_path)) + HOOK + '[users]\nnotify = ["hr"]\n')
    assert main(["check", "--config", str(path)]) == 0, capsys.readouterr().err


STORE = "sqlite+aiosqlite:///{tmp}/store.db"
WEBHOOK_CONNECTOR = (
    'mapping = "sql-default"\n[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n'
    f'[connector]\ntype = "webhook"\nurl = "{STORE}"\n'
    'webhooks = ["hr"]\n'
)


@pytest.mark.parametrize(
    "config", [SQL + HOOK + '[users]\nnotify = ["hr"]\n', WEBHOOK_CONNECTOR + HOOK]
)
def test_check_creates_no_store(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    config: str,
) -> None:
    """Neither the connector's tables nor the events' database: connecting to a SQLite
    file that does not exist creates it, which is `serve`'s to do."""
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    monkeypatch.setenv("HR_SECRET", SECRET)
    path = tmp_path / "config.toml"
    path.write_text(config.replace("{tmp}", str(tmp_path)))
    assert main(["check", "--config", str(path)]) == 0, capsys.readouterr().err
    assert [each.name for each in tmp_path.iterdir()] == ["config.toml"]


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_check_creates_no_table_in_a_database_store(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    """MariaDB commits each CREATE TABLE by itself: a transaction rolled back would not
    undo them there, so the check only names what `serve` will create."""
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", "test-token-0123456789")
    monkeypatch.setenv("HR_SECRET", SECRET)
    url = await create_database(backend, tmp_path)
    try:
        path = tmp_path / "config.toml"
        path.write_text(WEBHOOK_CONNECTOR.replace(STORE, url) + HOOK)
        status = await asyncio.to_thread(main, ["check", "--config", str(path)])
        out = capsys.readouterr().out
        assert status == 0, out
        assert "serve creates its tables: users, groups, memberships" in out
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        finally:
            await engine.dispose()
        assert tables == []
    finally:
        await drop_database(backend, url)
