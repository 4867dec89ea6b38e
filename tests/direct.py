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

from connectors.sql.caseless import on_sqlite


@dataclass
class SqlDirect:
    """The `sql-default` tables (users, groups, memberships) of a fresh database."""

    name: str
    url: str
    _engine: AsyncEngine | None = field(default=None, repr=False)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = on_sqlite(create_async_engine(self.url))
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


# --- What a provisioning flow leaves behind, in the same terms for every backend ---------
#
# A user's state: title, department, employee_number, family_name, email, manager (the
# manager's userName, found through the key or DN the backend holds), active (read from
# the backend's own account state), groups (display names). None where nothing is stored.


async def sql_user_state(direct: SqlDirect, user_name: str) -> dict[str, Any] | None:
    rows = await direct.rows(
        "SELECT u.*, m.user_name AS manager_name FROM users u "
        "LEFT JOIN users m ON m.id = u.manager_id WHERE lower(u.user_name) = lower(:name)",
        name=user_name,
    )
    if not rows:
        return None
    row = rows[0]
    groups = await direct.rows(
        "SELECT g.display_name FROM groups g JOIN memberships ms ON ms.group_id = g.id "
        "WHERE ms.user_id = :id",
        id=row["id"],
    )
    return {
        "title": row["title"],
        "department": row["department"],
        "employee_number": row["employee_number"],
        "family_name": row["family_name"],
        "email": row["email"],
        "manager": row["manager_name"],
        "active": {"A": True, "T": False}[row["status"]],
        "groups": {group["display_name"] for group in groups},
    }


async def sql_group_members(direct: SqlDirect, display_name: str) -> set[str] | None:
    groups = await direct.rows(
        "SELECT id FROM groups WHERE display_name = :name", name=display_name
    )
    if not groups:
        return None
    members = await direct.rows(
        "SELECT u.user_name FROM users u JOIN memberships ms ON ms.user_id = u.id "
        "WHERE ms.group_id = :id",
        id=groups[0]["id"],
    )
    return {member["user_name"] for member in members}


def _first(entry: dict[str, Any], name: str) -> Any:
    values = entry.get(name.lower())
    return values[0] if values else None


def ldap_user_state(direct: LdapDirect, user_name: str) -> dict[str, Any] | None:
    escaped = ldap3.utils.conv.escape_filter_chars(user_name)
    found = direct.search(direct.tree, f"(&(objectClass=inetOrgPerson)(uid={escaped}))")
    if not found:
        return None
    entry = found[0]
    manager = None
    if _first(entry, "manager") is not None:
        # The manager attribute holds a DN: the manager's entry must be at exactly that DN.
        [boss] = direct.search(_first(entry, "manager"), "(objectClass=*)", "uid")
        manager = _first(boss, "uid")
    escaped_dn = ldap3.utils.conv.escape_filter_chars(entry["dn"])
    groups = direct.search(f"ou=groups,{direct.tree}", f"(member={escaped_dn})", "cn")
    return {
        "title": _first(entry, "title"),
        "department": _first(entry, "departmentNumber"),
        "employee_number": _first(entry, "employeeNumber"),
        "family_name": None if _first(entry, "sn") == "-" else _first(entry, "sn"),
        "email": _first(entry, "mail"),
        "manager": manager,
        "active": "pwdaccountlockedtime" not in entry,
        "groups": {_first(group, "cn") for group in groups},
    }


def ldap_group_members(direct: LdapDirect, display_name: str) -> set[str] | None:
    escaped = ldap3.utils.conv.escape_filter_chars(display_name)
    found = direct.search(f"ou=groups,{direct.tree}", f"(cn={escaped})", "member")
    if not found:
        return None
    names = set()
    for member in found[0].get("member", []):
        if member.lower().startswith("cn=nobody,"):
            continue  # the placeholder an empty groupOfNames holds
        try:
            [user] = direct.search(member, "(objectClass=*)", "uid")
        except ldap3.core.exceptions.LDAPNoSuchObjectResult:
            names.add(f"(no entry) {member}")  # a member value naming nothing
            continue
        names.add(_first(user, "uid"))
    return names


async def user_state(direct: Direct, user_name: str) -> dict[str, Any] | None:
    if isinstance(direct, LdapDirect):
        return ldap_user_state(direct, user_name)
    return await sql_user_state(direct, user_name)


async def group_members(direct: Direct, display_name: str) -> set[str] | None:
    if isinstance(direct, LdapDirect):
        return ldap_group_members(direct, display_name)
    return await sql_group_members(direct, display_name)
