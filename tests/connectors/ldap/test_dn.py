"""Distinguished names as slapd and other writers spell them (RFC 4514)."""

from __future__ import annotations

import pytest

from connectors.ldap import dn


@pytest.mark.parametrize(
    ("spelling", "other"),
    [
        ("cn=C# devs,ou=groups,dc=example,dc=org", "CN=c\\# Devs, OU=Groups,dc=Example,dc=org"),
        ("uid=jos\\c3\\a9,ou=people", "uid=JOSÉ,ou=people"),
        ("uid=a\\,b,ou=people", "uid=a\\2cb,ou=people"),
        ("cn=x\\=y+uid=z,o=o", "CN=X=Y + UID=Z,O=O"),
    ],
)
def test_spellings_of_one_name_normalize_alike(spelling: str, other: str) -> None:
    assert dn.normalized(spelling) == dn.normalized(other)


def test_different_names_stay_different() -> None:
    assert dn.normalized("uid=a\\,b,ou=p") != dn.normalized("uid=a,b=,ou=p")
    assert dn.normalized("uid=\\ a,ou=p") != dn.normalized("uid=a,ou=p")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cn=C# devs,ou=groups", "C# devs"),
        ("cn=\\#1,ou=groups", "#1"),
        ("uid=a\\,b,ou=x", "a,b"),
        ("uid=jos\\c3\\a9,ou=x", "josé"),
        ("uid=\\ lead\\ ,ou=x", " lead "),
    ],
)
def test_first_value_unescapes(name: str, value: str) -> None:
    assert dn.first_value(name) == value


def test_escape_and_first_value_round_trip() -> None:
    for value in ["#a", " a ", 'a,b+c"d\\e<f>g;h=i', "C# devs", "é\x00"]:
        assert dn.first_value(dn.rdn("cn", value) + ",o=x") == value


@pytest.mark.parametrize(
    ("relative", "base", "meant"),
    [
        ("ou=archive,dc=example,dc=org", "dc=example,dc=org", "ou=archive"),
        ("OU=Archive, DC=Example,dc=org", "dc=example,dc=org", "OU=Archive"),
        ("cn=a\\,b,ou=x,dc=example,dc=org", "dc=example,dc=org", "cn=a\\,b,ou=x"),
        ("ou=archive", "dc=example,dc=org", None),
        ("dc=example,dc=org", "dc=example,dc=org", None),  # names nothing more
        ("ou=archive,dc=example,dc=com", "dc=example,dc=org", None),
        ("ou=archive,dc=example,dc=org", "", None),
        ("ou=archive,not a dn", "dc=example,dc=org", None),
    ],
)
def test_a_relative_dn_written_with_its_base_is_told_without_it(
    relative: str, base: str, meant: str | None
) -> None:
    assert dn.without_suffix(relative, base) == meant
