"""TLS to MySQL and MariaDB, asked for by a URL's `ssl_*` options: required and verified.

SQLAlchemy gathers `ssl_ca`, `ssl_capath`, `ssl_cert`, `ssl_key`, `ssl_cipher` and
`ssl_check_hostname` into one `ssl` dictionary, as PyMySQL reads it. aiomysql (0.3.2) takes
only an `ssl.SSLContext` there, and with anything else that is true it went on without TLS
when the server offered none, and failed with a TypeError when it did: a URL written to
protect the connection left it in clear text, silently. Here the dictionary becomes a
context that verifies the server's certificate (against `ssl_ca` or `ssl_capath`, else
the system's certificate authorities) and its host name (unless `ssl_check_hostname=false`),
and `TlsRequired` refuses a server that does not offer TLS before any credential is sent.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

import aiomysql
from pymysql.constants import CLIENT, CR
from pymysql.err import OperationalError

NO_TLS = "the server offers no TLS, which the URL's ssl_ options require"
"""Why a server without TLS is refused: the operator's line at start-up (never a client's)."""


def tls_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """The context for SQLAlchemy's `ssl` dictionary; ValueError names the option at fault
    (never its value: the URL that holds it may hold a password too)."""
    ca, capath = options.get("ca"), options.get("capath")
    if capath is not None and not os.path.isdir(capath):
        raise ValueError("ssl_capath: no such directory")
    try:
        context = ssl.create_default_context(cafile=ca, capath=capath)
    except FileNotFoundError:
        raise ValueError("ssl_ca: no such file") from None
    except (ssl.SSLError, OSError):
        option = "ssl_ca" if ca is not None else "ssl_capath"
        raise ValueError(f"{option}: cannot be read as PEM certificates") from None
    context.check_hostname = bool(options.get("check_hostname", True))
    cert, key = options.get("cert"), options.get("key")
    if key is not None and cert is None:
        raise ValueError("ssl_key: goes with ssl_cert, the client certificate it is the key of")
    if cert is not None:
        try:
            context.load_cert_chain(cert, keyfile=key)
        except FileNotFoundError:
            raise ValueError("ssl_cert or ssl_key: no such file") from None
        except (ssl.SSLError, OSError):
            raise ValueError(
                "ssl_cert and ssl_key: not a PEM client certificate and its private key"
            ) from None
    cipher = options.get("cipher")
    if cipher is not None:
        try:
            context.set_ciphers(str(cipher))
        except ssl.SSLError:
            raise ValueError("ssl_cipher: names no cipher OpenSSL offers") from None
    return context


class TlsRequired(aiomysql.Connection):  # type: ignore[misc]  # aiomysql is untyped
    """An aiomysql connection that stops before authenticating when the server offers no
    TLS (the greeting's capability flags say), instead of going on in clear text."""

    async def _request_authentication(self) -> None:
        if not self.server_capabilities & CLIENT.SSL:
            raise OperationalError(CR.CR_SSL_CONNECTION_ERROR, NO_TLS)
        await super()._request_authentication()
