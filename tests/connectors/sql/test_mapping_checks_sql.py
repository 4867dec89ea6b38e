"""A mapping checked against existing tables: columns that cannot hold what it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from backends import create_database, drop_database
from sql_tables import connector_on
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import InvalidValue, Kind
from connectors.sql import SqlConnector, SqlSettings
from connectors.sql.caseless import on_sqlite
from mappings import load_mapping

MAPPING = """
[users]
object = "people"
key = "id"
[users.attributes]
userName = "login"
{attributes}
{rest}
"""


def people() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "people",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("email", sa.String(200)),
        sa.Column("badge_count", sa.Integer),
        sa.Column("status", sa.CHAR(1)),
        sa.Column("since", sa.DateTime),
        sa.Column("note", sa.String(100), nullable=False, server_default="-"),
    )
    return metadata


async def problems(
    url: str, tmp_path: Path, attributes: str, rest: str = "", metadata: sa.MetaData | None = None
) -> list[str]:
    engine = on_sqlite(create_async_engine(url))
    async with engine.begin() as connection:
        await connection.run_sync((metadata or people()).create_all)
    await engine.dispose()
    path = tmp_path / "my.toml"
    path.write_text(MAPPING.format(attributes=attributes, rest=rest))
    connector = SqlConnector(SqlSettings(type="sql", url=url), load_mapping(path).backend)
    await connector.open()
    try:
        return [line.replace(str(path), "my.toml") for line in await connector.verify()]
    finally:
        await connector.close()


async def test_fitting_columns(sql_url: str, tmp_path: Path) -> None:
    attributes = (
        '"emails.value" = { field = "email", split = "," }\n'
        'active = { field = "status", map = { true = "A", false = "T" } }\n'
        'externalId = "since"\n'  # text into a dateTime column: ISO 8601 is parsed
        '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"."manager.value" = '
        '{ field = "badge_count", reference = "users" }'
    )
    assert await problems(sql_url, tmp_path, attributes) == []


async def test_several_values_in_one_column(sql_url: str, tmp_path: Path) -> None:
    assert await problems(sql_url, tmp_path, 'emails = "email"') == [
        'my.toml: users.attributes.emails: column "email" of table "people" holds one value '
        'and the attribute several: give split, or map one entry (emails[type eq "work"].value)'
    ]


async def test_a_boolean_into_a_text_column(sql_url: str, tmp_path: Path) -> None:
    # A string into an integer column passes: one that spells a number is stored as it
    # (an employee number kept as an INTEGER), another is refused with a 400 naming it.
    found = await problems(sql_url, tmp_path, 'title = "badge_count"\nactive = "email"')
    assert [line.split(" of table ")[0] for line in found] == [
        'my.toml: users.attributes.active: column "email"',
    ]
    assert found[0].endswith("which cannot hold a SCIM boolean")


async def test_an_employee_number_in_an_integer_column_is_written_and_found(
    sql_url: str, tmp_path: Path
) -> None:
    enterprise = '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"'
    attributes = f'{enterprise}.employeeNumber = "badge_count"'
    assert await problems(sql_url, tmp_path, attributes) == []
    connector = SqlConnector(
        SqlSettings(type="sql", url=sql_url), load_mapping(tmp_path / "my.toml").backend
    )
    await connector.open()
    try:
        created = await connector.create(Kind.USERS, {"login": "ada", "badge_count": "12345"})
        assert (await connector.get(Kind.USERS, created.id)).values["badge_count"] == 12345
        with pytest.raises(InvalidValue):
            await connector.create(Kind.USERS, {"login": "bob", "badge_count": "B-7"})
    finally:
        await connector.close()


async def test_an_integer_attribute_in_an_integer_column_is_written_and_found(
    sql_url: str, tmp_path: Path
) -> None:
    urn = "urn:example:params:scim:schemas:extension:hr:2.0:User"
    attributes = f'"{urn}".badges = "badge_count"'
    rest = f'[extensions."{urn}"]\nname = "HR"\n[extensions."{urn}".attributes]\nbadges = "integer"'
    assert await problems(sql_url, tmp_path, attributes, rest) == []
    connector = SqlConnector(
        SqlSettings(type="sql", url=sql_url), load_mapping(tmp_path / "my.toml").backend
    )
    await connector.open()
    try:
        created = await connector.create(Kind.USERS, {"login": "ada", "badge_count": 12345})
        assert (await connector.get(Kind.USERS, created.id)).values["badge_count"] == 12345
    finally:
        await connector.close()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_a_required_column_an_insert_trigger_fills(backend: str, tmp_path: Path) -> None:
    # NOT NULL without a default, set by a BEFORE INSERT trigger (a number from a
    # sequence): the check cannot see what the trigger does, and must not refuse it.
    assert await _trigger_problems(backend, tmp_path, TRIGGERED_TABLE[backend]) == []


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
async def test_an_after_insert_trigger_fills_nothing(backend: str, tmp_path: Path) -> None:
    # An audit trigger runs after the row is written: the required column stays refused.
    found = await _trigger_problems(backend, tmp_path, AUDITED_TABLE[backend])
    assert [line.split(": ", 2)[2] for line in found] == [
        'column "cost_center" of table "people" is NOT NULL without a default and the mapping '
        "writes no value to it: every create would fail"
    ]


async def _trigger_problems(backend: str, tmp_path: Path, statements: list[str]) -> list[str]:
    """The check's problems on a table `statements` make; with none, a create works."""
    url = await create_database(backend, tmp_path)
    try:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(sa.text(statement))
        await engine.dispose()
        path = tmp_path / "my.toml"
        path.write_text(MAPPING.format(attributes="", rest=""))
        connector = SqlConnector(SqlSettings(type="sql", url=url), load_mapping(path).backend)
        await connector.open()
        try:
            found = [line.replace(str(path), "my.toml") for line in await connector.verify()]
            if not found:
                created = await connector.create(Kind.USERS, {"login": "ada"})
                assert created.values["login"] == "ada"
            return found
        finally:
            await connector.close()
    finally:
        await drop_database(backend, url)


