"""Search requests encoded by connectors.ldap.ber: the bytes ldap3 would send, the answers
ldap3 would get, and ldap3 itself for any filter the encoder does not take."""

from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest
from ldap3.core import exceptions as ldap_errors
from ldap3.operation.add import add_operation
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from pyasn1.codec.ber.encoder import encode
from slapd import SlapdServer

from connectors.ldap import ber
from connectors.ldap.directory import (
    PAGED_RESULTS,
    add_entry,
    entries_of,
    paged_cookie,
    search,
)

FILTERS = [
    "(uid=alice)",
    "(&(objectClass=inetOrgPerson)(uid=al\\2aice))",
    "(|(cn=a*)(cn=*b)(cn=a*b*c)(cn=*a*))",
    "(!(mail=*))",
    "(userAccountControl:1.2.840.113556.1.4.803:=2)",
    "(cn:dn:2.5.13.5:=Foo)",
    "(:caseExactMatch:=Foo)",
    "(memberOf=cn=x\\2cy,dc=example,dc=com)",
    "(createTimestamp>=20240101000000Z)",
    "(uid<=m)",
    "(cn~=smith)",
    "(&(objectClass=*)(|(uid=é)(uid=\\00)(uid=\\5c\\28)))",
    "(cn=" + "x" * 300 + ")",
    "(&" + "(uid=a)" * 50 + ")",
]


def ldap3_encoded(
    message_id: int,
    search_filter: str,
    attributes: list[str],
    size_limit: int,
    controls: list[tuple[str, bool, bytes]] | None,
) -> bytes:
    """What ldap3 2.9.1 sends for Connection.search with the connector's options."""
    request = search_operation(
        "ou=people,dc=example,dc=com", search_filter, ldap3.SUBTREE, ldap3.DEREF_ALWAYS,
        attributes, size_limit, 0, False, False, True, None, validator=None, check_names=False,
    )  # fmt: skip
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    built = build_controls_list(controls)
    if built is not None:
        message["controls"] = built
    return bytes(encode(message))


@pytest.mark.parametrize("search_filter", FILTERS)
@pytest.mark.parametrize("attributes", [["uid", "cn", "entryUUID"], ["1.1"]])
@pytest.mark.parametrize("size_limit", [0, 2, 1000])
@pytest.mark.parametrize(
    "controls",
    [
        None,
        [(PAGED_RESULTS, False, ber.paged_results(100, b"cookie"))],
        [("1.3.6.1.1.13.2", True, b"\x30\x00")],
    ],
)
def test_a_search_request_is_encoded_byte_for_byte_as_ldap3_does(
    search_filter: str,
    attributes: list[str],
    size_limit: int,
    controls: list[tuple[str, bool, bytes]] | None,
) -> None:
    ours = ber.search_message(
        300, "ou=people,dc=example,dc=com", 2, search_filter, attributes,
        size_limit=size_limit, controls=controls or (),
    )  # fmt: skip
    assert ours == ldap3_encoded(300, search_filter, attributes, size_limit, controls)


@pytest.mark.parametrize(
    "search_filter",
    ["uid=a", "(uid=a", "(uid=a))", "(=a)", "(&)", "(uid=a\\zz)", "(uid=a\\)", "(u id=a)"],
)
def test_a_filter_it_does_not_take_is_refused(search_filter: str) -> None:
    with pytest.raises(ber.FilterSyntax):
        ber.encode_filter(search_filter)


@pytest.fixture
def people(
    slapd: SlapdServer, request: pytest.FixtureRequest
) -> Iterator[tuple[ldap3.Connection, str]]:
    tree = slapd.make_tree(f"ber-{request.node.name}")
    base = f"ou=people,{tree}"
    connection = slapd.connection()
    for n in range(7):
        connection.add(
            f"uid=p{n},{base}",
            ["inetOrgPerson"],
            {"uid": f"p{n}", "cn": f"Person {n}", "sn": "P", "mail": f"p{n}@example.com"},
        )
    yield connection, base
    connection.unbind()


def both(connection: ldap3.Connection, *args: object, **kwargs: object) -> tuple[object, object]:
    """(entries, result) of the same search sent by ldap3 and by `search`."""
    connection.search(args[0], args[1], args[2], attributes=args[3], **kwargs)  # type: ignore[arg-type]
    by_ldap3 = (
        [(e.dn, e.values("uid")) for e in entries_of(connection)],
        connection.result["result"],
    )
    search(connection, *args, **kwargs)  # type: ignore[arg-type]
    by_us = ([(e.dn, e.values("uid")) for e in entries_of(connection)], connection.result["result"])
    return by_ldap3, by_us


