"""The `[connector]` table of an LDAP connector, validated before anything connects."""

from __future__ import annotations

import os
import pathlib
import re
import ssl
import urllib.parse
from typing import Any, Literal

import pydantic

from connectors.base import variable_name
from connectors.ldap.dn import parsed as parsed_dn

MAX_TIMEOUT = 86_400.0
"""A day: the longest wait a timeout may ask for (`inf` is a mistake, not "forever")."""

MAX_RETRY_AFTER = 3600
"""An hour: a longer Retry-After makes a client give up rather than come back."""

_ATTRIBUTE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)*")
"""An RDN's attribute type: a name or an OID (RFC 4514 §3)."""


def _seconds(default: float) -> Any:
    return pydantic.Field(default=default, gt=0, le=MAX_TIMEOUT, allow_inf_nan=False)


_AD_LOGON_NAME = re.compile(r"[^\s@\\]+@[^\s@\\.][^\s@\\]*|[^\s@\\]+\\[^@\\]*[^\s@\\]")
"""A user principal name (`svc@corp.example.com`) or a down-level logon name (`CORP\\svc`):
what Active Directory takes in a simple bind besides a DN."""


def _is_dn(value: str) -> bool:
    """A DN of RFC 4514 (empty included), read leniently as the directory writes them."""
    try:
        rdns = parsed_dn(value)
    except ValueError:
        return False
    return all(_ATTRIBUTE_TYPE.fullmatch(attribute) for rdn in rdns for attribute, _ in rdn)


class LdapSettings(pydantic.BaseModel):
    """A connection to an existing directory (OpenLDAP, Active Directory, 389 DS).

    The password never appears in the file: `password_env` names the environment
    variable that holds it, read when the connector opens.
    """

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal["ldap"]
    urls: list[str] = pydantic.Field(min_length=1)
    """ldap:// or ldaps:// server URLs, tried in order: the next one when one is down."""
    base_dn: str = ""
    """Appended to each mapping `object` (`ou=people` becomes `ou=people,<base_dn>`), so a
    preset fits any tree. Empty: the mapping's objects are full DNs."""
    bind_dn: str = ""
    """The DN to bind as; empty binds anonymously. Active Directory also takes a user
    principal name (`svc-scim@corp.example.com`) or a down-level logon name
    (`CORP\\svc-scim`) in a simple bind (MS-ADTS 5.1.1.1.1)."""
    password_env: str | None = None
    """The environment variable holding the bind password."""
    start_tls: bool = False
    """Upgrade ldap:// connections with StartTLS (RFC 4513 §3) before binding."""
    ca_file: str | None = None
    """PEM file of the certificate authorities to trust; default: the system's."""
    verify_certificates: bool = True
    """Check the server's certificate and host name. Switch off only for a lab."""
    connect_timeout: float = _seconds(5.0)
    operation_timeout: float = _seconds(30.0)
    pool_size: int = pydantic.Field(default=8, gt=0, le=64)
    """Bound connections kept open, each used by one worker thread at a time."""
    retry_after: int = pydantic.Field(default=5, gt=0, le=MAX_RETRY_AFTER)
    """Seconds a client is told to wait (Retry-After) when the directory is unreachable."""

    @pydantic.field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if "@" in url:
                # Only what follows the last @ is echoed: the rest may hold a password.
                scheme, separator, rest = url.partition("://")
                host = (rest if separator else url).rpartition("@")[2]
                server = f"{scheme}://{host}" if scheme in ("ldap", "ldaps") else host
                raise ValueError(
                    f"{server!r} is given with a user name or password (user:password@), "
                    "which an LDAP URL cannot carry: give the account as bind_dn and its "
                    "password in the variable password_env names"
                )
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
                raise ValueError(f"{url!r} is not an ldap:// or ldaps:// URL")
            if parts.path not in ("", "/") or parts.query:
                raise ValueError(f"{url!r}: give the server only, without a DN or query")
            try:
                parts.port  # noqa: B018 - raises on a malformed port
            except ValueError:
                raise ValueError(f"{url!r} has an invalid port") from None
        return urls

    @pydantic.field_validator("bind_dn")
    @classmethod
    def _check_bind_name(cls, value: str) -> str:
        if not _is_dn(value) and not ("=" not in value and _AD_LOGON_NAME.fullmatch(value)):
            raise ValueError(
                "is not a DN such as cn=scim,dc=example,dc=org (RFC 4514), nor an Active "
                "Directory logon name (svc-scim@corp.example.com, CORP\\svc-scim)"
            )
        return value

    @pydantic.field_validator("base_dn")
    @classmethod
    def _check_dn(cls, value: str) -> str:
        if not _is_dn(value):
            # Not echoed: a DN is no secret, but the file holds it for the admin to read.
            raise ValueError("is not a DN such as dc=example,dc=org (RFC 4514)")
        return value

    @pydantic.field_validator("password_env")
    @classmethod
    def _check_env(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        if value is None:
            return None
        variable_name(value)  # what is not a name is never quoted: it may be the password
        if info.data.get("bind_dn") == "":
            raise ValueError("has no effect without bind_dn: an anonymous bind sends no password")
        return value

    @pydantic.field_validator("ca_file")
    @classmethod
    def _check_ca_file(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        if value is None:
            return None
        _needs_tls(info)
        if not pathlib.Path(value).is_file():
            raise ValueError(f"{value!r} is not a readable file")
        try:
            ssl.create_default_context(cafile=value)
        except (ssl.SSLError, OSError):
            raise ValueError(f"{value!r} holds no PEM certificate") from None
        return value

    @pydantic.field_validator("verify_certificates")
    @classmethod
    def _check_verify(cls, value: bool, info: pydantic.ValidationInfo) -> bool:
        if not value:
            _needs_tls(info)
        return value

    @pydantic.model_validator(mode="after")
    def _check_together(self) -> LdapSettings:
        if self.bind_dn and self.password_env is None:
            raise ValueError("bind_dn needs password_env, the variable holding its password")
        if self.start_tls and any(url.startswith("ldaps://") for url in self.urls):
            raise ValueError("start_tls applies to ldap:// URLs; ldaps:// is already TLS")
        return self

    def password_problem(self) -> str | None:
        """Why the bind password cannot be read from the environment, if it cannot."""
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            return f"environment variable {self.password_env} is not set"
        if not value.strip():
            return f"environment variable {self.password_env} is empty"
        return None

    def password(self) -> str:
        """The bind password from the environment; KeyError names the missing variable.

        As a token is: surrounding white space (a file's trailing newline) is no part of it.
        """
        if self.password_env is None:
            return ""
        value = os.environ.get(self.password_env)
        if value is None:
            raise KeyError(self.password_env)
        return value.strip()


def _needs_tls(info: pydantic.ValidationInfo) -> None:
    """Refuse a TLS option when no connection uses TLS: the admin believes it protected."""
    urls = info.data.get("urls")
    if urls is None or info.data.get("start_tls"):
        return
    if not any(url.startswith("ldaps://") for url in urls):
        raise ValueError(
            "has no effect: every URL is ldap:// without start_tls, so nothing is "
            "encrypted; use ldaps:// or start_tls = true"
        )
