"""HTTP-level edges a black-box probe found: paths, repeated headers and parameters, strict
JSON, content negotiation and the Host header. All HTTP, so SQLite alone runs them."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from direct import SqlDirect
from multidict import CIMultiDict
from scim_client import BASE, TOKEN, USER_SCHEMA, Scim, write_config
from served import serve, serve_config, spawn_serve

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
async def scim(
    sqlite_direct: SqlDirect, tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> Scim:
    return await serve(sqlite_direct, tmp_path, aiohttp_client, monkeypatch)


@dataclass
class ServedProcess:
    """A `scim-bridge serve` process on a SQLite file of its own, for what only a served
    process shows: the runner's own answers, what it logs."""

    url: str
    log: Path
    process: Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def served_process(tmp_path: Path) -> Iterator[ServedProcess]:
    config = write_config(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path}/served.db", extra="create_tables = true"
    )
    log = tmp_path / "serve.log"
    process, url = spawn_serve(config, log, {})
    served = ServedProcess(url, log, process)
    try:
        yield served
    finally:
        served.stop()


def user(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}


def assert_error(body: Any, status: int, scim_type: str | None = None) -> None:
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type


async def raw_request(scim: Scim, head: str, body: bytes = b"") -> tuple[int, bytes, bytes]:
    """Sends `head` (CRLF added) as written, and reads until the server closes the
    connection: (status, header block, body)."""
    server = scim.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(head.replace("\n", "\r\n").encode() + body)
    await writer.drain()
    received = await reader.read()
    writer.close()
    await writer.wait_closed()
    headers, _, content = received.partition(b"\r\n\r\n")
    return int(headers.split(b" ", 2)[1]), headers, content


# --- A: a run of slashes is one slash, a trailing slash is ignored --------------------


async def test_doubled_and_trailing_slashes_reach_the_endpoint(scim: Scim) -> None:
    # What OneLogin sends when its "SCIM Base URL" was pasted with a trailing slash.
    created = await scim.post("//Users", user("jane"))
    assert created.status == 201, created.body
    assert created.headers["Location"].endswith(f"{BASE}/Users/{created.body['id']}")
    user_id = created.body["id"]
    for path in ("//Users", "/Users/", "//Users/", f"/Users/{user_id}/", f"//Users//{user_id}"):
        answer = await scim.get(path)
        assert answer.status == 200, (path, answer.body)
    answer = await scim.patch(
        f"//Users/{user_id}/", {"op": "replace", "path": "title", "value": "Engineer"}
    )
    assert answer.status == 200, answer.body
    assert (await scim.get("/ServiceProviderConfig/")).status == 200
    assert (await scim.delete(f"/Users//{user_id}//")).status == 204


async def test_a_tidied_path_that_names_nothing_is_still_404(scim: Scim) -> None:
    answer = await scim.get("//Nothing/")
    assert answer.status == 404
    assert_error(answer.body, 404)


# --- B: repeated Authorization headers and query parameters ---------------------------


@pytest.mark.parametrize("first", [f"Bearer {TOKEN}", "Bearer wrong-token-0123456789"])
async def test_two_authorization_headers_are_refused(scim: Scim, first: str) -> None:
    other = "Bearer wrong-token-0123456789" if first.endswith(TOKEN) else f"Bearer {TOKEN}"
    headers = CIMultiDict([("Authorization", first), ("Authorization", other)])
    response = await scim.client.get(f"{BASE}/Users", headers=headers)
    assert response.status == 400
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]
    assert_error(json.loads(await response.text()), 400)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ('filter=userName eq "a"&filter=userName eq "b"', "filter"),
        ("count=1&count=5", "count"),
        ("count=1&Count=5", "count"),
        ("startIndex=1&startindex=", "startIndex"),
        ("attributes=userName&attributes=id", "attributes"),
    ],
)
async def test_a_repeated_query_parameter_is_refused(scim: Scim, query: str, named: str) -> None:
    answer = await scim.get(f"/Users?{query}")
    assert answer.status == 400, answer.body
    assert_error(answer.body, 400, "invalidValue")
    assert named in answer.body["detail"]


async def test_a_repeated_parameter_on_one_resource_is_refused(scim: Scim) -> None:
    jane = await scim.create_user("jane")
    answer = await scim.get(f"/Users/{jane['id']}?attributes=userName&attributes=title")
    assert answer.status == 400
    assert_error(answer.body, 400, "invalidValue")


