"""SCIM filters to backend conditions: every operator, logic, slots, memberships, errors."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest
from scim2_models import ScimFilter

from connectors.base import (
    And,
    Compare,
    Condition,
    Constant,
    Membership,
    Not,
    Op,
    Or,
    Present,
)
from mappings import Mapping, UntranslatableFilter, load_mapping

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HR = "urn:example:params:scim:schemas:extension:hr:2.0:User"

MAPPING = f"""
[users]
object = "people"
key = "id"
created = "created_at"

[users.attributes]
userName = {{ field = "login", case = "lower" }}
externalId = "ext"
name.givenName = "first"
displayName = {{ template = "{{name.givenName}}" }}
userType = {{ constant = "Employee" }}
active = {{ field = "status", map = {{ true = "A", false = "T" }} }}
title = {{ field = "title_code", map = {{ Engineer = "ENG", Manager = "MGR" }} }}
'emails[type eq "work" and primary eq true].value' = "work_mail"
'emails[type eq "home"].value' = "home_mail"
'addresses[type eq "work"].locality' = "city"
'addresses[type eq "work"].postalCode' = "zip"
'addresses[type eq "home"].locality' = "home_city"
phoneNumbers = {{ field = "phones", split = "," }}

[users.attributes."{ENTERPRISE}"]
"manager.value" = {{ field = "boss", reference = "users" }}

# A string attribute of an extension of our own, holding an ISO 8601 date, stored as
# text in the backend's format.
[users.attributes."{HR}"]
since = {{ field = "since", format = "%d.%m.%Y" }}

[extensions."{HR}".attributes]
since = "string"

[groups]
object = "teams"
key = "team_id"

[groups.attributes]
displayName = "label"