TRIGGERED_TABLE = {
    "postgresql": [
        "CREATE TABLE people (id SERIAL PRIMARY KEY, login VARCHAR(64) NOT NULL, "
        "uid_number INTEGER NOT NULL)",
        "CREATE FUNCTION next_uid() RETURNS trigger AS $$ BEGIN "
        "NEW.uid_number := 10000 + NEW.id; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER people_uid BEFORE INSERT ON people FOR EACH ROW "
        "EXECUTE FUNCTION next_uid()",
    ],
    "mariadb": [
        "CREATE TABLE people (id INTEGER AUTO_INCREMENT PRIMARY KEY, login VARCHAR(64) NOT NULL, "
        "uid_number INTEGER NOT NULL)",
        "CREATE TRIGGER people_uid BEFORE INSERT ON people FOR EACH ROW "
        "SET NEW.uid_number = 10000 + (SELECT COUNT(*) FROM people)",
    ],
}


async def test_an_array_column_is_refused_for_several_values(tmp_path: Path) -> None:
    # Filters compare such a column as one value (`text[] = varchar`: 500): a split
    # column is what the mapping language filters on.
    url = await create_database("postgresql", tmp_path)
    try:
        metadata = people()
        metadata.tables["people"].append_column(sa.Column("mails", sa.ARRAY(sa.Text)))
        found = await problems(url, tmp_path, 'emails = "mails"', metadata=metadata)
        assert [line.split(" of table ")[0] for line in found] == [
            'my.toml: users.attributes.emails: column "mails"'
        ]
    finally:
        await drop_database("postgresql", url)


async def test_map_values_the_column_cannot_hold(sql_url: str, tmp_path: Path) -> None:
    attributes = 'active = { field = "badge_count", map = { true = "A", false = "T" } }'
    rest = '[users.constants]\nstatus = "XY"'
    assert await problems(sql_url, tmp_path, attributes, rest) == [
        'my.toml: users.attributes.active: column "badge_count" of table "people" cannot hold '
        "'A', 'T': the value is not a whole number",
        'my.toml: users.constants.status: column "status" of table "people" cannot hold '
        "'XY': the value is too long (at most 1 characters)",
    ]


async def test_required_column_nothing_writes(sql_url: str, tmp_path: Path) -> None:
    metadata = people()
    sa.Table(
        "extra",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("login", sa.String(64)),
        sa.Column("cost_center", sa.String(10), nullable=False),
    )
    rest = '[users]\nobject = "extra"\nkey = "id"\n[users.attributes]\nuserName = "login"'
    text = MAPPING.format(attributes="", rest="").split("[users]")[0] + rest
    found = await problems(sql_url, tmp_path, "", metadata=metadata)
    assert found == []  # people's NOT NULL columns are written (login) or have a default
    path = tmp_path / "extra.toml"
    path.write_text(text)
    connector = SqlConnector(SqlSettings(type="sql", url=sql_url), load_mapping(path).backend)
    await connector.open()
    try:
        assert await connector.verify() == [
            f'{path}: users: column "cost_center" of table "extra" is NOT NULL without a default '
            "and the mapping writes no value to it: every create would fail"
        ]
    finally:
        await connector.close()


