"""The two backends under test, set up by the run itself and torn down at its end.

OpenLDAP: a slapd of the run's own, configured as the test suite's (tests/slapd.py: mdb,
the memberof and ppolicy overlays, the same indexes) plus `dbnosync`, `envflags
writemap`, `sortvals member` and a thread per core: the service and the baseline share
the server, so skipping fsync removes the disk's noise from both alike, and writing
through the map (what slapd-mdb(5) offers to speed up writes), mimalloc (else jemalloc),
when installed, and no more threads than cores (`large_threads`) make every modify
cheaper for both.
PostgreSQL: uniquely named databases on 127.0.0.1:5432 holding the sql-default tables.

Bulk data goes straight into the backend, never through the service: loading 100,000
users through SCIM would take longer than every scenario together, and is not what is
measured. The directory gets one LDIF through slapadd (slapd stopped meanwhile), the
database gets COPY.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import ldap3
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ports import free_port as free_port  # noqa: E402  (bench.service's)
from slapd import (  # noqa: E402  (tests/ is not a package)
    ADMIN_DN,
    ADMIN_PASSWORD,
    slapd_available,
    start_slapd,
)
from slapd import SLAPD_BASE as SLAPD_BASE  # noqa: E402  (bench.direct's too)
from slapd import large_allocator as large_allocator  # noqa: E402  (bench.report's)
from slapd import large_threads as large_threads  # noqa: E402  (bench.report's)

from connectors.sql.embedded import default_metadata  # noqa: E402

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
LDAP_PASSWORD_ENV = "BENCH_LDAP_PASSWORD"
MAX_PAGE_SIZE = 1000
"""server.max_page_size of every service: above the count=100 pages of scenario 4."""
WORKERS_OVERRIDE = os.environ.get("BENCH_WORKERS")
"""`server.workers` for both backends instead of their own, for trying another count."""


def _workers(own: int) -> int:
    return int(WORKERS_OVERRIDE) if WORKERS_OVERRIDE else own


@dataclass(frozen=True)
class DataSet:
    """What one tree or database is loaded with: users by name, groups of those users."""

    label: str
    users: Sequence[str] = ()
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)


class Ldap:
    """A slapd of the run's own; each data set is a tree `ou=<label>` under the suffix."""

    name = "ldap"
    workers = _workers(2)
    """One per core, as on PostgreSQL: a lookup or a create costs the service more Python
    than ldap3 costs the baseline, and one process runs on one core (with one worker,
    creates fell to 0.73-0.93 of the baseline, lookups to 0.65-0.81, the sync to
    0.42-0.54, in all runs but one). The price is scenario 5: each worker combines only
    the member changes that reach it, so a round writes the 50,000 group twice.
    bench/NOTES.md keeps what was measured and tried about it."""

    def __init__(self, directory: Path) -> None:
        problem = slapd_available()
        if problem is not None:
            raise RuntimeError(problem)
        directory.mkdir(parents=True)
        self.server = start_slapd(directory, large=True)

    def stop(self) -> None:
        self.server.stop()

    def connection(self) -> ldap3.Connection:
        return self.server.connection()

    @staticmethod
    def tree(label: str) -> str:
        return f"ou={label},{SLAPD_BASE}"

    async def load(self, datasets: Sequence[DataSet]) -> dict[str, str]:
        """Make a tree per data set and fill them all in one slapadd; tree DN by label.

        The memberof overlay does not run offline, so memberOf is written here as the
        overlay would have kept it; entryUUID and the timestamps slapadd adds itself.
        """
        trees: dict[str, str] = {}
        lines: list[str] = []
        for dataset in datasets:
            tree = trees[dataset.label] = self.tree(dataset.label)
            lines += _ldif(tree, ["organizationalUnit"], {"ou": [dataset.label]})
            for child in ("people", "groups", "disabled"):
                lines += _ldif(f"ou={child},{tree}", ["organizationalUnit"], {"ou": [child]})
            member_of: dict[str, list[str]] = {}
            for group, members in dataset.groups.items():
                for member in members:
                    member_of.setdefault(member, []).append(f"cn={group},ou=groups,{tree}")
            for name in dataset.users:
                attributes = {**ldap_person(name), "memberOf": member_of.get(name, [])}
                lines += _ldif(f"uid={name},ou=people,{tree}", PERSON_CLASSES, attributes)
            for group, members in dataset.groups.items():
                values = [f"uid={member},ou=people,{tree}" for member in members]
                attributes = {"cn": [group], "member": values or [f"cn=nobody,{SLAPD_BASE}"]}
                lines += _ldif(f"cn={group},ou=groups,{tree}", ["groupOfNames"], attributes)
        self.server.stop()
        try:
            subprocess.run(
                [
                    "slapadd",
                    "-q",
                    "-f",
                    str(self.server.directory / "slapd.conf"),
                    "-b",
                    SLAPD_BASE,
                ],
                input="\n".join(lines).encode(),
                check=True,
                capture_output=True,
            )
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"slapadd failed: {error.stderr.decode()[-2000:]}") from None
        finally:
            self.server.start()
        return trees

    def config(self, tree: str) -> str:
        return (
            'mapping = "ldap-openldap"\n\n'
            f"[server]\nmax_page_size = {MAX_PAGE_SIZE}\nworkers = {self.workers}\n\n"
            '[[auth.tokens]]\nenv = "BENCH_TOKEN"\n\n'
            '[connector]\ntype = "ldap"\n'
            f'urls = ["{self.server.url}"]\nbase_dn = "{tree}"\n'
            f'bind_dn = "{ADMIN_DN}"\npassword_env = "{LDAP_PASSWORD_ENV}"\n'
        )

    @staticmethod
    def environment() -> dict[str, str]:
        return {LDAP_PASSWORD_ENV: ADMIN_PASSWORD}

    async def close(self) -> None:
        self.stop()