[groups.members]
object = "team_members"
group = "team_id"
member = "person_id"
"""


@pytest.fixture(scope="module")
def mapping(tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    path: pathlib.Path = tmp_path_factory.mktemp("mapping") / "my.toml"
    path.write_text(MAPPING)
    return load_mapping(path)


def users(mapping: Mapping, text: str) -> Condition:
    return mapping.users.condition(ScimFilter(text).ast)


def groups(mapping: Mapping, text: str) -> Condition:
    assert mapping.groups is not None
    return mapping.groups.condition(ScimFilter(text).ast)


def refused(mapping: Mapping, text: str) -> str:
    with pytest.raises(UntranslatableFilter) as caught:
        users(mapping, text)
    return str(caught.value)


@pytest.mark.parametrize("op", list(Op))
def test_every_operator_on_a_simple_attribute(mapping: Mapping, op: Op) -> None:
    # case = "lower" folds the compared value as it folds stored ones.
    assert users(mapping, f'userName {op.value} "BJ"') == Compare("login", op, "bj")


def test_case_exact_attributes(mapping: Mapping) -> None:
    assert users(mapping, 'externalId eq "X1"') == Compare("ext", Op.EQ, "X1", case_exact=True)
    assert users(mapping, 'id eq "5"') == Compare("id", Op.EQ, "5", case_exact=True)


def test_meta_dates_map_to_configured_fields(mapping: Mapping) -> None:
    assert users(mapping, 'meta.created ge "2021-01-01T00:00:00Z"') == Compare(
        "created_at", Op.GE, "2021-01-01T00:00:00Z"
    )
    assert refused(mapping, 'meta.lastModified gt "2021-01-01T00:00:00Z"') == (
        "'meta.lastModified' is not mapped to the backend"
    )


def test_names_are_case_insensitive_and_may_carry_the_urn(mapping: Mapping) -> None:
    expected = Compare("login", Op.EQ, "x")
    assert users(mapping, 'USERNAME eq "x"') == expected
    assert users(mapping, 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"') == expected
    assert users(mapping, "NAME.GIVENNAME pr") == Present("first")


def test_and_or_not_nest(mapping: Mapping) -> None:
    text = 'userName eq "a" and (externalId pr or not (name.givenName sw "B"))'
    assert users(mapping, text) == And(
        (
            Compare("login", Op.EQ, "a"),
            Or((Present("ext"), Not(Compare("first", Op.SW, "B")))),
        )
    )


def test_map_translates_the_value(mapping: Mapping) -> None:
    assert users(mapping, "active eq true") == Compare("status", Op.EQ, "A")
    assert users(mapping, "active ne false") == Compare("status", Op.NE, "T")
    assert users(mapping, 'title eq "engineer"') == Compare("title_code", Op.EQ, "ENG")


def test_map_decides_values_outside_it(mapping: Mapping) -> None:
    assert users(mapping, 'title eq "Pilot"') == Constant(False)
    assert users(mapping, 'title ne "Pilot"') == Constant(True)
    assert users(mapping, 'title eq "Pilot" or userName eq "a"') == Compare("login", Op.EQ, "a")


def test_map_is_present_where_a_mapped_value_is_stored(mapping: Mapping) -> None:
    # A stored value the map does not list reads as no value (Rule.decode_one): `pr`
    # holds on the mapped ones, compared as equality compares them (RFC 7644 §3.4.2.2).
    either = Or((Compare("status", Op.EQ, "A"), Compare("status", Op.EQ, "T")))
    assert users(mapping, "active pr") == either
    assert users(mapping, "not (active pr)") == Not(either)
    assert users(mapping, "title pr") == Or(
        (Compare("title_code", Op.EQ, "ENG"), Compare("title_code", Op.EQ, "MGR"))
    )


def test_map_allows_only_equality(mapping: Mapping) -> None:
    assert (
        refused(mapping, 'title co "Eng"') == "'title' cannot be compared with 'co' by the backend"
    )


def test_constant_decides_the_comparison(mapping: Mapping) -> None:
    assert users(mapping, 'userType eq "employee"') == Constant(True)
    assert users(mapping, 'userType sw "Contract"') == Constant(False)
    assert users(mapping, "userType pr") == Constant(True)
    assert users(mapping, 'userType eq "Employee" and userName eq "a"') == Compare(
        "login", Op.EQ, "a"
    )
    assert users(mapping, 'not (userType eq "Employee")') == Constant(False)


def test_template_cannot_be_filtered(mapping: Mapping) -> None:
    assert refused(mapping, 'displayName eq "x"') == (
        "'displayName' is computed and cannot be filtered on"
    )


def test_unmapped_attribute_is_named_as_written(mapping: Mapping) -> None:
    assert refused(mapping, 'LOCALE eq "fr"') == "'LOCALE' is not mapped to the backend"
    # Never dropped from a conjunction, which would widen the result.
    assert refused(mapping, 'userName eq "a" and locale eq "fr"') == (
        "'locale' is not mapped to the backend"
    )


def test_format_translates_dates(mapping: Mapping) -> None:
    assert users(mapping, f'{HR}:since eq "2021-03-15"') == Compare("since", Op.EQ, "15.03.2021")
    assert refused(mapping, f'{HR}:since gt "2021-03-15"') == (
        f"'{HR}:since' cannot be compared with 'gt' by the backend"
    )


def test_split_attribute(mapping: Mapping) -> None:
    assert users(mapping, 'phoneNumbers eq "555"') == Or(
        (
            Compare("phones", Op.EQ, "555"),
            Compare("phones", Op.SW, "555,"),
            Compare("phones", Op.EW, ",555"),
            Compare("phones", Op.EW, ", 555"),
            Compare("phones", Op.CO, ",555,"),
            Compare("phones", Op.CO, ", 555,"),
        )
    )
    assert users(mapping, 'phoneNumbers[value co "55"]') == Compare("phones", Op.CO, "55")
    assert users(mapping, "phoneNumbers pr") == _SEPARATORS_ALONE_EXCLUDED
    assert refused(mapping, 'phoneNumbers sw "5"') == (
        "'phoneNumbers.value' cannot be compared with 'sw' by the backend"
    )
    assert refused(mapping, 'phoneNumbers[type eq "work"]') == (
        "'phoneNumbers.type' is not mapped to the backend"
    )


_COMMAS_ALONE = (",", ", ", " ,", " , ", ",,", ",, ", ", ,", ", , ", " ,,", " ,, ", " , ,", " , , ")
_SEPARATORS_ALONE_EXCLUDED = And(
    (
        Present("phones"),
        Not(Or(tuple(Compare("phones", Op.EQ, each, case_exact=True) for each in _COMMAS_ALONE))),
    )
)
"""`phoneNumbers pr` (split = ","): a value, and not separators alone (Rule.blank_texts)."""


def test_slots_are_or_ed(mapping: Mapping) -> None:
    assert users(mapping, 'emails eq "a@example.com"') == Or(
        (Compare("work_mail", Op.EQ, "a@example.com"), Compare("home_mail", Op.EQ, "a@example.com"))
    )
    assert users(mapping, "emails pr") == Or((Present("work_mail"), Present("home_mail")))


def test_slot_constants_are_substituted(mapping: Mapping) -> None:
    assert users(mapping, 'emails[type eq "work"]') == Present("work_mail")
    assert users(mapping, 'emails.type eq "HOME"') == Present("home_mail")
    assert users(mapping, "emails[primary eq true]") == Present("work_mail")
    assert users(mapping, 'emails[type eq "other"]') == Constant(False)
    assert users(mapping, 'emails[not (type eq "work")]') == Present("home_mail")
    assert users(mapping, 'emails[type eq "work" and value co "@example"]') == Compare(
        "work_mail", Op.CO, "@example"
    )


def test_slot_without_the_sub_attribute(mapping: Mapping) -> None:
    text = 'addresses[locality eq "Paris" and postalCode sw "75"]'
    assert users(mapping, text) == And(
        (Compare("city", Op.EQ, "Paris"), Compare("zip", Op.SW, "75"))
    )
    # `ne` holds on an entry without the value, but the entry must exist.
    assert users(mapping, 'addresses.postalCode ne "1"') == Or(
        (
            And((Or((Present("city"), Present("zip"))), Compare("zip", Op.NE, "1"))),
            Present("home_city"),
        )
    )
    assert refused(mapping, 'addresses.country eq "FR"') == (
        "'addresses.country' is not mapped to the backend"
    )


def test_memberships(mapping: Mapping) -> None:
    assert users(mapping, 'groups eq "7"') == Membership(Op.EQ, "7")
    assert users(mapping, 'groups.value ne "7"') == Membership(Op.NE, "7")
    assert users(mapping, "groups pr") == Membership(None, None)
    assert users(mapping, 'groups[value eq "7"]') == Membership(Op.EQ, "7")
    assert (
        refused(mapping, 'groups co "7"') == "'groups' cannot be compared with 'co' by the backend"
    )
    assert (
        refused(mapping, 'groups.display eq "x"') == "'groups.display' is not mapped to the backend"
    )
    assert groups(mapping, 'members eq "3"') == Membership(Op.EQ, "3")
    assert groups(mapping, "members.value pr") == Membership(None, None)
    either = 'members[value eq "3" or value eq "4"]'
    assert groups(mapping, either) == Or((Membership(Op.EQ, "3"), Membership(Op.EQ, "4")))
    # `and` would have to hold of one same member: refused, never widened.
    assert refused(mapping, 'members[value eq "3" and value eq "4"]').startswith("'members'")
    assert groups(mapping, 'displayName eq "Admins"') == Compare("label", Op.EQ, "Admins")
    assert groups(mapping, 'id eq "9"') == Compare("team_id", Op.EQ, "9", case_exact=True)


def test_reference_attribute(mapping: Mapping) -> None:
    expected = Compare("boss", Op.EQ, "42", case_exact=True)
    assert users(mapping, f'{ENTERPRISE}:manager.value eq "42"') == expected
    assert users(mapping, f'{ENTERPRISE}:manager eq "42"') == expected
    assert users(mapping, f"{ENTERPRISE}:manager pr") == Present("boss")
    assert refused(mapping, f'{ENTERPRISE}:manager.value gt "42"') == (
        f"'{ENTERPRISE}:manager.value' cannot be compared with 'gt' by the backend"
    )
    assert refused(mapping, 'manager eq "42"') == "'manager' is not mapped to the backend"


def test_filter_invalid_for_the_schema_is_refused(mapping: Mapping) -> None:
    assert refused(mapping, "active gt true") == (
        "operator 'gt' cannot be applied to the boolean attribute "
        "'urn:ietf:params:scim:schemas:core:2.0:User:active'"
    )


TAGS = "urn:example:params:scim:schemas:extension:tags:2.0:User"
TAGGED = {"u1": "a,B", "u2": "b", "u3": "c,d"}
"""Stored values of `tags` (split = ","): u1 holds a and B, u2 b, u3 c and d."""


def _holds(condition: Condition, stored: str) -> bool:
    """`condition` on a record whose one field holds `stored`, as Compare says
    (case-insensitive unless case_exact)."""
    if isinstance(condition, Constant):
        return condition.value
    if isinstance(condition, Or):
        return any(_holds(term, stored) for term in condition.terms)
    if isinstance(condition, And):
        return all(_holds(term, stored) for term in condition.terms)
    if isinstance(condition, Not):
        return not _holds(condition.term, stored)
    if isinstance(condition, Present):
        return stored != ""
    assert isinstance(condition, Compare)
    value, text = str(condition.value), stored
    if not condition.case_exact:
        value, text = value.lower(), text.lower()
    return {
        Op.EQ: text == value,
        Op.NE: text != value,
        Op.CO: value in text,
        Op.SW: text.startswith(value),
        Op.EW: text.endswith(value),
    }[condition.op]


def _tags_mapping(load: Callable[[str], Mapping], sep: str = ",") -> Mapping:
    return load(
        '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\nuserName = "login"\n'
        f'[users.attributes."{TAGS}"]\ntags = {{ field = "tags", split = "{sep}" }}\n'
        f'[extensions."{TAGS}".attributes]\n'
        'tags = { type = "string", multi_valued = true }\n'
    )


def test_split_attribute_matches_one_value_not_across_separators(
    load: Callable[[str], Mapping],
) -> None:
    """RFC 7644 §3.4.2.2: a multi-valued attribute matches when one of its values does;
    no value holds the separator, so a test of the whole stored text must not decide."""
    mapping = _tags_mapping(load)

    def matched(text: str) -> set[str]:
        condition = users(mapping, text)
        return {user for user, stored in TAGGED.items() if _holds(condition, stored)}

    assert users(mapping, f'{TAGS}:tags eq "a,B"') == Constant(False)
    assert users(mapping, f'{TAGS}:tags co ","') == Constant(False)
    assert users(mapping, f'{TAGS}:tags co "a,b"') == Constant(False)
    assert matched(f'not ({TAGS}:tags eq "a,B")') == {"u1", "u2", "u3"}
    assert matched(f'not ({TAGS}:tags co ",")') == {"u1", "u2", "u3"}
    # What was right stays right: one value, wherever it stands in the list.
    assert matched(f'{TAGS}:tags eq "b"') == {"u1", "u2"}
    assert matched(f'{TAGS}:tags eq "a"') == {"u1"}
    assert matched(f'{TAGS}:tags eq "d"') == {"u3"}
    assert matched(f'{TAGS}:tags co "b"') == {"u1", "u2"}
    assert matched(f"{TAGS}:tags pr") == {"u1", "u2", "u3"}
    # Values are read trimmed, and empty ones dropped: no value is " a" or "".
    assert users(mapping, f'{TAGS}:tags eq " a"') == Constant(False)
    assert users(mapping, f'{TAGS}:tags eq ""') == Constant(False)
    for operator in ("sw", "ew", "ne", "gt", "lt"):
        assert refused(mapping, f'{TAGS}:tags {operator} "a"') == (
            f"'{TAGS}:tags' cannot be compared with '{operator}' by the backend"
        )


def test_split_is_present_where_a_part_is_not_blank(load: Callable[[str], Mapping]) -> None:
    """RFC 7644 §3.4.2.2: `pr` holds on a non-empty value, and parts are read trimmed
    with blank ones dropped (Rule.decode): separators alone show no value."""
    for sep, blanks, shown in (
        (",", (",", ", ", " , ", ",,", ", ,", " ,, "), ("a", " ,a", "a,,", ", , b")),
        ("; ", ("; ", " ;  ", "; ; ", ";  ; "), (";", "; ;", "a; ")),
    ):
        mapping = _tags_mapping(load, sep)
        present = users(mapping, f"{TAGS}:tags pr")
        absent = users(mapping, f"not ({TAGS}:tags pr)")
        for stored in blanks:
            assert (_holds(present, stored), _holds(absent, stored)) == (False, True), stored
        for stored in shown:
            assert (_holds(present, stored), _holds(absent, stored)) == (True, False), stored


def test_split_codes_are_present_where_a_part_is_a_listed_code(
    load: Callable[[str], Mapping],
) -> None:
    mapping = load(
        '[users]\nobject = "people"\nkey = "id"\n[users.attributes]\nuserName = "login"\n'
        f'[users.attributes."{TAGS}"]\n'
        'tags = { field = "tags", split = ",", map = { admin = "A", staff = "S" } }\n'
        f'[extensions."{TAGS}".attributes]\n'
        'tags = { type = "string", multi_valued = true }\n'
    )
    present = users(mapping, f"{TAGS}:tags pr")
    stored = ("A", "X, S", "S,X", "X", "X,AS", ",", "")
    assert [text for text in stored if _holds(present, text)] == ["A", "X, S", "S,X"]


def test_split_contains_is_refused_where_the_whole_text_could_answer_wrong(
    load: Callable[[str], Mapping],
) -> None:
    # "x, y" holds x and y: `co "x "` or `co " y"` would find the space read away.
    assert refused(_tags_mapping(load), f'{TAGS}:tags co " y"') == (
        f"'{TAGS}:tags' cannot be searched for ' y': its values are separated by ',' "
        "and read without the spaces around them"
    )
    # With "; " between values, "x; y" holds x and y, not "x;".
    spaced = _tags_mapping(load, "; ")
    assert refused(spaced, f'{TAGS}:tags co "x;"').startswith(f"'{TAGS}:tags' cannot be searched")
    assert users(spaced, f'{TAGS}:tags co "x; y"') == Constant(False)
    assert users(spaced, f'{TAGS}:tags co "x"') == Compare("tags", Op.CO, "x")


def test_split_complex_attribute_never_matches_across_separators(mapping: Mapping) -> None:
    assert users(mapping, 'phoneNumbers eq "555,556"') == Constant(False)
    assert users(mapping, 'phoneNumbers[value co ","]') == Constant(False)
    assert users(mapping, 'not (phoneNumbers.value co "5,5")') == Constant(True)
    # A value selection with `not` keeps requiring an entry (RFC 7644 §3.4.2.2).
    assert users(mapping, 'phoneNumbers[not (value eq "5,5")]') == _SEPARATORS_ALONE_EXCLUDED
    assert users(mapping, 'phoneNumbers co "55"') == Compare("phones", Op.CO, "55")


TYPED_FIRST = """
# `first`: a `split` text whose first value is typed (Rule.first). Filters that select
# by type are a test of its first part; `emails[type eq "work"].value eq "x"` is how
# Entra matches a user by work address.
[users]
object = "people"
key = "id"

