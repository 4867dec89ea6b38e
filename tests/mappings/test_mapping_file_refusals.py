"""Mistakes in a mapping file that once loaded (or crashed) and are now refused, each as
one line naming the file and the key."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest
from scim2_models import Context, ScimFilter

from connectors.base import Compare, Op
from mappings import Mapping, MappingError, TranslationError, load_mapping

HR = "urn:example:params:scim:schemas:extension:hr:2.0:User"
USERS = '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\nuserName = "login"\n'


def attributes(body: str) -> str:
    return f"{USERS}{body}\n"


def declared(attributes: str, mapped: str = "", urn: str = HR) -> str:
    """An extension declaring `attributes`, with `mapped` rules under its URN."""
    under = f'[users.attributes."{urn}"]\n{mapped}\n' if mapped else ""
    return f'{USERS}{under}[extensions."{urn}".attributes]\n{attributes}\n'


# --- extensions -----------------------------------------------------------------------


def test_extension_urns_differing_in_case_are_one_schema(
    problems: Callable[[str], list[str]],
) -> None:
    upper = HR.replace(":hr:", ":HR:")
    text = (
        f'{USERS}[extensions."{HR}"]\nname = "HR"\n[extensions."{HR}".attributes]\nx = "string"\n'
        f'[extensions."{upper}"]\nname = "HR2"\n[extensions."{upper}".attributes]\n'
        'y = "string"\n'
    )
    assert problems(text) == [
        f'my.toml: extensions."{upper}": names the same schema as extensions."{HR}": '
        "schema URNs compare case-insensitively, declare it once"
    ]


def test_extensions_sharing_a_name(problems: Callable[[str], list[str]]) -> None:
    pay = HR.replace(":hr:", ":pay:")
    text = (
        f'{USERS}[extensions."{HR}"]\nname = "HR"\n[extensions."{HR}".attributes]\nx = "string"\n'
        f'[extensions."{pay}"]\nname = "HR"\n[extensions."{pay}".attributes]\ny = "string"\n'
    )
    assert problems(text) == [
        f'my.toml: extensions."{pay}".name: \'HR\' is also the name of extensions."{HR}": '
        "each extension needs a name of its own"
    ]


def test_unnamed_extensions_are_named_after_their_urn(load: Callable[[str], Mapping]) -> None:
    pay = HR.replace(":hr:", ":pay:")
    text = (
        f'{USERS}[extensions."{HR}".attributes]\nx = "string"\n'
        f'[extensions."{pay}".attributes]\ny = "string"\n'
    )
    model = load(text).users.model
    assert [model.get_extension_models()[urn].__name__ for urn in (HR, pay)] == ["hr", "pay"]
    user = model.model_validate(
        {
            "schemas": [str(model.__schema__), HR, pay],
            "userName": "a",
            HR: {"x": "1"},
            pay: {"y": "2"},
        },
        scim_ctx=Context.RESOURCE_CREATION_REQUEST,
    )
    assert user.model_dump()[pay] == {"y": "2"}
    # A URN without a version is named after its last part that is not the resource type.
    acme = "urn:ietf:params:scim:schemas:extension:acme:User"
    other = acme.replace(":acme:", ":employment:")
    unversioned = (
        f'{USERS}[extensions."{acme}".attributes]\nx = "string"\n'
        f'[extensions."{other}".attributes]\ny = "string"\n'
    )
    models = load(unversioned).users.model.get_extension_models()
    assert [models[urn].__name__ for urn in (acme, other)] == ["acme", "employment"]


def test_extension_named_after_a_user_attribute(problems: Callable[[str], list[str]]) -> None:
    text = (
        f'{USERS}[extensions."{HR}"]\nname = "title"\n'
        f'[extensions."{HR}".attributes]\nx = "string"\n'
    )
    assert problems(text) == [
        f"my.toml: extensions.\"{HR}\".name: 'title' is the name of an attribute or schema "
        "of User: choose another"
    ]


def test_extension_attributes_differing_in_case(problems: Callable[[str], list[str]]) -> None:
    assert problems(declared('startDate = "string"\nStartDate = "string"')) == [
        f'my.toml: extensions."{HR}".attributes.StartDate: names the same attribute as '
        f'extensions."{HR}".attributes.startDate: attribute names compare '
        "case-insensitively (RFC 7643 §2.1)"
    ]


# --- templates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{userName", "'{userName': the '{' at character 1 is never closed"),
        ("userName}", "'userName}': the '}' at character 9 closes no '{'"),
        ("{userName} {", "'{userName} {': the '{' at character 12 is never closed"),
        (
            "{name.{givenName}}",
            "'{name.{givenName}}': the '{' at character 1 is not closed before the next one",
        ),
        (
            "Staff",
            "'Staff' has no {placeholder}: a value the same for every record is a constant "
            '(constant = "Staff")',
        ),
    ],
)
def test_malformed_template(problems: Callable[[str], list[str]], template: str, why: str) -> None:
    text = attributes(f'displayName = {{ template = "{template}" }}')
    assert problems(text) == [f"my.toml: users.attributes.displayName.template: {why}"]


@pytest.mark.parametrize(
    ("default", "why"),
    [
        ("{userName", "'{userName': the '{' at character 1 is never closed"),
        ("{name.givenName} }", "'{name.givenName} }': the '}' at character 18 closes no '{'"),
    ],
)
def test_malformed_default_template(
    problems: Callable[[str], list[str]], default: str, why: str
) -> None:
    text = attributes(f'displayName = {{ field = "d", default = "{default}" }}')
    assert problems(text) == [f"my.toml: users.attributes.displayName.default: {why}"]


def test_default_without_braces_is_a_plain_value(load: Callable[[str], Mapping]) -> None:
    users = load(attributes('title = { field = "t", default = "Staff" }')).users
    assert users.to_backend({"userName": "a"})["t"] == "Staff"


# --- slots ------------------------------------------------------------------------------


def test_slot_types_differing_in_case_are_one_slot(problems: Callable[[str], list[str]]) -> None:
    text = attributes(
        '\'emails[type eq "Work"].value\' = "phone"\n\'emails[type eq "work"].value\' = "mail"'
    )
    assert problems(text) == [
        'my.toml: users.attributes.emails[type eq "work"].value: '
        "'emails[type eq \"work\"].value' is already mapped by "
        'users.attributes.emails[type eq "Work"].value (entry types compare case-insensitively)'
    ]


def test_one_entry_type_spelled_two_ways(problems: Callable[[str], list[str]]) -> None:
    text = attributes(
        '\'emails[type eq "Work"].value\' = "mail"\n\'emails[type eq "work"].display\' = "d"'
    )
    assert problems(text) == [
        'my.toml: users.attributes.emails[type eq "work"].display: type "work" is spelled '
        '"Work" by users.attributes.emails[type eq "Work"].value: entry types compare '
        "case-insensitively, spell them alike"
    ]


# --- format -----------------------------------------------------------------------------


def test_format_on_a_string_that_holds_no_date(problems: Callable[[str], list[str]]) -> None:
    assert problems(attributes('title = { field = "txt", format = "%Y" }')) == [
        "my.toml: users.attributes.title.format: 'title' holds no date: format applies to a "
        "dateTime attribute, or to a string attribute of an extension this file declares"
    ]


def test_format_on_a_declared_date(load: Callable[[str], Mapping]) -> None:
    users = load(
        declared(
            'hired = "dateTime"\nsince = "string"',
            mapped='hired = { field = "h", format = "%d.%m.%Y" }\n'
            'since = { field = "s", format = "%d.%m.%Y" }',
        )
    ).users
    stored = users.to_backend({HR: {"hired": "2026-03-01T00:00:00Z", "since": "2026-03-02"}})
    assert (stored["h"], stored["s"]) == ("01.03.2026", "02.03.2026")
    # Read back: the dateTime as a timestamp, the string as the date it was sent as.
    assert users.to_scim(stored)[HR] == {
        "hired": "2026-03-01T00:00:00+00:00",
        "since": "2026-03-02",
    }


# --- canonical values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declaration", "why"),
    [
        (
            'level = { type = "integer", canonical = ["a"] }',
            "level.canonical: canonical values belong to string attributes, not integer",
        ),
        (
            'level = { type = "string", canonical = [1, 2] }',
            "level.canonical: must be a list of strings",
        ),
        (
            'level = { type = "string", canonical = [] }',
            "level.canonical: must list at least one value (or leave canonical out)",
        ),
    ],
)
def test_canonical_values_of_the_wrong_type(
    problems: Callable[[str], list[str]], declaration: str, why: str
) -> None:
    assert problems(declared(declaration)) == [f'my.toml: extensions."{HR}".attributes.{why}']


CANONICAL = declared(
    'grade = { type = "string", canonical = ["a", "b"] }\n'
    'band = { type = "string", canonical = ["X"], case_exact = true }\n'
    'tags = { type = "string", multi_valued = true, canonical = ["red", "blue"] }',
    mapped='grade = "grade"\nband = "band"\ntags = { field = "tags", split = "," }',
)


def test_canonical_values_are_enforced_on_writes(load: Callable[[str], Mapping]) -> None:
    users = load(CANONICAL).users
    assert users.to_backend({HR: {"grade": "A", "tags": ["RED", "blue"]}}) == {
        "login": None,
        "grade": "a",
        "band": None,
        "tags": "red,blue",
    }
    for written, name in (
        ({"grade": "z"}, "grade"),
        ({"band": "x"}, "band"),
        ({"tags": ["red", "green"]}, "tags"),
    ):
        with pytest.raises(TranslationError) as caught:
            users.to_backend({HR: written})
        assert caught.value.attribute == f"{HR}:{name}"
    assert str(caught.value) == (
        f"value 'green' of '{HR}:tags' is not one of the allowed values ('red', 'blue')"
    )


def test_a_value_outside_the_list_the_record_holds_already_stays_writable(
    load: Callable[[str], Mapping],
) -> None:
    # A record written before the list was declared (or by another system): its other
    # attributes must stay writable, and so must a PUT that sends it back unchanged.
    users = load(CANONICAL).users
    current = {"login": "ada", "grade": "intern", "band": None, "tags": "red,purple"}
    sent = {"userName": "ada", HR: {"grade": "intern", "tags": ["red", "purple"]}}
    assert users.to_backend(sent, current=current)["grade"] == "intern"
    with pytest.raises(TranslationError):
        users.to_backend({"userName": "ada", HR: {"grade": "boss"}}, current=current)


def test_canonical_values_leave_filters_alone(load: Callable[[str], Mapping]) -> None:
    users = load(CANONICAL).users
    assert users.condition(ScimFilter(f'{HR}:grade sw "z"').ast) == Compare(
        "grade", Op.SW, "z", False
    )


def test_constant_and_default_among_canonical_values(
    problems: Callable[[str], list[str]],
) -> None:
    text = declared(
        'grade = { type = "string", canonical = ["a", "b"] }\n'
        'band = { type = "string", canonical = ["a", "b"] }',
        mapped='grade = { constant = "z" }\nband = { field = "band", default = "c" }',
    )
    assert problems(text) == [
        f"my.toml: users.attributes.{HR}.grade.constant: 'z' is not one of the allowed "
        "values ('a', 'b')",
        f"my.toml: users.attributes.{HR}.band.default: 'c' is not one of the allowed "
        "values ('a', 'b')",
    ]


# --- the file itself --------------------------------------------------------------------


def written(tmp_path: pathlib.Path, content: bytes) -> list[str]:
    path = tmp_path / "my.toml"
    path.write_bytes(content)
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    return [line.replace(str(path), "my.toml") for line in caught.value.problems]


def test_non_utf8_file_names_the_line(tmp_path: pathlib.Path) -> None:
    content = f'{USERS}title = "caf\xe9"\n'.encode("latin-1")
    assert written(tmp_path, content) == [
        "my.toml: line 6: not UTF-8 text (byte 0xe9); save it as UTF-8"
    ]


def test_byte_order_mark_is_named(tmp_path: pathlib.Path) -> None:
    assert written(tmp_path, b"\xef\xbb\xbf" + USERS.encode()) == [
        "my.toml: starts with a byte order mark; save it as UTF-8 without BOM"
    ]


# --- two spellings of one key -----------------------------------------------------------


def test_dotted_key_and_nested_table_are_both_named(
    problems: Callable[[str], list[str]],
) -> None:
    text = attributes('"name.givenName" = "gg"\n[users.attributes.name]\ngivenName = "g"')
    assert problems(text) == [
        "my.toml: users.attributes.name.givenName: 'name.givenName' is already mapped by "
        'users.attributes."name.givenName"'
    ]
