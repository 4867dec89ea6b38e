"""Hand-built specs of the default tables, as a mapping of sql-default.toml would give."""

from __future__ import annotations

from connectors.base import BackendSchema, Field, Kind, MembershipSpec, ObjectSpec

USERS = ObjectSpec(
    kind=Kind.USERS,
    object="users",
    key="id",
    fields=(
        Field("user_name"),
        Field("external_id"),
        Field("given_name"),
        Field("family_name"),
        Field("display_name"),
        Field("title"),
        Field("status"),
        Field("email"),
        Field("manager_id", reference=Kind.USERS),
    ),
    unique=("user_name",),
    display="display_name",
    created="created_at",
    modified="modified_at",
    version="version",
)
GROUPS = ObjectSpec(
    kind=Kind.GROUPS,
    object="groups",
    key="id",
    fields=(Field("display_name"), Field("external_id")),
    display="display_name",
    created="created_at",
    modified="modified_at",
    version="version",
)
MEMBERSHIPS = MembershipSpec(object="memberships", group="group_id", member="user_id")
SCHEMA = BackendSchema(users=USERS, groups=GROUPS, memberships=MEMBERSHIPS)
