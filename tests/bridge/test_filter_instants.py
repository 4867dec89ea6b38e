"""dateTime filters compare instants (RFC 7644 §3.4.2.2) on every backend, whatever the
operand's zone or precision (RFC 7643 §2.3.5 sets no bound on either)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from scim_client import Scim


async def matches(scim: Scim, filter_: str) -> set[str]:
    answer = await scim.get(f"/Users?filter={quote(filter_, safe='')}")
    assert answer.status == 200, (filter_, answer.body)
    return {resource["id"] for resource in answer.body["Resources"]}


async def test_instants_past_the_last_or_before_the_first_one_held_are_valid_operands(
    scim: Scim,
) -> None:
    ada = (await scim.create_user("ada"))["id"]
    for field in ("meta.created", "meta.lastModified"):
        late, early = '"9999-12-31T23:59:59-05:00"', '"0001-01-01T00:00:00+05:00"'
        assert await matches(scim, f"{field} gt {late}") == set()
        assert await matches(scim, f"{field} eq {late}") == set()
        assert await matches(scim, f"{field} lt {late}") == {ada}
        assert await matches(scim, f"{field} lt {early}") == set()
        assert await matches(scim, f"{field} ge {early}") == {ada}
        assert await matches(scim, f"{field} ne {early}") == {ada}


async def test_an_operand_between_two_microseconds_compares_as_the_instant_it_names(
    scim: Scim,
) -> None:
    ada = await scim.create_user("ada")
    created = datetime.fromisoformat(ada["meta"]["created"])

    def spelt(moment: datetime, more: str) -> str:
        """`moment` with digits past its microseconds: an instant just after it."""
        return f'"{moment:%Y-%m-%dT%H:%M:%S.%f}{more}Z"'

    just_after = spelt(created, "1")  # 100 ns after the stored instant
    just_before = spelt(created - timedelta(microseconds=1), "9")  # 100 ns before it
    expected = {
        f"meta.created lt {just_after}": True,
        f"meta.created le {just_after}": True,
        f"meta.created eq {just_after}": False,
        f"meta.created ne {just_after}": True,
        f"meta.created ge {just_after}": False,
        f"meta.created gt {just_after}": False,
        f"meta.created gt {just_before}": True,
        f"meta.created ge {just_before}": True,
        f"meta.created lt {just_before}": False,
        f"meta.created le {just_before}": False,
        f"meta.created eq {spelt(created, '000')}": True,  # zeros name the same instant
    }
    found = {
        filter_: ada["id"] in await matches(scim, f'id eq "{ada["id"]}" and {filter_}')
        for filter_ in expected
    }
    assert found == expected
