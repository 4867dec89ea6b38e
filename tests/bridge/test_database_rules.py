"""A rule of the database itself refusing a write (a CHECK constraint, a trigger) is the
client's 400 invalidValue, naming the constraint; the admin's log says which table and
constraint, or the trigger's own words, in one warning line: never the statement, never
the row's values. Any SQL error that does reach a log has its parameters hidden.

On the sql-hr-table preset's `hr_staff`, with rules an HR system's database may have.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from hr_table import HR_STAFF, execute, rows, user
from scim_client import Scim, write_config
from served import serve_config

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
DEPARTMENT = f"{ENTERPRISE}:department"
RULE = "the database refused the change (a rule of its own, such as a trigger)"
HIDDEN = "[SQL parameters hidden due to hide_parameters=True]"
# Values of the row written: none may reach the log.
PERSONAL = ("jane.secret", "Jane-Given", "Doe-Family", "P-7731")

TRIGGERS = {
    "postgresql": [
        """CREATE FUNCTION hr_titles() RETURNS trigger AS $$
        BEGIN
          IF NEW.job_title = 'Chief' THEN
            RAISE EXCEPTION 'titles of chiefs are set in the HR system only';
          END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql""",
        "CREATE TRIGGER hr_titles BEFORE INSERT OR UPDATE ON hr_staff "
        "FOR EACH ROW EXECUTE FUNCTION hr_titles()",
    ],
    "mariadb": [
        """CREATE TRIGGER hr_titles BEFORE INSERT ON hr_staff FOR EACH ROW
        BEGIN
          IF NEW.job_title = 'Chief' THEN
            SIGNAL SQLSTATE '45000'
              SET MESSAGE_TEXT = 'titles of chiefs are set in the HR system only';
          END IF;
        END""",
    ],
    "sqlite": [
        """CREATE TRIGGER hr_titles BEFORE INSERT ON hr_staff FOR EACH ROW
        WHEN NEW.job_title = 'Chief'
        BEGIN
          SELECT RAISE(ABORT, 'titles of chiefs are set in the HR system only');
        END""",
    ],
}
RULE_CODE = {
    "postgresql": "SQLSTATE P0001",
    "mariadb": "SQLSTATE 45000",
    "sqlite": "SQLITE_CONSTRAINT_TRIGGER",
}


def backend_of(url: str) -> str:
    return {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mariadb"}[
        url.split("+", 1)[0]
    ]


@pytest.fixture
async def ruled(sql_url: str) -> str:
    """hr_staff with a column's CHECK on dept_code (unnamed, as an admin adds one), a
    table's named CHECK on job_title, and a trigger refusing a title."""
    backend = backend_of(sql_url)
    timestamp = "TIMESTAMP" if backend == "postgresql" else "DATETIME NULL"
    table = HR_STAFF.format(timestamp=timestamp)
    table = table.replace(
        "dept_code     VARCHAR(10),",
        "dept_code     VARCHAR(10) CHECK (dept_code IN ('FIN', 'ENG')),",
    )
    table = (
        table.rstrip().removesuffix(")")
        + ",\n  CONSTRAINT title_known CHECK (job_title <> 'Boss')\n)"
    )
    await execute(sql_url, table)
    for statement in TRIGGERS[backend]:
        await execute(sql_url, statement)
    return sql_url


@pytest.fixture
async def scim(ruled: str, tmp_path: Path, aiohttp_client: Any) -> Scim:
    config = write_config(tmp_path, ruled, mapping="sql-hr-table")
    return await serve_config(config, aiohttp_client, None)


def jane(department: str = "FIN", **attributes: Any) -> dict[str, Any]:
    enterprise = {"employeeNumber": PERSONAL[3], "department": department}
    return user(
        PERSONAL[0],
        name={"givenName": PERSONAL[1], "familyName": PERSONAL[2]},
        **{ENTERPRISE: enterprise},
        **attributes,
    )


def sql_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("scim_bridge") and r.name != "scim_bridge.access"
    ]


