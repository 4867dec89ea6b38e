"""What a filter finds on the sql-hr-table preset's `hr_staff` agrees with what a client
reads: the values stored in `mail_aliases` (split = ","), and the presence (`pr`, RFC 7644
§3.4.2.2) of attributes whose stored value can read as no value. Rows the HR system wrote
itself are inserted directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hr_table import execute, rows, user
from scim_client import Scim, write_config
from served import serve_config


@pytest.fixture
async def scim(hr_url: str, tmp_path: Path, aiohttp_client: Any) -> Scim:
    config = write_config(tmp_path, hr_url, mapping="sql-hr-table")
    return await serve_config(config, aiohttp_client, None)


async def found(scim: Scim, text: str) -> set[str]:
    answer = await scim.get(f"/Users?filter={quote(text)}")
    assert answer.status == 200, answer.body
    return {each["userName"] for each in answer.body["Resources"]}


async def test_an_address_sent_with_spaces_is_stored_as_shown_and_found(
    scim: Scim, hr_url: str
) -> None:
    created = await scim.create_user("cat")
    sent = [{"value": " cat@x.com"}, {"value": "cat2@x.com "}, {"value": "  "}]
    answer = await scim.put(f"/Users/{created['id']}", user("cat", emails=sent))
    assert answer.status == 200, answer.body
    [row] = await rows(hr_url, "SELECT mail_aliases FROM hr_staff")
    assert row.mail_aliases == "cat@x.com,cat2@x.com"
    shown = await scim.get(f"/Users/{created['id']}")
    assert shown.body["emails"] == [
        {"value": "cat@x.com", "type": "work", "primary": True},  # the preset's `first`
        {"value": "cat2@x.com"},
    ]
    assert await found(scim, 'emails.value eq "cat@x.com"') == {"cat"}
    assert await found(scim, 'emails eq "cat2@x.com"') == {"cat"}


async def test_present_matches_only_what_a_client_reads_as_a_value(scim: Scim, hr_url: str) -> None:
    await scim.create_user("shown", emails=[{"value": "shown@corp.test"}], active=False)
    # LOA (leave of absence) is no code the preset maps: such a row reads without
    # `active`. Separators alone read as no address.
    await execute(
        hr_url,
        "INSERT INTO hr_staff (employee_id, login, status_code, mail_aliases) VALUES "
        "('e1', 'leave', 'LOA', ','), ('e2', 'listed', 'ACT', ', ,'), "
        "('e3', 'mailed', NULL, ' ,b@corp.test')",
    )
    listed = await scim.get("/Users?filter=" + quote('userName eq "leave"'))
    assert "active" not in listed.body["Resources"][0]
    assert "emails" not in listed.body["Resources"][0]
    assert await found(scim, "active pr") == {"shown", "listed"}
    assert await found(scim, "not (active pr)") == {"leave", "mailed"}
    assert await found(scim, "emails pr") == {"shown", "mailed"}
    assert await found(scim, "not (emails pr)") == {"leave", "listed"}
    assert await found(scim, "emails.value pr") == {"shown", "mailed"}
    assert await found(scim, 'emails[not (value eq "x@corp.test")]') == {"shown", "mailed"}


async def test_the_work_address_is_the_first_one_for_filters_too(scim: Scim, hr_url: str) -> None:
    """Entra matches a user by `emails[type eq "work"].value eq "x"`. The preset reads the
    first address of `mail_aliases` as the work one (`first`), and the filter was refused
    (400 invalidFilter): it finds exactly the users whose first address is x."""
    work = "x@corp.test"
    await scim.create_user(
        "first", emails=[{"value": work, "type": "work"}, {"value": "y@corp.test"}]
    )
    await scim.create_user(
        "later", emails=[{"value": "y@corp.test", "type": "work"}, {"value": work}]
    )
    await execute(
        hr_url,
        "INSERT INTO hr_staff (employee_id, login, status_code, mail_aliases) VALUES "
        "('e1', 'blank-before', 'ACT', ' ,x@corp.test'), "
        "('e2', 'longer', 'ACT', 'x@corp.test.uk'), "
        "('e3', 'alone', 'ACT', 'x@corp.test'), ('e4', 'none', 'ACT', NULL)",
    )
    shown = await scim.get("/Users?filter=" + quote('userName eq "blank-before"'))
    assert shown.body["Resources"][0]["emails"] == [
        {"value": work, "type": "work", "primary": True}
    ]
    first = {"first", "blank-before", "alone"}
    assert await found(scim, f'emails[type eq "work"].value eq "{work}"') == first
    assert await found(scim, f'emails[type eq "work" and value eq "{work.upper()}"]') == first
    assert await found(scim, f'emails[primary eq true and value eq "{work}"]') == first
    assert await found(scim, f'emails[value eq "{work}"]') == first | {"later"}
    assert await found(scim, f'emails[type eq "work" and value ne "{work}"]') == {"later", "longer"}
    assert await found(scim, 'emails[type eq "work"]') == first | {"later", "longer"}
    assert await found(scim, 'emails[type eq "home"]') == set()
    refused = await scim.get("/Users?filter=" + quote('emails[not (type eq "work")]'))
    assert (refused.status, refused.body["scimType"]) == (400, "invalidFilter"), refused.body
    assert "stored without a type" in refused.body["detail"]