PERSON_CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson"]


def ldap_person(name: str) -> dict[str, list[str]]:
    """A user entry as the ldap-openldap mapping writes one for `user_body(name)`."""
    return {
        "uid": [name],
        "givenName": [name],
        "sn": ["Bench"],
        "cn": [f"{name} Bench"],
        "displayName": [f"{name} Bench"],
        "title": ["Engineer"],
        "mail": [f"{name}@example.com"],
    }


def _ldif(dn: str, classes: list[str], attributes: dict[str, list[str]]) -> list[str]:
    lines = [f"dn: {dn}", *(f"objectClass: {each}" for each in classes)]
    for name, values in attributes.items():
        lines += (f"{name}: {value}" for value in values)
    return [*lines, ""]


class Postgres:
    """Fresh databases on the local PostgreSQL, one per data set, dropped by close()."""

    name = "postgresql"
    workers = _workers(2)
    """One per core: PostgreSQL's own work per request is small beside the service's."""

    def __init__(self) -> None:
        self.databases: list[str] = []

    @staticmethod
    def url(database: str) -> str:
        """The service's and the baseline's SQLAlchemy URL (asyncpg)."""
        return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"

    @staticmethod
    async def connect(database: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=database, timeout=10
        )

    async def load(self, datasets: Sequence[DataSet]) -> dict[str, str]:
        """A database per data set with the sql-default tables, filled by COPY."""
        databases: dict[str, str] = {}
        for dataset in datasets:
            database = databases[dataset.label] = await self._create()
            connection = await self.connect(database)
            try:
                await _fill(connection, dataset)
            finally:
                await connection.close()
        return databases

    async def _create(self) -> str:
        database = f"scim_bench_{uuid.uuid4().hex[:16]}"
        admin = await self.connect("postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
        finally:
            await admin.close()
        self.databases.append(database)
        engine = create_async_engine(self.url(database))
        try:
            async with engine.begin() as connection:
                await connection.run_sync(default_metadata().create_all)
        finally:
            await engine.dispose()
        return database

    def config(self, database: str) -> str:
        return (
            'mapping = "sql-default"\n\n'
            f"[server]\nmax_page_size = {MAX_PAGE_SIZE}\nworkers = {self.workers}\n\n"
            '[[auth.tokens]]\nenv = "BENCH_TOKEN"\n\n'
            f'[connector]\ntype = "sql"\nurl = "{self.url(database)}"\n'
        )

    @staticmethod
    def environment() -> dict[str, str]:
        return {}

    async def close(self) -> None:
        """Drop every database of the run (FORCE: a service may still hold connections)."""
        if not self.databases:
            return
        admin = await self.connect("postgres")
        try:
            for database in self.databases:
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()
        self.databases.clear()


async def _fill(connection: asyncpg.Connection, dataset: DataSet) -> None:
    """Users, groups and memberships as the service would have written them, then
    VACUUM ANALYZE: fresh statistics and visibility map, and no autovacuum mid-scenario."""
    stamp = datetime.now(UTC).replace(tzinfo=None)
    columns = ["id", *SQL_PERSON_COLUMNS, "created_at", "modified_at", "version"]
    records = [
        (n, *sql_person(name), stamp, stamp, 1) for n, name in enumerate(dataset.users, start=1)
    ]
    if records:
        await connection.copy_records_to_table("users", records=records, columns=columns)
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"
        )
    keys = {name: n for n, name in enumerate(dataset.users, start=1)}
    for group, members in dataset.groups.items():
        group_id = await connection.fetchval(
            "INSERT INTO groups (display_name, created_at, modified_at, version) "
            "VALUES ($1, $2, $2, 1) RETURNING id",
            group,
            stamp,
        )
        await connection.copy_records_to_table(
            "memberships",
            records=[(group_id, keys[member]) for member in members],
            columns=["group_id", "user_id"],
        )
    for table in ("users", "groups", "memberships"):
        await connection.execute(f"VACUUM ANALYZE {table}")


SQL_PERSON_COLUMNS = [
    "user_name",
    "given_name",
    "family_name",
    "formatted_name",
    "display_name",
    "title",
    "status",
    "email",
]


def sql_person(name: str) -> tuple[str, ...]:
    """A users row as the sql-default mapping writes one for `user_body(name)`."""
    return (
        name,
        name,
        "Bench",
        f"{name} Bench",
        f"{name} Bench",
        "Engineer",
        "A",
        f"{name}@example.com",
    )


Backend = Ldap | Postgres