def refused(answer: Any) -> str:
    """The detail of a 400 invalidValue."""
    assert answer.status == 400, answer.body
    assert answer.body["scimType"] == "invalidValue"
    return str(answer.body["detail"])


def warned(caplog: pytest.LogCaptureFixture) -> str:
    """The one line the service logged beside the access log: a warning, no traceback."""
    [warning] = sql_records(caplog)
    assert warning.levelno == logging.WARNING
    assert warning.exc_info is None
    return warning.getMessage()


def assert_no_values(caplog: pytest.LogCaptureFixture) -> None:
    for value in PERSONAL:
        assert value not in caplog.text, caplog.text


def assert_nothing_personal(caplog: pytest.LogCaptureFixture) -> None:
    assert_no_values(caplog)
    text = caplog.text
    for value in ("Chief", "Boss", "BOGUS", "INSERT", "UPDATE", "Traceback"):
        assert value not in text, text


async def test_a_check_constraint_of_a_column_is_named_to_the_client_and_the_admin(
    scim: Scim, ruled: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    detail = refused(await scim.post("/Users", jane(department="bogus")))
    backend = backend_of(ruled)
    if backend == "postgresql":  # PostgreSQL names the constraint, not its column
        constraint = "hr_staff_dept_code_check"
        assert detail == f'the value is refused by the check constraint "{constraint}"'
    elif backend == "mariadb":  # MariaDB names a column's constraint table.column
        constraint = "hr_staff.dept_code"
        assert (
            detail == f'{DEPARTMENT}: the value is refused by the check constraint "{constraint}"'
        )
    else:  # SQLite names an unnamed constraint by its expression: SQL, for the log only
        constraint = "without a name, dept_code IN ('FIN', 'ENG')"
        assert detail == "the value is refused by a check constraint of the table"
    message = warned(caplog)
    assert message.startswith("the database refused a value for table hr_staff"), message
    assert message.endswith(f"check constraint {constraint}"), message
    assert_nothing_personal(caplog)
    assert await rows(ruled, "SELECT login FROM hr_staff") == []


async def test_a_named_check_constraint_is_named_on_create_and_on_patch(
    scim: Scim, ruled: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    detail = 'the value is refused by the check constraint "title_known"'
    assert refused(await scim.post("/Users", jane(title="Boss"))) == detail
    created = await scim.create_user("kim", title="Clerk")
    patched = await scim.patch(
        f"/Users/{created['id']}", {"op": "replace", "path": "title", "value": "Boss"}
    )
    assert refused(patched) == detail
    warnings = [r.getMessage() for r in sql_records(caplog)]
    assert (
        warnings
        == ["the database refused a value for table hr_staff: check constraint title_known"] * 2
    )
    assert_nothing_personal(caplog)
    assert [row.job_title for row in await rows(ruled, "SELECT job_title FROM hr_staff")] == [
        "Clerk"
    ]


async def test_a_trigger_refusing_a_row_is_400_with_its_words_in_one_warning(
    scim: Scim, ruled: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # The trigger's words are the admin's: the client is told whose rule refused it.
    assert refused(await scim.post("/Users", jane(title="Chief"))) == RULE
    assert warned(caplog) == (
        "the database refused a change to table hr_staff by a rule of its own "
        f"({RULE_CODE[backend_of(ruled)]}): titles of chiefs are set in the HR system only"
    )
    assert_nothing_personal(caplog)
    assert await rows(ruled, "SELECT login FROM hr_staff") == []


async def test_an_unforeseen_sql_error_is_logged_without_the_rows_values(
    scim: Scim, ruled: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A column dropped behind the service's back: a 500 whose logged traceback holds the
    statement, but not the values it was to write."""
    await execute(ruled, "ALTER TABLE hr_staff DROP COLUMN personnel_no")
    answer = await scim.post("/Users", jane())
    assert answer.status == 500, answer.body
    assert "personnel_no" not in answer.body["detail"]
    assert HIDDEN in caplog.text
    assert_no_values(caplog)