def test_a_search_answers_as_through_ldap3(people: tuple[ldap3.Connection, str]) -> None:
    connection, base = people
    for search_filter in ["(uid=p3)", "(|(uid=p1)(cn=Person 5))", "(cn=Person*)", "(uid=nobody)"]:
        ldap3_answer, our_answer = both(connection, base, search_filter, ldap3.SUBTREE, ["uid"])
        assert our_answer == ldap3_answer, search_filter
    # sizeLimitExceeded is a result, not an exception, either way
    ldap3_answer, our_answer = both(
        connection, base, "(uid=*)", ldap3.SUBTREE, ["uid"], size_limit=2
    )
    assert our_answer == ldap3_answer
    assert our_answer[1] == 4  # sizeLimitExceeded


def test_a_paged_search_goes_on_with_its_cookie(people: tuple[ldap3.Connection, str]) -> None:
    connection, base = people
    seen: list[str] = []
    cookie = None
    while True:
        search(
            connection, base, "(uid=*)", ldap3.SUBTREE, ["uid"], paged_size=3, paged_cookie=cookie
        )
        page = entries_of(connection)
        assert len(page) <= 3
        seen += [entry.values("uid")[0] for entry in page]
        cookie = paged_cookie(connection)
        if not cookie:
            break
    assert sorted(seen) == [f"p{n}" for n in range(7)]


def test_errors_are_ldap3s_own(people: tuple[ldap3.Connection, str]) -> None:
    connection, base = people
    with pytest.raises(ldap_errors.LDAPNoSuchObjectResult):
        search(connection, f"ou=nowhere,{base}", "(uid=*)", ldap3.SUBTREE, ["uid"])
    # A filter the encoder does not take is ldap3's to send, or to refuse.
    with pytest.raises(ldap_errors.LDAPInvalidFilterError):
        search(connection, base, "(uid=a", ldap3.SUBTREE, ["uid"])


ENTRIES = [
    {"objectClass": ["top", "person", "inetOrgPerson"], "uid": ["ada"], "cn": ["Ada L"]},
    {"objectClass": ["groupOfNames"], "cn": ["team"], "member": ["uid=a,dc=x", "uid=b,dc=x"]},
    {"objectClass": ["inetOrgPerson"], "cn": ["é" * 200], "jpegPhoto": [bytes(range(256)) * 3]},
]


@pytest.mark.parametrize("attributes", ENTRIES)
def test_an_add_request_is_encoded_byte_for_byte_as_ldap3_does(
    attributes: dict[str, list[str | bytes]],
) -> None:
    reference = LDAPMessage()
    reference["messageID"] = MessageID(7)
    request = add_operation("uid=ada,ou=people,dc=example,dc=com", attributes, True)
    reference["protocolOp"] = ProtocolOp().setComponentByName("addRequest", request)
    ours = ber.message(7, ber.add_request("uid=ada,ou=people,dc=example,dc=com", attributes))
    assert ours == bytes(encode(reference))


def test_an_entry_added_is_the_entry_ldap3_would_add(people: tuple[ldap3.Connection, str]) -> None:
    connection, base = people
    attributes: dict[str, list[str | bytes]] = {
        "objectClass": ["inetOrgPerson", "inetOrgPerson"],  # ldap3 sends a class once
        "uid": ["zoë"],
        "cn": ["Zoë (new)"],
        "sn": ["Z"],
        "jpegPhoto": [bytes(range(256))],
    }
    add_entry(connection, f"uid=zoë,{base}", attributes)
    assert connection.result["result"] == 0
    connection.search(base, "(uid=zoë)", ldap3.SUBTREE, attributes=["cn", "jpegPhoto"])
    [entry] = connection.response
    assert entry["raw_attributes"]["cn"] == ["Zoë (new)".encode()]
    assert entry["raw_attributes"]["jpegPhoto"] == [bytes(range(256))]
    with pytest.raises(ldap_errors.LDAPEntryAlreadyExistsResult):
        add_entry(connection, f"uid=zoë,{base}", attributes)
