"""What each identity provider flow must have written to the backend, step by step.

`CHECKPOINTS[flow][step name]` lists the states to read from the backend itself (see
direct.user_state and direct.group_members) right after that step:

- `User(name, **fields)`: the user exists, and each field given has that value: title,
  department, employee_number, family_name, email, manager (the manager's userName,
  found through the key or DN the backend stores), active (the backend's own account
  state: a status column, a ppolicy lock), groups (the display names it is a member of);
- `Gone(name)` / `GoneGroup(name)`: nothing is left of it;
- `Members(name, {userNames})`: the group exists with exactly these members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class User:
    name: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __init__(self, name: str, **fields: Any) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fields", fields)


@dataclass(frozen=True)
class Gone:
    name: str


@dataclass(frozen=True)
class Members:
    group: str
    members: frozenset[str]

    def __init__(self, group: str, *members: str) -> None:
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "members", frozenset(members))


@dataclass(frozen=True)
class GoneGroup:
    group: str


Expectation = User | Gone | Members | GoneGroup

ADA = "ada.lovelace@example.com"
GRACE = "grace.hopper@example.com"
GRACE2 = "grace.hopper2@example.com"
ALAN = "alan.turing@example.com"
KATHERINE = "katherine.johnson@example.com"
DOROTHY = "dorothy.vaughan@example.com"
MARY = "mary.jackson@contoso.example"
CHRISTINE = "christine.darden@contoso.example"
ANNIE = "annie.easley@contoso.example"

CHECKPOINTS: dict[str, dict[str, list[Expectation]]] = {
    "onelogin-v2": {
        "manager: create": [User(GRACE, title="Director", department="Finance", active=True)],
        "user: read back": [
            User(
                ADA,
                title="Senior Analyst",
                department="Treasury",
                manager=GRACE,
                email=ADA,
                family_name="Lovelace",
                active=True,
            )
        ],
        "group: members include the user": [
            Members("Finance Team", ADA),
            User(ADA, groups={"Finance Team"}),
        ],
        "group: remove member": [Members("Finance Team"), User(ADA, groups=set())],
        "user: suspend (active false through PUT)": [
            User(ADA, active=False, title="Senior Analyst", manager=GRACE)
        ],
        "user: reactivate": [User(ADA, active=True, manager=GRACE)],
        "user: gone": [Gone(ADA), User(GRACE, title="Director", manager=None)],
    },
    "onelogin-legacy-template": {
        "user: create with legacy names": [
            User(ALAN, title="Researcher", department="Research", manager=GRACE2, email=ALAN)
        ],
        "user: update with legacy names": [
            User(ALAN, title="Principal Researcher", department="Research", manager=GRACE2)
        ],
        "user: delete": [Gone(ALAN), User(GRACE2, title="Director")],
    },
    "okta-oin": {
        "create": [User(KATHERINE, active=True, email=KATHERINE, family_name="Johnson")],
        "update profile (PUT echoes id, groups and password)": [
            User(
                KATHERINE,
                title="Mathematician",
                department="Flight Research",
                family_name="Goble Johnson",
                active=True,
            )
        ],
        "deactivate": [User(KATHERINE, active=False, title="Mathematician")],
        "reactivate": [User(KATHERINE, active=True)],
        "group push: create": [Members("Flight Research")],
        "group: read": [
            Members("Flight Research Division", KATHERINE),
            GoneGroup("Flight Research"),
            User(KATHERINE, groups={"Flight Research Division"}),
        ],
        "group push: remove member by filter": [Members("Flight Research Division")],
        "group push: replace whole member list": [Members("Flight Research Division", KATHERINE)],
        "group: gone": [
            GoneGroup("Flight Research Division"),
            User(KATHERINE, groups=set(), active=True),
        ],
    },
    "okta-aiw": {
        "create": [User(DOROTHY, active=True, email=DOROTHY, family_name="Vaughan")],
        "deactivate by PUT": [User(DOROTHY, active=False)],
        "reactivate by PUT": [User(DOROTHY, active=True)],
        "group push with members in the POST": [
            Members("Computing", DOROTHY),
            User(DOROTHY, groups={"Computing"}),
        ],
        "group: members are gone": [Members("Computing"), User(DOROTHY, groups=set())],
    },
    "entra-default": {
        "manager: create": [
            User(CHRISTINE, employee_number="1042", department="Aeronautics", active=True)
        ],
        "user: manager is set": [User(MARY, title="Engineer", manager=CHRISTINE)],
        "user: read back": [
            User(
                MARY,
                title="Engineer",
                department="Engineering",
                employee_number="1042",
                email="mary.w.jackson@contoso.example",
                manager=CHRISTINE,
            )
        ],
        "group: members": [Members("Langley Engineers", MARY, CHRISTINE)],
        "group: remove member (value list form)": [
            Members("Langley Engineers", MARY),
            User(CHRISTINE, groups=set()),
        ],
        "user: remove manager with an empty string": [User(MARY, manager=None, title="Engineer")],
        "user: disable with a string boolean": [User(MARY, active=False)],
        "user: enable again": [User(MARY, active=True)],
        "user: hard delete after the soft-delete window": [
            Gone(MARY),
            Members("Langley Engineers"),
        ],
        "group: delete": [GoneGroup("Langley Engineers"), User(CHRISTINE, active=True)],
    },
    "entra-aadoptscim062020": {
        "user: create": [
            User(ANNIE, employee_number="1042", department="Aeronautics", active=True)
        ],
        "user: path-less multi-attribute replace keyed by paths": [
            User(ANNIE, title="Programmer", department="Computing", employee_number="2077")
        ],
        "group: add member": [
            Members("Lewis Programmers", ANNIE),
            User(ANNIE, groups={"Lewis Programmers"}),
        ],
        "group: remove member by value filter": [Members("Lewis Programmers")],
        "user: disable with a real boolean": [User(ANNIE, active=False, title="Programmer")],
        "cleanup: group": [GoneGroup("Lewis Programmers")],
        "cleanup: user": [Gone(ANNIE)],
    },
}
