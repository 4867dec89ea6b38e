"""A configuration file written in a test's own working directory, and what `load_config`
and `scim-bridge check` say of it: messages then name `config.toml`, as an admin's would."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from bridge.cli import main
from bridge.config import ConfigError, load_config

TOKEN = "config-token-0123456789"
SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="

Write = Callable[[str], pathlib.Path]


def sql_config(
    url: str = "sqlite+aiosqlite:///bridge.db",
    connector: str = "create_tables = true\n",
    server: str = "",
    tokens: str = '[[auth.tokens]]\nenv = "SCIM_BRIDGE_TEST_TOKEN"\n',
    rest: str = "",
    *,
    mapping: str = "sql-default",
) -> str:
    """A configuration on a SQL connector; each argument is TOML for its place."""
    return (
        f'mapping = "{mapping}"\n[server]\nlisten = "127.0.0.1:8080"\n{server}\n{tokens}\n'
        f'[connector]\ntype = "sql"\nurl = "{url}"\n{connector}\n{rest}'
    )


def config_writer(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Write:
    """Writes config.toml in `tmp_path`, made the working directory, with a usable token
    (SCIM_BRIDGE_TEST_TOKEN) and webhook secret (HR_SECRET) in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCIM_BRIDGE_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("HR_SECRET", SECRET)

    def write(text: str) -> pathlib.Path:
        path = pathlib.Path("config.toml")
        path.write_text(text)
        return path

    return write


def load_problems(path: pathlib.Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return raised.value.problems


def check_problems(path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`scim-bridge check`: exit status 2, nothing on stdout, the problem lines."""
    status = main(["check", "--config", str(path)])
    out, err = capsys.readouterr()
    assert (status, out) == (2, ""), err
    assert "Traceback" not in err
    return err.splitlines()


def check_output(path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`scim-bridge check`: exit status 0, the lines it printed."""
    status = main(["check", "--config", str(path)])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out.splitlines()