async def test_parameters_given_once_and_unknown_repeats_are_fine(scim: Scim) -> None:
    await scim.create_user("jane")
    answer = await scim.get("/Users?count=1&startIndex=1&trace=1&trace=2")
    assert answer.status == 200, answer.body
    assert answer.body["itemsPerPage"] == 1


# --- C: discovery endpoints refuse a filter -------------------------------------------


@pytest.mark.parametrize(
    "path", ["/Schemas", "/ResourceTypes", "/ServiceProviderConfig", "/ResourceTypes/User"]
)
async def test_a_filter_on_discovery_is_forbidden(scim: Scim, path: str) -> None:
    answer = await scim.get(f'{path}?filter=id eq "User"')
    assert answer.status == 403, answer.body
    assert_error(answer.body, 403)
    assert (await scim.get(path)).status == 200


# --- E: strict JSON -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"userName":"x","foo":NaN}',
        b'{"userName":"x","foo":Infinity}',
        b'{"userName":"x","foo":-Infinity}',
        b'{"userName":"x","foo":1e999999}',
        b'{"userName":"x","foo":-1e999999}',
        b'{"userName":"x","userName":"y"}',
        b'{"userName":"x","name":{"givenName":"a","givenName":"b"}}',
    ],
)
async def test_json_that_rfc_8259_refuses_is_invalid_syntax(
    scim: Scim, sqlite_direct: SqlDirect, body: bytes
) -> None:
    answer = await scim.post("/Users", None, raw=body)
    assert answer.status == 400, answer.body
    assert_error(answer.body, 400, "invalidSyntax")
    assert await sqlite_direct.user("x") is None


async def test_finite_numbers_and_same_names_in_two_objects_are_fine(scim: Scim) -> None:
    body = b'{"userName":"x","foo":1.5e3,"name":{"givenName":"a"},"meta":{"givenName":"b"}}'
    answer = await scim.post("/Users", None, raw=body)
    assert answer.status == 201, answer.body


# --- F: content negotiation -----------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_of_another_media_type_is_415(scim: Scim, content_type: str) -> None:
    answer = await scim.post("/Users", user("x"), headers={"Content-Type": content_type})
    assert answer.status == 415, answer.body
    assert_error(answer.body, 415)


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-16", "windows-1252", "UTF-8"])
async def test_a_declared_charset_is_honoured(
    scim: Scim, sqlite_direct: SqlDirect, charset: str
) -> None:
    raw = json.dumps(user("josé"), ensure_ascii=False).encode(charset)
    headers = {"Content-Type": f"application/scim+json; charset={charset}"}
    answer = await scim.post("/Users", None, raw=raw, headers=headers)
    assert answer.status == 201, answer.body
    assert answer.body["userName"] == "josé"
    assert await sqlite_direct.user("josé") is not None


async def test_utf_16_without_a_byte_order_mark_is_read_in_its_order(scim: Scim) -> None:
    raw = json.dumps(user("josé"), ensure_ascii=False).encode("utf-16-be")
    headers = {"Content-Type": "application/scim+json; charset=utf-16"}
    answer = await scim.post("/Users", None, raw=raw, headers=headers)
    assert answer.status == 201, answer.body
    assert answer.body["userName"] == "josé"


@pytest.mark.parametrize(
    "charset",
    ["x-no-such-charset", "base64", '""', "unicode_escape", "raw_unicode_escape", "utf-7"],
)
async def test_an_unknown_charset_is_415(scim: Scim, charset: str) -> None:
    # The escape codecs spell any code point, a lone surrogate included (`\\ud800` read
    # by unicode_escape reached the database and failed there with a 500).
    headers = {"Content-Type": f"application/scim+json; charset={charset}"}
    raw = b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x\\ud800y"}'
    answer = await scim.post("/Users", None, raw=raw, headers=headers)
    assert answer.status == 415, answer.body
    assert_error(answer.body, 415)


async def test_bytes_not_in_the_declared_charset_are_invalid_syntax(scim: Scim) -> None:
    raw = json.dumps(user("josé"), ensure_ascii=False).encode("latin-1")
    answer = await scim.post("/Users", None, raw=raw)  # no charset: UTF-8
    assert answer.status == 400, answer.body
    assert_error(answer.body, 400, "invalidSyntax")


