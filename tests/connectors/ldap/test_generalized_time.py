"""SCIM dateTime values and GeneralizedTime (RFC 4517 §3.3.13), both ways, exactly.

The filter results are slapd's: entries are written with the createTimestamp each test
wants (the Relax Rules control lets the administrator set it), then searched through the
connector, so what is checked is what the directory's generalizedTimeOrderingMatch
answers to the filter the connector sends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from scim2_models import ScimFilter
from slapd import SlapdServer

from connectors.base import Compare, Kind, Op, Query
from connectors.ldap import LdapConnector
from connectors.ldap.values import generalized_time, parse_generalized_time, to_directory
from mappings import Mapping

RELAX = ("1.3.6.1.4.1.4203.666.5.12", True, None)
"""Relax Rules (draft-zeilenga-ldap-relax): slapd then takes a createTimestamp on add."""

PLUS_TWO = timezone(timedelta(hours=2))
MINUS_TWO = timezone(-timedelta(hours=2))

# --- Formatting and parsing ------------------------------------------------------------


def test_a_fraction_of_a_second_is_kept() -> None:
    assert generalized_time(datetime(2026, 12, 2, 1, 17, 33, 500000, UTC)) == "20261202011733.5Z"
    assert generalized_time(datetime(2026, 12, 2, 1, 17, 33, 1, UTC)) == "20261202011733.000001Z"
    assert generalized_time(datetime(2026, 12, 2, 1, 17, 33, 120, UTC)) == "20261202011733.00012Z"


def test_a_whole_second_is_written_as_before() -> None:
    """A value written to the directory keeps the form it always had."""
    moment = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert generalized_time(moment) == "20261122153000Z"
    assert to_directory(moment) == "20261122153000Z"
    assert to_directory(datetime(2026, 11, 22, 15, 30)) == "20261122153000Z"  # naive: UTC


def test_a_written_value_keeps_its_fraction() -> None:
    assert to_directory(datetime(2026, 11, 22, 15, 30, 0, 250000, UTC)) == "20261122153000.25Z"


def test_the_year_has_four_digits() -> None:
    assert generalized_time(datetime(1, 1, 1, tzinfo=UTC)) == "00010101000000Z"
    assert generalized_time(datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC)) == "09991231235959Z"
    assert generalized_time(datetime(50, 6, 1, 12, tzinfo=UTC)) == "00500601120000Z"


def test_an_offset_is_taken_to_utc() -> None:
    moment = datetime(2026, 12, 2, 3, 17, 33, 500000, PLUS_TWO)
    assert generalized_time(moment) == "20261202011733.5Z"
    assert generalized_time(datetime(2026, 1, 1, 1, tzinfo=PLUS_TWO)) == "20251231230000Z"


def test_an_offset_may_reach_year_0000_but_not_10000() -> None:
    """RFC 4517 allows year 0000, which a datetime cannot hold; 10000 has five digits."""
    assert generalized_time(datetime(1, 1, 1, 1, tzinfo=PLUS_TWO)) == "00001231230000Z"
    assert generalized_time(datetime(1, 3, 1, 1, tzinfo=PLUS_TWO)) == "00010228230000Z"
    assert generalized_time(datetime(9999, 12, 31, 21, 59, tzinfo=MINUS_TWO)) == ("99991231235900Z")
    with pytest.raises(OverflowError):
        generalized_time(datetime(9999, 12, 31, 23, tzinfo=MINUS_TWO))


def test_more_digits_than_a_datetime_holds_are_kept_when_given() -> None:
    moment = datetime(2026, 12, 2, 1, 17, 33, 0, UTC)
    assert generalized_time(moment, "0000001") == "20261202011733.0000001Z"
    assert generalized_time(moment.replace(microsecond=123456), "1234567") == (
        "20261202011733.1234567Z"
    )
    # Digits that are not the moment's own are ignored rather than trusted.
    assert generalized_time(moment.replace(microsecond=5), "9") == "20261202011733.000005Z"


def test_reading_fractions_and_early_years() -> None:
    assert parse_generalized_time("20261202011733.5Z") == datetime(
        2026, 12, 2, 1, 17, 33, 500000, UTC
    )
    assert parse_generalized_time("20261202011733.1234567Z") == datetime(
        2026, 12, 2, 1, 17, 33, 123456, UTC
    )
    assert parse_generalized_time("05000101000000Z") == datetime(500, 1, 1, tzinfo=UTC)
    assert parse_generalized_time("20261202011733.0Z") == datetime(
        2026, 12, 2, 1, 17, 33, tzinfo=UTC
    )


def test_a_fraction_belongs_to_the_last_element_written() -> None:
    """§3.3.13: a fraction after the hour is of an hour, after the minute of a minute."""
    assert parse_generalized_time("2026120201.5Z") == datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    assert parse_generalized_time("202612020117,25Z") == datetime(
        2026, 12, 2, 1, 17, 15, tzinfo=UTC
    )
    assert parse_generalized_time("2026120201.5+0200") == datetime(
        2026, 12, 2, 1, 30, tzinfo=PLUS_TWO
    )


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 2, 1, 17, 33, tzinfo=UTC),
        datetime(2026, 12, 2, 1, 17, 33, 500000, UTC),
        datetime(2026, 12, 2, 1, 17, 33, 999999, UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 2, 28, 0, 0, 0, 10, UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, UTC),
    ],
)
def test_what_is_written_reads_back_the_same(moment: datetime) -> None:
    assert parse_generalized_time(generalized_time(moment)) == moment


# --- Filters against slapd -----------------------------------------------------------------


def add_person(slapd: SlapdServer, tree: str, name: str, created: str) -> None:
    connection = slapd.connection()
    try:
        connection.add(
            f"uid={name},ou=people,{tree}",
            ["inetOrgPerson"],
            {"uid": name, "sn": name, "cn": name, "createTimestamp": created},
            controls=[RELAX],
        )
    finally:
        connection.unbind()


@pytest.fixture
def dated(slapd: SlapdServer, ldap_tree: str) -> None:
    """Three people: created on a whole second, half a second later, and in year 500."""
    add_person(slapd, ldap_tree, "whole", "20261202011733Z")
    add_person(slapd, ldap_tree, "half", "20261202011733.5Z")
    add_person(slapd, ldap_tree, "early", "05000101000000Z")


EVERYONE = {"whole", "half", "early"}


async def found(
    ldap: LdapConnector, op: Op, value: Any, field: str = "createTimestamp"
) -> set[str]:
    page = await ldap.search(Kind.USERS, Query(where=Compare(field, op, value)))
    assert page.total == len(page.records)
    return {record.values["uid"] for record in page.records}


@pytest.mark.usefixtures("dated")
@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (Op.LT, {"whole", "early"}),
        (Op.LE, EVERYONE),
        (Op.EQ, {"half"}),
        (Op.NE, {"whole", "early"}),
        (Op.GE, {"half"}),
        (Op.GT, set()),
    ],
)
async def test_a_fraction_in_a_filter_counts(
    ldap: LdapConnector, op: Op, expected: set[str]
) -> None:
    assert await found(ldap, op, "2026-12-02T01:17:33.5Z") == expected
    # The same moment at another offset, and as a datetime.
    assert await found(ldap, op, "2026-12-02T03:17:33.5+02:00") == expected
    assert await found(ldap, op, datetime(2026, 12, 2, 1, 17, 33, 500000, UTC)) == expected


@pytest.mark.usefixtures("dated")
@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (Op.LT, {"whole", "early"}),
        (Op.LE, {"whole", "early"}),
        (Op.EQ, set()),
        (Op.NE, EVERYONE),
        (Op.GE, {"half"}),
        (Op.GT, {"half"}),
    ],
)
async def test_a_fraction_between_the_stored_values_equals_none(
    ldap: LdapConnector, op: Op, expected: set[str]
) -> None:
    """`eq` with a fraction matches no whole second (and no other fraction)."""
    assert await found(ldap, op, "2026-12-02T01:17:33.25Z") == expected
    # Beyond a datetime's microseconds, the digits written still decide.
    assert await found(ldap, op, "2026-12-02T01:17:33.0000001Z") == expected


@pytest.mark.usefixtures("dated")
async def test_a_whole_second_still_equals_itself(ldap: LdapConnector) -> None:
    assert await found(ldap, Op.EQ, "2026-12-02T01:17:33Z") == {"whole"}
    assert await found(ldap, Op.EQ, "2026-12-02T01:17:33.000Z") == {"whole"}
    assert await found(ldap, Op.EQ, "2026-12-02T02:17:33+01:00") == {"whole"}
    assert await found(ldap, Op.NE, "2026-12-02T01:17:33Z") == {"half", "early"}


@pytest.mark.usefixtures("dated")
async def test_years_before_1000_compare(ldap: LdapConnector) -> None:
    assert await found(ldap, Op.GT, "0001-01-01T00:00:00Z") == EVERYONE
    assert await found(ldap, Op.LT, "0001-01-01T00:00:00Z") == set()
    assert await found(ldap, Op.EQ, "0500-01-01T00:00:00Z") == {"early"}
    assert await found(ldap, Op.NE, "0500-01-01T00:00:00Z") == {"whole", "half"}
    assert await found(ldap, Op.LT, "0999-12-31T23:59:59Z") == {"early"}
    assert await found(ldap, Op.GE, "0500-01-01T00:00:00.000001Z") == {"whole", "half"}


@pytest.mark.usefixtures("dated")
async def test_moments_at_the_ends_of_the_calendar(ldap: LdapConnector) -> None:
    """An offset can put a moment in year 0000 (valid GeneralizedTime) or past 9999
    (none can write it: every stored time is before it)."""
    assert await found(ldap, Op.GT, "0001-01-01T01:00:00+02:00") == EVERYONE
    assert await found(ldap, Op.LE, "0001-01-01T01:00:00+02:00") == set()
    after = "9999-12-31T23:00:00-02:00"
    assert await found(ldap, Op.LT, after) == EVERYONE
    assert await found(ldap, Op.LE, after) == EVERYONE
    assert await found(ldap, Op.NE, after) == EVERYONE
    assert await found(ldap, Op.EQ, after) == set()
    assert await found(ldap, Op.GE, after) == set()
    assert await found(ldap, Op.GT, after) == set()


@pytest.mark.usefixtures("dated")
async def test_created_is_read_with_its_fraction_and_year(ldap: LdapConnector) -> None:
    page = await ldap.search(Kind.USERS, Query())
    created = {record.values["uid"]: record.created for record in page.records}
    assert created == {
        "whole": datetime(2026, 12, 2, 1, 17, 33, tzinfo=UTC),
        "half": datetime(2026, 12, 2, 1, 17, 33, 500000, UTC),
        "early": datetime(500, 1, 1, tzinfo=UTC),
    }


async def test_scim_filters_on_meta_dates_of_entries_slapd_dated(
    ldap: LdapConnector, openldap: Mapping, slapd: SlapdServer, ldap_tree: str
) -> None:
    """The probe's filters, from SCIM text, on timestamps slapd set itself (whole seconds)."""
    made = await ldap.create(Kind.USERS, {"uid": "jdoe", "sn": "Doe", "cn": "jdoe"})
    assert made.created is not None
    assert made.created.microsecond == 0
    second = made.created.strftime("%Y-%m-%dT%H:%M:%S")

    async def uids(text: str) -> set[str]:
        condition = openldap.users.condition(ScimFilter(text).ast)
        page = await ldap.search(Kind.USERS, Query(where=condition))
        return {record.values["uid"] for record in page.records}

    assert await uids(f'meta.created lt "{second}.5Z"') == {"jdoe"}
    assert await uids(f'meta.created ge "{second}.5Z"') == set()
    assert await uids(f'meta.created eq "{second}.5Z"') == set()
    assert await uids(f'meta.created ne "{second}.5Z"') == {"jdoe"}
    assert await uids(f'meta.created eq "{second}Z"') == {"jdoe"}
    assert await uids('meta.lastModified gt "0001-01-01T00:00:00Z"') == {"jdoe"}
    assert await uids('meta.lastModified lt "0999-01-01T00:00:00Z"') == set()
