"""The direct baselines: what a scenario asks of the service, done with the backend's own
client in the benchmark process, one operation at a time.

ldap3 (synchronous, as the service uses it) against the same slapd, and SQLAlchemy Core on
asyncpg against the same database. Each reads and writes what the service reads and
writes for the same request, no less (a lookup reads the user's groups too, since a SCIM
User shows them), so that the ratio prices what the service adds: HTTP, JSON, SCIM
validation, the mapping and its own checks.

A user or group is referred to by a `Ref`: its DN in the directory, its key in the
database, i.e. what a member value holds.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Protocol

import ldap3
import sqlalchemy as sa
from ldap3.utils.conv import escape_filter_chars
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.backends import SLAPD_BASE, SQL_PERSON_COLUMNS, Postgres, ldap_person, sql_person

Ref = Any

PAGED_RESULTS = "1.2.840.113556.1.4.319"


class Direct(Protocol):
    """One backend, used directly; every method is one logical operation."""

    async def close(self) -> None: ...

    async def create_user(self, name: str) -> Ref:
        """Write a user and read back its generated id; its reference."""

    async def find_user(self, name: str) -> int:
        """How many users have this userName, each read whole, with its groups."""

    async def user_ref(self, name: str) -> Ref:
        """The reference of an existing user (not timed by the scenarios)."""

    async def find_group(self, name: str) -> Ref | None:
        """The group of this displayName, if any."""

    async def create_group(self, name: str) -> Ref: ...

    async def add_member(self, group: Ref, user: Ref) -> None: ...

    async def read_group(self, group: Ref) -> int:
        """Read a group with each member's id and display name; how many members."""

    async def page(self, size: int) -> list[tuple[float, int]]:
        """Every user, `size` at a time: each page's seconds and number of entries."""


class LdapDirect:
    """ldap3 on one bound connection, as an administrator's script would use it."""

    USER_ATTRIBUTES: ClassVar[list[str]] = [
        "*",
        "entryUUID",
        "entryCSN",
        "createTimestamp",
        "modifyTimestamp",
        "memberOf",
        "pwdAccountLockedTime",
    ]
    """What the service reads of a user (the mapping's attributes and the operational ones)."""

    def __init__(self, connection: ldap3.Connection, tree: str) -> None:
        self.connection = connection
        self.people = f"ou=people,{tree}"
        self.groups = f"ou=groups,{tree}"

    async def close(self) -> None:
        self.connection.unbind()

    def _dn(self, name: str) -> str:
        return f"uid={name},{self.people}"

    async def create_user(self, name: str) -> Ref:
        dn = self._dn(name)
        self.connection.add(
            dn, ["top", "person", "organizationalPerson", "inetOrgPerson"], ldap_person(name)
        )
        self.connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        if not self.connection.response[0]["attributes"]["entryUUID"]:
            raise AssertionError(f"{dn} has no entryUUID")
        return dn

    async def find_user(self, name: str) -> int:
        self.connection.search(
            self.people,
            f"(&(objectClass=inetOrgPerson)(uid={escape_filter_chars(name)}))",
            ldap3.SUBTREE,
            attributes=self.USER_ATTRIBUTES,
        )
        found = list(self.connection.response)
        for entry in found:
            for group in entry["attributes"].get("memberOf", []):  # its id and display name
                self.connection.search(
                    group, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID", "cn"]
                )
        return len(found)

    async def user_ref(self, name: str) -> Ref:
        return self._dn(name)

    async def find_group(self, name: str) -> Ref | None:
        self.connection.search(
            self.groups,
            f"(&(objectClass=groupOfNames)(cn={escape_filter_chars(name)}))",
            ldap3.SUBTREE,
            attributes=["entryUUID", "cn", "entryCSN", "createTimestamp", "modifyTimestamp"],
        )
        return self.connection.response[0]["dn"] if self.connection.response else None

    async def create_group(self, name: str) -> Ref:
        dn = f"cn={name},{self.groups}"
        self.connection.add(
            dn, ["top", "groupOfNames"], {"cn": name, "member": [f"cn=nobody,{SLAPD_BASE}"]}
        )
        self.connection.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryUUID"])
        return dn

    async def add_member(self, group: Ref, user: Ref) -> None:
        self.connection.modify(group, {"member": [(ldap3.MODIFY_ADD, [user])]})

    async def read_group(self, group: Ref) -> int:
        """The group, then its members' ids and names by memberOf in one paged search."""
        self.connection.search(
            group, "(objectClass=*)", ldap3.BASE, attributes=["cn", "entryUUID", "entryCSN"]
        )
        entries = self.connection.extend.standard.paged_search(
            self.people,
            f"(memberOf={escape_filter_chars(group)})",
            ldap3.SUBTREE,
            attributes=["entryUUID", "displayName"],
            paged_size=1000,
            generator=True,
        )
        return sum(1 for entry in entries if entry["type"] == "searchResEntry")

    async def page(self, size: int) -> list[tuple[float, int]]:
        pages: list[tuple[float, int]] = []
        cookie: bytes | None = None
        while True:
            started = time.perf_counter()
            self.connection.search(
                self.people,
                "(objectClass=inetOrgPerson)",
                ldap3.SUBTREE,
                attributes=self.USER_ATTRIBUTES,
                paged_size=size,
                paged_cookie=cookie,
            )
            pages.append((time.perf_counter() - started, len(self.connection.response)))
            cookie = self.connection.result["controls"][PAGED_RESULTS]["value"]["cookie"]
            if not cookie:
                return pages