@pytest.mark.parametrize("coding", ["gzip", "deflate", "GZIP", "identity"])
async def test_a_body_in_a_content_coding_it_decodes_is_read(
    scim: Scim, sqlite_direct: SqlDirect, coding: str
) -> None:
    raw = json.dumps(user(f"coded-{coding}")).encode()
    if coding.lower() == "gzip":
        raw = gzip.compress(raw)
    elif coding == "deflate":
        raw = zlib.compress(raw)
    answer = await scim.post("/Users", None, raw=raw, headers={"Content-Encoding": coding})
    assert answer.status == 201, answer.body
    assert await sqlite_direct.user(f"coded-{coding}") is not None


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_body_that_is_not_what_its_content_coding_says_is_invalid_syntax(
    scim: Scim, sqlite_direct: SqlDirect, coding: str
) -> None:
    # aiohttp fails to decode it while the body is read: that was answered 500.
    raw = json.dumps(user("not-coded")).encode()
    answer = await scim.post("/Users", None, raw=raw, headers={"Content-Encoding": coding})
    assert answer.status == 400, answer.body
    assert_error(answer.body, 400, "invalidSyntax")
    assert coding in answer.body["detail"]
    assert await sqlite_direct.user("not-coded") is None


@pytest.mark.parametrize("coding", ["bogus", "compress", "gzip, gzip"])
async def test_a_content_coding_it_does_not_decode_is_415_naming_those_it_does(
    scim: Scim, sqlite_direct: SqlDirect, coding: str
) -> None:
    # aiohttp passes a coding it does not know as it is: the body was read as JSON.
    raw = json.dumps(user("unknown-coding")).encode()
    answer = await scim.post("/Users", None, raw=raw, headers={"Content-Encoding": coding})
    assert answer.status == 415, answer.body
    assert_error(answer.body, 415)
    assert answer.headers["Accept-Encoding"] == "gzip, deflate"  # RFC 9110 §15.5.16
    assert await sqlite_direct.user("unknown-coding") is None


def test_a_client_gone_before_its_body_arrived_is_no_error_of_the_service(
    served_process: ServedProcess,
) -> None:
    # A client that closes its connection while its body is still expected: the read of
    # the body ends with ConnectionResetError, which was logged as the service's own
    # failure (ERROR, a traceback, an access-log line saying 500).
    url, log = served_process.url, served_process.log
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(
            f"POST {BASE}/Users HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}"
            "\r\nContent-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n"
            '{"userName": "cut'.encode()
        )
        time.sleep(0.3)
    for _ in range(100):  # the access log says the request has ended
        if "POST /scim/v2/Users" in log.read_text():
            break
        time.sleep(0.05)
    assert "POST /scim/v2/Users" in log.read_text()  # it ended, and was answered
    answer = httpx2.get(f"{url}/Users", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.json()["totalResults"] == 0
    served_process.stop()  # what it logs while stopping is read too
    written = log.read_text()
    assert "Traceback" not in written
    assert "ERROR" not in written
    assert '"POST /scim/v2/Users" 500' not in written


@pytest.mark.parametrize("coding", ["br", "zstd"])
def test_a_coding_aiohttp_parses_but_cannot_decode_is_415_too(
    served_process: ServedProcess, coding: str
) -> None:
    # aiohttp's parser takes `br` and `zstd` on, then fails without their modules before
    # any handler runs: that was "not valid HTTP/1.1" (400). A served process, since the
    # runner's own error answer is what is tested.
    url = served_process.url
    answer = httpx2.post(
        f"{url}/Users",
        content=json.dumps(user("br-user")).encode(),
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/scim+json",
            "Content-Encoding": coding,
        },
    )
    assert answer.status_code == 415, answer.text
    assert_error(answer.json(), 415)
    assert answer.headers["Accept-Encoding"] == "gzip, deflate"
    listed = httpx2.get(f"{url}/Users", headers={"Authorization": f"Bearer {TOKEN}"})
    assert listed.json()["totalResults"] == 0


@pytest.mark.parametrize(
    "accept", ["application/xml", "text/html, application/xhtml+xml", "application/scim+json;q=0"]
)
async def test_nothing_acceptable_is_406_and_nothing_is_done(
    scim: Scim, sqlite_direct: SqlDirect, accept: str
) -> None:
    answer = await scim.post("/Users", user("x"), headers={"Accept": accept})
    assert answer.status == 406, answer.body
    assert_error(answer.body, 406)
    assert await sqlite_direct.user("x") is None


