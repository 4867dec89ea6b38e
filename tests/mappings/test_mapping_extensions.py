"""Schema extensions declared in a mapping file (RFC 7643 §3.3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scim2_models import Context, ScimFilter

from connectors.base import Compare, Op, Or
from mappings import Mapping

HR = "urn:example:params:scim:schemas:extension:hr:2.0:User"
USERS = '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\nuserName = "login"\n'


def declared(attributes: str, mapped: str = "") -> str:
    return (
        f'{USERS}{mapped}\n[extensions."{HR}"]\nname = "HR"\n'
        f'[extensions."{HR}".attributes]\n{attributes}\n'
    )


def test_a_declared_extension_is_part_of_the_user_model(load: Callable[[str], Mapping]) -> None:
    mapping = load(
        declared(
            'startDate = { type = "dateTime" }\nbadges = { type = "string", multi_valued = true }\n'
            'fullTime = "boolean"',
            mapped=(
                f'[users.attributes."{HR}"]\n'
                'startDate = { field = "start", format = "%Y-%m-%d" }\n'
                'badges = { field = "badges", split = "," }\nfullTime = "full_time"\n'
            ),
        )
    )
    users = mapping.users
    assert HR in users.model.get_extension_models()
    stored = users.to_backend(
        {
            "userName": "a",
            HR: {"startDate": "2026-03-01T00:00:00Z", "badges": ["x", "y"], "fullTime": True},
        }
    )
    assert (stored["start"], stored["badges"], stored["full_time"]) == ("2026-03-01", "x,y", True)
    assert users.to_scim(stored)[HR] == {
        "startDate": "2026-03-01T00:00:00+00:00",
        "badges": ["x", "y"],
        "fullTime": True,
    }
    # The model validates it: a start date that is no date is refused.
    with pytest.raises(ValueError, match="startDate"):
        users.model.model_validate(
            {"schemas": [str(users.model.__schema__), HR], "userName": "a", HR: {"startDate": "x"}},
            scim_ctx=Context.RESOURCE_CREATION_REQUEST,
        )
    assert set(users.announced()[HR]) == {"startDate", "badges", "fullTime"}
    by_badge = users.condition(ScimFilter(f'{HR}:badges eq "x"').ast)
    assert by_badge == Or(
        (
            Compare("badges", Op.EQ, "x"),
            Compare("badges", Op.SW, "x,"),
            Compare("badges", Op.EW, ",x"),
            Compare("badges", Op.EW, ", x"),
            Compare("badges", Op.CO, ",x,"),
            Compare("badges", Op.CO, ", x,"),
        )
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            declared('startDate = "date"'),
            f'my.toml: extensions."{HR}".attributes.startDate.type: must be one of string, '
            "boolean, integer, decimal, dateTime, binary, not 'date'",
        ),
        (
            declared('"start date" = "string"'),
            f'my.toml: extensions."{HR}".attributes.start date: is not an attribute name '
            "(a letter, then letters, digits, _ or -)",
        ),
        (
            declared('startDate = { type = "string", unique = true }'),
            f'my.toml: extensions."{HR}".attributes.startDate.unique: unknown key '
            "(valid: type, description, multi_valued, required, case_exact, canonical)",
        ),
        (
            USERS + '[extensions."hr-extension".attributes]\nx = "string"\n',
            'my.toml: extensions."hr-extension": the schema id must be a URN (urn:...:2.0:User)',
        ),
        (
            USERS + '[extensions."urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"'
            '.attributes]\nx = "string"\n',
            'my.toml: extensions."urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": '
            "is a schema of RFC 7643 already; declare an extension of your own",
        ),
        (
            declared(
                'startDate = "string"', mapped=f'[users.attributes."{HR}"]\nendDate = "end"\n'
            ),
            f"my.toml: users.attributes.{HR}.endDate: unknown SCIM attribute "
            f"'{HR}:endDate' of User",
        ),
    ],
)
def test_declaration_mistakes_are_named(
    problems: Callable[[str], list[str]], text: str, expected: str
) -> None:
    assert problems(text) == [expected]