[users.attributes]
userName = "login"
emails = { field = "mails", split = ";", first = "work" }
phoneNumbers = { field = "phones", split = ";" }
"""


@pytest.fixture(scope="module")
def typed_first(tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    path: pathlib.Path = tmp_path_factory.mktemp("mapping") / "split-first.toml"
    path.write_text(TYPED_FIRST)
    return load_mapping(path)


_BLANKS = (";", "; ", " ;", " ; ", ";;", ";; ", "; ;", "; ; ", " ;;", " ;; ", " ; ;", " ; ; ")
"""Rule.blank_texts of `;`: separators alone, read as no value (and away before a value)."""

HAS_A_VALUE = And(
    (
        Present("mails"),
        Not(Or(tuple(Compare("mails", Op.EQ, blank, case_exact=True) for blank in _BLANKS))),
    )
)


def first_is(value: str) -> Condition:
    """The text's first non-blank part is `value`: alone, or before a separator."""
    alone = [value, *(blank + value for blank in _BLANKS)]
    return Or(
        (
            *(Compare("mails", Op.EQ, text) for text in alone),
            *(Compare("mails", Op.SW, f"{text};") for text in alone),
        )
    )


@pytest.mark.parametrize(
    "text",
    [
        'emails[type eq "work"].value eq "a@example.com"',  # Entra's form
        'emails[type eq "work" and value eq "a@example.com"]',
        'emails[value eq "a@example.com" and primary eq true]',
    ],
)
def test_the_typed_value_is_the_first_part(typed_first: Mapping, text: str) -> None:
    assert users(typed_first, text) == first_is("a@example.com")