@pytest.mark.parametrize(
    "accept",
    [
        "application/scim+json",
        "application/json",
        "Application/JSON; charset=utf-8",
        "*/*",
        "application/*",
        "application/xml, */*;q=0.1",
        "text/html;q=0.9, application/scim+json;q=0.5",
    ],
)
async def test_json_or_any_type_is_acceptable(scim: Scim, accept: str) -> None:
    answer = await scim.get("/Users", headers={"Accept": accept})
    assert answer.status == 200, answer.body


async def test_no_accept_header_is_fine(scim: Scim) -> None:
    response = await scim.client.get(
        f"{BASE}/Users", headers={"Authorization": f"Bearer {TOKEN}"}, skip_auto_headers={"Accept"}
    )
    assert response.status == 200


# --- D: the Host header, when URLs are built from it ----------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example/path?x=",
        'a"b.example',
        "",
        "a b.example",
        "idm.example.com:0",
        "idm.example.com:65536",
        "idm.example.com:80:80",
        "[::1",
        "[not-an-address]:8080",
        "user@idm.example.com",
    ],
)
async def test_an_invalid_host_is_400(scim: Scim, host: str) -> None:
    status, _, content = await raw_request(
        scim,
        f"GET {BASE}/ServiceProviderConfig HTTP/1.1\nHost: {host}\n"
        f"Authorization: Bearer {TOKEN}\nConnection: close\n\n",
    )
    assert status == 400, content
    assert_error(json.loads(content), 400)


@pytest.mark.parametrize(
    "host", ["idm.example.com", "IDM.example.com:8443", "192.0.2.1:8080", "[2001:db8::1]:8443"]
)
async def test_a_valid_host_names_the_service(scim: Scim, host: str) -> None:
    created = await scim.post("/Users", user("jane"), headers={"Host": host})
    assert created.status == 201, created.body
    location = f"http://{host}{BASE}/Users/{created.body['id']}"
    assert created.headers["Location"] == location
    assert created.body["meta"]["location"] == location


async def test_an_empty_port_is_the_default_one(scim: Scim) -> None:
    # RFC 3986 §3.2.3: `host:` names the scheme's default port; the URLs leave it out.
    created = await scim.post("/Users", user("jane"), headers={"Host": "idm.example.com:"})
    assert created.status == 201, created.body
    assert created.headers["Location"].startswith(f"http://idm.example.com{BASE}/Users/")


async def test_http_1_0_without_host_names_the_listening_address(scim: Scim) -> None:
    server = scim.client.server
    status, _, content = await raw_request(
        scim, f"GET {BASE}/ServiceProviderConfig HTTP/1.0\nAuthorization: Bearer {TOKEN}\n\n"
    )
    assert status == 200, content
    location = json.loads(content)["meta"]["location"]
    assert location == f"http://{server.host}:{server.port}{BASE}/ServiceProviderConfig"


async def test_http_1_1_without_host_or_with_two_is_400(scim: Scim) -> None:
    # aiohttp's parser refuses both (RFC 7230 §5.4), before the bridge: a guard of that.
    auth = f"Authorization: Bearer {TOKEN}\nConnection: close\n"
    path = f"{BASE}/ServiceProviderConfig"
    status, _, content = await raw_request(scim, f"GET {path} HTTP/1.1\n{auth}\n")
    assert status == 400, content
    status, _, content = await raw_request(
        scim, f"GET {path} HTTP/1.1\nHost: a.example\nHost: b.example\n{auth}\n"
    )
    assert status == 400, content


async def test_an_absolute_target_does_not_pick_another_host(scim: Scim) -> None:
    auth = f"Authorization: Bearer {TOKEN}\nConnection: close\n"
    path = f"{BASE}/ServiceProviderConfig"
    status, _, content = await raw_request(
        scim, f"GET http://evil.example{path} HTTP/1.1\nHost: idm.example.com\n{auth}\n"
    )
    assert status == 400, content
    status, _, content = await raw_request(
        scim, f"GET http://IDM.example.com:80{path} HTTP/1.1\nHost: idm.example.com\n{auth}\n"
    )
    assert status == 200, content
    assert json.loads(content)["meta"]["location"] == f"http://idm.example.com{path}"


