"""Direct access to a backend behind the bridge, to check what it really holds.

Assertions about the backend never go through scim-bridge: SQL rows are read with
SQLAlchemy Core, LDAP entries with a separate ldap3 connection bound as the administrator.
Field names are those of the shipped presets (`sql-default`, `ldap-openldap`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ldap3
import sqlalchemy as sa
from slapd import SlapdServer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@dataclass
class SqlDirect:
    """The `sql-default` tables (users, groups, memberships) of a fresh database."""

    name: str
    url: str
    _engine: AsyncEngine | None = field(default=None, repr=False)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(self.url)
        return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    async def rows(self, query: str, **parameters: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            result = await connection.execute(sa.text(query), parameters)
            return [dict(row._mapping) for row in result]

    async def user(self, user_name: str) -> dict[str, Any] | None:
        """The user's row, None when there is none."""
        found = await self.rows(
            "SELECT * FROM users WHERE lower(user_name) = lower(:name)", name=user_name
        )
        return found[0] if found else None

    async def set_user_field(self, user_name: str, name: str, value: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                sa.text(f"UPDATE users SET {name} = :value WHERE user_name = :user"),  # noqa: S608
                {"value": value, "user": user_name},
            )


@dataclass
class LdapDirect:
    """A tree of the test slapd: ou=people, ou=groups and ou=disabled under `tree`."""

    slapd: SlapdServer
    tree: str
    name: str = "ldap"

    def people_dn(self, user_name: str) -> str:
        return f"uid={user_name},ou=people,{self.tree}"

    def search(self, base: str, search_filter: str, *attributes: str) -> list[dict[str, Any]]:
        """Matching entries as {"dn": ..., attribute (lower case): [text values]}."""
        connection = self.slapd.connection()
        try:
            connection.search(
                base, search_filter, ldap3.SUBTREE, attributes=list(attributes) or ["*", "+"]
            )
            found = []
            for item in connection.response or []:
                if item.get("type") != "searchResEntry":
                    continue
                raw = item["raw_attributes"]
                entry: dict[str, Any] = {"dn": item["dn"]}
                entry.update(
                    {name.lower(): [v.decode() for v in values] for name, values in raw.items()}
                )
                found.append(entry)
            return found
        finally:
            connection.unbind()

    async def user(self, user_name: str) -> dict[str, Any] | None:
        """The user's entry, wherever it lies in the tree; None when there is none."""
        escaped = ldap3.utils.conv.escape_filter_chars(user_name)
        found = self.search(self.tree, f"(&(objectClass=inetOrgPerson)(uid={escaped}))")
        return found[0] if found else None

    async def set_user_field(self, user_name: str, name: str, value: Any) -> None:
        entry = await self.user(user_name)
        assert entry is not None, user_name
        connection = self.slapd.connection()
        try:
            connection.modify(entry["dn"], {name: [(ldap3.MODIFY_REPLACE, [value])]})
        finally:
            connection.unbind()


Direct = SqlDirect | LdapDirect