async def test_directory_mapping_on_a_database(empty_database: str) -> None:
    mapping = load_mapping("ldap-openldap")
    connector = SqlConnector(SqlSettings(type="sql", url=empty_database), mapping.backend)
    await connector.open()
    try:
        assert await connector.verify() == [
            f"{mapping.source}: users: names classes and rdn: this is a directory mapping, "
            'for a connector of type "ldap"'
        ]
    finally:
        await connector.close()


async def test_timestamps_in_a_text_column_are_refused(sql_url: str, tmp_path: Path) -> None:
    # Every create would fail with "meta.created: the value is not text" otherwise.
    metadata = people()
    metadata.tables["people"].append_column(sa.Column("created_at", sa.Text))
    metadata.tables["people"].append_column(sa.Column("modified_at", sa.DateTime))
    engine = on_sqlite(create_async_engine(sql_url))
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()
    path = tmp_path / "my.toml"
    path.write_text(
        MAPPING.format(attributes="", rest="").replace(
            'key = "id"', 'key = "id"\ncreated = "created_at"\nmodified = "modified_at"'
        )
    )
    connector = SqlConnector(SqlSettings(type="sql", url=sql_url), load_mapping(path).backend)
    await connector.open()
    try:
        found = [line.replace(str(path), "my.toml") for line in await connector.verify()]
    finally:
        await connector.close()
    assert [line.split(" is of type ")[0] for line in found] == [
        'my.toml: users.created: column "created_at" of table "people"'
    ]
    assert found[0].endswith(
        "cannot hold the time of a write: give it a date-time type (TIMESTAMP)"
    )


AUDITED_TABLE = {
    "postgresql": [
        "CREATE TABLE audit (at TIMESTAMP DEFAULT now())",
        "CREATE TABLE people (id SERIAL PRIMARY KEY, login VARCHAR(64) NOT NULL, "
        "cost_center VARCHAR(10) NOT NULL)",
        "CREATE FUNCTION audited() RETURNS trigger AS $$ BEGIN "
        "INSERT INTO audit DEFAULT VALUES; RETURN NULL; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER people_audit AFTER INSERT ON people FOR EACH ROW "
        "EXECUTE FUNCTION audited()",
    ],
    "mariadb": [
        "CREATE TABLE audit (at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
        "CREATE TABLE people (id INTEGER AUTO_INCREMENT PRIMARY KEY, login VARCHAR(64) NOT NULL, "
        "cost_center VARCHAR(10) NOT NULL)",
        "CREATE TRIGGER people_audit AFTER INSERT ON people FOR EACH ROW "
        "INSERT INTO audit () VALUES ()",
    ],
}


async def test_a_date_format_longer_than_its_column(sql_url: str, tmp_path: Path) -> None:
    # CHAR(1) takes no day of the month; String(100) takes every date of the long format.
    employment = "urn:scim-bridge:schemas:extension:employment:2.0:User"
    attributes = (
        f'[users.attributes."{employment}"]\n'
        'startDate = { field = "status", format = "%d" }\n'
        'endDate = { field = "note", format = "%A, %d %B %Y %H:%M:%S.%f" }'
    )
    rest = (
        f'[extensions."{employment}"]\nname = "Employment"\n'
        f'[extensions."{employment}".attributes]\n'
        'startDate = { type = "dateTime" }\nendDate = { type = "dateTime" }'
    )
    assert await problems(sql_url, tmp_path, attributes, rest) == [
        f'my.toml: users.attributes.{employment}.startDate: column "status" of table "people" '
        "cannot hold every date its format writes, such as '01': the value is too long (at most "
        "1 characters)"
    ]


@pytest.mark.parametrize("mapped", [True, False], ids=["password-mapped", "no-password"])
async def test_a_password_column_is_warned_of_as_clear_text(
    sql_url: str, tmp_path: Path, mapped: bool
) -> None:
    # Accepted (a trigger may hash it), but never silently: check and the start say so.
    path = tmp_path / "my.toml"
    attributes = 'password = "email"' if mapped else ""
    path.write_text(MAPPING.format(attributes=attributes, rest=""))
    async with connector_on(sql_url, people(), load_mapping(path).backend) as connector:
        warned = [line for line in connector.warnings if "password" in line]
    if not mapped:
        assert warned == []
        return
    assert warned == [
        f'{path}: users.attributes.password: column "email" of table "people" receives the '
        "password as the client sends it, in clear text: the service hashes nothing. Map it "
        "only to a column a trigger of the database hashes, or leave password unmapped"
    ]
