"""The OpenLDAP preset changed, checked against the directory's own schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import ldap3
import pytest

from connectors.ldap import LdapConnector, LdapSettings
from connectors.ldap.schema import ACTIVE_DIRECTORY, DirectorySchema, mapping_problems
from mappings import load_mapping

PRESET = (Path(__file__).parents[3] / "mappings" / "ldap-openldap.toml").read_text()
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture
def problems(ldap_settings: Callable[..., LdapSettings], tmp_path: Path) -> Callable[..., Any]:
    async def found(replace: dict[str, str]) -> list[str]:
        text = PRESET
        for old, new in replace.items():
            assert old in text
            text = text.replace(old, new)
        path = tmp_path / "my.toml"
        path.write_text(text)
        connector = LdapConnector(ldap_settings(), load_mapping(path).backend)
        await connector.open()
        try:
            return [line.replace(str(path), "my.toml") for line in await connector.verify()]
        finally:
            await connector.close()

    return found


async def test_the_preset_passes(problems: Callable[..., Any]) -> None:
    assert await problems({}) == []


async def test_aliases_are_attribute_types(problems: Callable[..., Any]) -> None:
    replace = {
        '{ field = "sn",': '{ field = "surname",',
        '"name.formatted" = { field = "cn",': '"name.formatted" = { field = "commonName",',
        '= "mail"': '= "rfc822Mailbox"',
    }
    assert await problems(replace) == []


async def test_two_names_of_one_attribute_type(problems: Callable[..., Any]) -> None:
    assert await problems({'title = "title"': 'title = "title"\nnickName = "surname"'}) == [
        "my.toml: users.attributes.nickName: 'surname' and 'sn' name one attribute type, "
        "also written by users.attributes.name.familyName"
    ]


async def test_rdn_alias_written_by_another_rule(problems: Callable[..., Any]) -> None:
    found = await problems({'rdn = "uid={userName}"': 'rdn = "commonName={userName}"'})
    assert found == [
        "my.toml: users.rdn: 'commonName' names the entry, but users.attributes.name.formatted "
        "writes it too"
    ]


async def test_attribute_the_classes_do_not_allow(problems: Callable[..., Any]) -> None:
    replace = {
        'title = "title"': 'title = "title"\nnickName = "uidNumber"',
        'field = "member"': 'field = "uniqueMember"',
    }
    assert await problems(replace) == [
        "my.toml: users.attributes.nickName: 'uidNumber' is allowed by none of the object "
        "classes top, person, organizationalPerson, inetOrgPerson",
        "my.toml: groups.members.field: 'uniqueMember' is allowed by none of the object "
        "classes top, groupOfNames",
        "my.toml: groups.classes: object class 'groupOfNames' requires 'member', which the "
        "mapping never writes: every create would fail (map a SCIM attribute to it, with "
        "`empty` or `default` for when that one is absent, or set it in [groups.constants])",
    ]


async def test_several_values_for_a_single_value_type(problems: Callable[..., Any]) -> None:
    replace = {
        'preferredLanguage = "preferredLanguage"\n': "",
        '\'emails[type eq "work"].value\' = "mail"': 'emails = "preferredLanguage"',
    }
    assert await problems(replace) == [
        "my.toml: users.attributes.emails: the attribute holds several values, but "
        "'preferredLanguage' is SINGLE-VALUE in the directory's schema: map one entry "
        '(emails[type eq "work"].value)'
    ]


async def test_reference_in_an_attribute_without_dn_syntax(problems: Callable[..., Any]) -> None:
    found = await problems({'{ field = "manager",': '{ field = "carLicense",'})
    assert found == [
        f"my.toml: users.attributes.{ENTERPRISE}.manager.value: a reference is stored "
        "as a DN, but 'carLicense' has syntax 1.3.6.1.4.1.1466.115.121.1.15, not DN "
        "(1.3.6.1.4.1.1466.115.121.1.12)"
    ]


async def test_a_fixed_value_the_attributes_syntax_refuses(problems: Callable[..., Any]) -> None:
    # Every deactivation was answered 400 "the directory refused this value"; check passed.
    found = await problems({'map = { false = "000001010000Z" }': 'map = { false = "yes" }'})
    assert found == [
        "my.toml: users.attributes.active: 'yes' cannot be stored in 'pwdAccountLockedTime', "
        "whose syntax is Generalized Time (1.3.6.1.4.1.1466.115.121.1.24): the directory "
        "would refuse every write of it"
    ]


async def test_fixed_values_of_the_attributes_syntax_pass(problems: Callable[..., Any]) -> None:
    lock = {'map = { false = "000001010000Z" }': 'map = { false = "20260301120000.5+0100" }'}
    assert await problems(lock) == []


@pytest.mark.parametrize(
    ("preset", "dump"),
    [
        ("ldap-active-directory", "OFFLINE_AD_2012_R2"),
        ("ldap-389ds", "OFFLINE_DS389_1_3_3"),
        ("ldap-openldap", "OFFLINE_SLAPD_2_4"),
    ],
)
def test_each_shipped_preset_passes_its_servers_real_schema(preset: str, dump: str) -> None:
    # The schemas ldap3 ships are dumps of real servers. Active Directory's `user` holds
    # sAMAccountName through a DIT content rule (auxiliary securityPrincipal), not through
    # its class definition: the preset must pass all the same. Active Directory fills the
    # attributes `top` requires (instanceType...) itself, as its root DSE's capability says.
    server = ldap3.Server("offline", get_info=getattr(ldap3, dump))
    capabilities = server.info.raw.get("supportedCapabilities") or []
    directory = DirectorySchema.from_ldap3(
        server.schema, fills_required=ACTIVE_DIRECTORY in capabilities
    )
    assert mapping_problems(directory, load_mapping(preset).backend) == []


@pytest.mark.parametrize(
    ("dump", "attribute", "rule"),
    [
        ("OFFLINE_SLAPD_2_4", "description", "caseExactMatch"),
        ("OFFLINE_SLAPD_2_4", "title", "caseExactMatch"),  # inherited from `name`
        ("OFFLINE_SLAPD_2_4", "mail", "caseExactIA5Match"),
        ("OFFLINE_SLAPD_2_4", "entryUUID", None),  # uuidMatch: no case to ignore
        # 389 DS's dump publishes no matchingRuleUse: the extensible match is not known
        # to apply there, and an unknown rule would match nothing (RFC 4511 §4.5.1.7.7).
        ("OFFLINE_DS389_1_3_3", "description", None),
        ("OFFLINE_AD_2012_R2", "description", None),  # no equality rule published
        ("OFFLINE_SLAPD_2_4", "noSuchAttribute", None),
    ],
)
def test_the_case_exact_rule_of_an_attribute_that_ignores_case(
    dump: str, attribute: str, rule: str | None
) -> None:
    server = ldap3.Server("offline", get_info=getattr(ldap3, dump))
    assert DirectorySchema.from_ldap3(server.schema).case_exact_rule(attribute) == rule


def test_an_equality_rule_published_by_its_oid_has_its_case_exact_counterpart() -> None:
    server = ldap3.Server("offline", get_info=ldap3.OFFLINE_SLAPD_2_4)
    schema = DirectorySchema.from_ldap3(server.schema)
    by_oid = {
        name: replace(rules, equality_rule=oid)
        for name, rules, oid in (
            ("description", schema.attributes["description"], "2.5.13.2"),
            ("mail", schema.attributes["mail"], "1.3.6.1.4.1.1466.109.114.2"),
        )
    }
    published = replace(schema, attributes={**schema.attributes, **by_oid})
    assert published.case_exact_rule("description") == "caseExactMatch"
    assert published.case_exact_rule("mail") == "caseExactIA5Match"


def test_a_case_exact_rule_the_directory_does_not_apply_to_the_attribute_is_not_used() -> None:
    """Only matchingRuleUse says an extensible match may name the rule for the attribute."""
    server = ldap3.Server("offline", get_info=ldap3.OFFLINE_SLAPD_2_4)
    schema = DirectorySchema.from_ldap3(server.schema)
    assert schema.case_exact_rule("description") == "caseExactMatch"
    others = frozenset(schema.rule_uses["caseexactmatch"] - {"description"})
    narrowed = replace(schema, rule_uses={**schema.rule_uses, "caseexactmatch": others})
    assert narrowed.case_exact_rule("description") is None
    assert narrowed.case_exact_rule("title") == "caseExactMatch"