class SqlDirect:
    """SQLAlchemy Core on asyncpg: reads in autocommit, each write one transaction."""

    def __init__(self, engine: AsyncEngine, metadata: sa.MetaData) -> None:
        self.engine = engine
        self.reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.users = metadata.tables["users"]
        self.groups = metadata.tables["groups"]
        self.memberships = metadata.tables["memberships"]

    @classmethod
    async def open(cls, database: str) -> SqlDirect:
        """Reflect the tables as they are, as any client of an existing database would."""
        engine = create_async_engine(Postgres.url(database))
        metadata = sa.MetaData()
        async with engine.connect() as connection:
            await connection.run_sync(metadata.reflect)
        return cls(engine, metadata)

    async def close(self) -> None:
        await self.engine.dispose()

    async def create_user(self, name: str) -> Ref:
        row = dict(zip(SQL_PERSON_COLUMNS, sql_person(name), strict=True))
        async with self.engine.begin() as connection:
            inserted = await connection.execute(
                sa.insert(self.users).values(**row, version=1).returning(self.users.c.id)
            )
            return inserted.scalar_one()

    async def find_user(self, name: str) -> int:
        users, groups, memberships = self.users, self.groups, self.memberships
        async with self.reader.connect() as connection:
            rows = (
                await connection.execute(
                    sa.select(users).where(sa.func.lower(users.c.user_name) == name.lower())
                )
            ).all()
            if rows:  # the user's groups, with their display names
                await connection.execute(
                    sa.select(memberships.c.user_id, groups.c.id, groups.c.display_name)
                    .join(groups, groups.c.id == memberships.c.group_id)
                    .where(memberships.c.user_id.in_([row.id for row in rows]))
                )
        return len(rows)

    async def user_ref(self, name: str) -> Ref:
        async with self.reader.connect() as connection:
            statement = sa.select(self.users.c.id).where(self.users.c.user_name == name)
            return (await connection.execute(statement)).scalar_one()

    async def find_group(self, name: str) -> Ref | None:
        async with self.reader.connect() as connection:
            statement = sa.select(self.groups).where(self.groups.c.display_name == name)
            row = (await connection.execute(statement)).first()
            return row.id if row is not None else None

    async def create_group(self, name: str) -> Ref:
        async with self.engine.begin() as connection:
            inserted = await connection.execute(
                sa.insert(self.groups)
                .values(display_name=name, version=1)
                .returning(self.groups.c.id)
            )
            return inserted.scalar_one()

    async def add_member(self, group: Ref, user: Ref) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                sa.insert(self.memberships).values(group_id=group, user_id=user)
            )

    async def read_group(self, group: Ref) -> int:
        users, memberships = self.users, self.memberships
        async with self.reader.connect() as connection:
            await connection.execute(sa.select(self.groups).where(self.groups.c.id == group))
            rows = (
                await connection.execute(
                    sa.select(users.c.id, users.c.display_name)
                    .join(memberships, memberships.c.user_id == users.c.id)
                    .where(memberships.c.group_id == group)
                    .order_by(users.c.id)
                )
            ).all()
        return len(rows)

    async def page(self, size: int) -> list[tuple[float, int]]:
        """Keyset paging (WHERE id > last ORDER BY id LIMIT n): what a direct client
        reading a whole table does, each page's cost independent of its position."""
        pages: list[tuple[float, int]] = []
        last = 0
        while True:
            started = time.perf_counter()
            async with self.reader.connect() as connection:
                rows = (
                    await connection.execute(
                        sa.select(self.users)
                        .where(self.users.c.id > last)
                        .order_by(self.users.c.id)
                        .limit(size)
                    )
                ).all()
            pages.append((time.perf_counter() - started, len(rows)))
            if len(rows) < size:
                return pages
            last = rows[-1].id