async def test_with_public_url_the_host_is_not_used(
    sqlite_direct: SqlDirect, tmp_path: Path, aiohttp_client: Any
) -> None:
    config = write_config(tmp_path, sqlite_direct.url)
    text = config.read_text().replace(
        "[server]\n", '[server]\npublic_url = "https://idm.example.com"\n'
    )
    config.write_text(text)
    scim = await serve_config(config, aiohttp_client, sqlite_direct)
    status, _, content = await raw_request(
        scim,
        f'GET {BASE}/ServiceProviderConfig HTTP/1.1\nHost: a"b.example\n'
        f"Authorization: Bearer {TOKEN}\nConnection: close\n\n",
    )
    assert status == 200, content
    location = json.loads(content)["meta"]["location"]
    assert location == f"https://idm.example.com{BASE}/ServiceProviderConfig"


# --- G: methods ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/Users/.search", "/Groups/.search", "/.search"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_search_endpoints_take_post_alone(scim: Scim, path: str, method: str) -> None:
    # GET /Users/.search read a user whose id would be ".search": 404.
    answer = await scim.request(method, path, {} if method in ("PUT", "PATCH") else None)
    assert answer.status == 405, answer.body
    assert_error(answer.body, 405)
    assert answer.headers["Allow"] == "POST"
    assert (await scim.post(path, {})).status == 200


async def test_a_method_an_endpoint_lacks_is_405_naming_those_it_has(scim: Scim) -> None:
    answer = await scim.delete("/Users")
    assert answer.status == 405, answer.body
    assert_error(answer.body, 405)
    assert set(answer.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize("value", ["٣", "1_0", "1.5", "", "x", "9" * 5000])
@pytest.mark.parametrize("parameter", ["startIndex", "count"])
async def test_paging_numbers_are_ascii_integers(scim: Scim, parameter: str, value: str) -> None:
    # int() reads other scripts' digits and underscores: "٣" was taken as 3.
    answer = await scim.get(f"/Users?{parameter}={quote(value)}")
    if value == "":
        assert answer.status == 200  # an empty parameter is one not given
        return
    assert answer.status == 400, answer.body
    assert_error(answer.body, 400, "invalidValue")
    assert parameter in answer.body["detail"]


@pytest.mark.parametrize("value", ["3", "+3", " 3"])
async def test_paging_numbers_may_carry_a_sign_or_spaces(scim: Scim, value: str) -> None:
    answer = await scim.get(f"/Users?startIndex={quote(value)}")
    assert answer.status == 200, answer.body
    assert answer.body["startIndex"] == 3


def raw_exchange(url: str, head: str) -> tuple[int, bytes]:
    """Sends `head` (a request without a body, CRLF added) to a served process as
    written; the status and the body of its answer."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(head.replace("\n", "\r\n").encode() + b"\r\n\r\n")
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    headers, _, body = received.partition(b"\r\n\r\n")
    return int(headers.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    ("head", "status", "detail"),
    [
        # RFC 9110 §9.1: a method the service does not recognise is 501, not 400.
        (f"BREW {BASE}/Users HTTP/1.1\nHost: x", 501, "method"),
        # RFC 9112 §3: a target longer than the service reads is 414.
        (f"GET {BASE}/Users?filter={'x' * 70_000} HTTP/1.1\nHost: x", 414, "request line"),
        # RFC 6585 §5: a header field longer than it reads is 431.
        (f"GET {BASE}/Users HTTP/1.1\nHost: x\nX-Long: {'y' * 10_000}", 431, "header field"),
        # Still 400: the request line is not HTTP at all.
        (f"GET {BASE}/Users HTTQ/1.1\nHost: x", 400, "not valid HTTP"),
    ],
)
def test_what_the_parser_refuses_gets_the_status_that_names_it(
    served_process: ServedProcess, head: str, status: int, detail: str
) -> None:
    answered, body = raw_exchange(served_process.url, f"{head}\nAuthorization: Bearer {TOKEN}")
    assert answered == status, body
    error = json.loads(body)
    assert_error(error, status)
    assert detail in error["detail"]
    assert "x" * 100 not in body.decode()
    assert "y" * 100 not in body.decode()


@pytest.mark.parametrize("member", [{"value": None}, {"value": ""}, {"display": "Ann"}])
async def test_a_member_without_a_value_is_refused_not_dropped(
    scim: Scim, sqlite_direct: SqlDirect, member: dict[str, Any]
) -> None:
    ann = await scim.create_user("ann")
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Nulls",
        "members": [{"value": ann["id"]}, member],
    }
    answer = await scim.post("/Groups", body)
    assert answer.status == 400, answer.body
    assert_error(answer.body, 400, "invalidValue")
    listed = await scim.get('/Groups?filter=displayName eq "Nulls"')
    assert listed.body["totalResults"] == 0