def test_the_type_compares_ignoring_case(typed_first: Mapping) -> None:
    # type is not caseExact (RFC 7643 §4.1.2); the value goes to the backend as sent,
    # compared ignoring case there.
    assert users(typed_first, 'emails[type eq "WORK" and value eq "A@example.com"]') == first_is(
        "A@example.com"
    )


def test_ne_needs_a_first_value_that_is_another(typed_first: Mapping) -> None:
    assert users(typed_first, 'emails[type eq "work" and value ne "a@example.com"]') == And(
        (*HAS_A_VALUE.terms, Not(first_is("a@example.com")))
    )


@pytest.mark.parametrize(
    "text",
    [
        'emails[type eq "work"]',
        'emails.type eq "work"',
        "emails[primary eq true]",
        "emails.type pr",
    ],
)
def test_the_typed_value_exists_when_any_does(typed_first: Mapping, text: str) -> None:
    assert users(typed_first, text) == HAS_A_VALUE


@pytest.mark.parametrize(
    "text",
    [
        'emails[type eq "home"]',
        'emails[type eq "home" and value eq "a@example.com"]',
        'emails[type eq "work" and value eq "a;b"]',  # no part holds the separator
        'emails[type eq "work" and value eq " a"]',  # parts are read trimmed
        "emails[primary eq false]",
    ],
)
def test_what_no_value_can_be_matches_nothing(typed_first: Mapping, text: str) -> None:
    assert users(typed_first, text) == Constant(False)


def test_a_filter_that_could_hold_of_a_later_value_is_refused(typed_first: Mapping) -> None:
    expected = (
        "'emails' can only select the value of type 'work' here: the other values of "
        "'emails' are stored without a type"
    )
    assert refused(typed_first, 'emails[not (type eq "work")]') == expected
    assert refused(typed_first, 'emails[type eq "work" or value eq "a@example.com"]') == expected
    assert refused(typed_first, 'emails[type ne "work" and value pr]') == expected


def test_other_operators_on_the_first_value_are_refused(typed_first: Mapping) -> None:
    assert refused(typed_first, 'emails[type eq "work" and value sw "a"]') == (
        "'emails.value' cannot be compared with 'sw' by the backend"
    )


def test_filters_without_type_still_match_any_part(typed_first: Mapping) -> None:
    assert users(typed_first, 'emails[value eq "b@example.com"]') == users(
        typed_first, 'emails eq "b@example.com"'
    )
    assert isinstance(users(typed_first, 'emails eq "b@example.com"'), Or)


def test_a_split_text_without_first_still_has_no_type(typed_first: Mapping) -> None:
    assert refused(typed_first, 'phoneNumbers[type eq "work"]') == (
        "'phoneNumbers.type' is not mapped to the backend"
    )
