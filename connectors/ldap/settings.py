"""The `[connector]` table of an LDAP connector, validated before anything connects."""

from __future__ import annotations

import os
import pathlib
import re
import urllib.parse
from typing import Literal

import pydantic


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
    """The DN to bind as; empty binds anonymously."""
    password_env: str | None = None
    """The environment variable holding the bind password."""
    start_tls: bool = False
    """Upgrade ldap:// connections with StartTLS (RFC 4513 §3) before binding."""
    ca_file: str | None = None
    """PEM file of the certificate authorities to trust; default: the system's."""
    verify_certificates: bool = True
    """Check the server's certificate and host name. Switch off only for a lab."""
    connect_timeout: float = pydantic.Field(default=5.0, gt=0)
    operation_timeout: float = pydantic.Field(default=30.0, gt=0)
    pool_size: int = pydantic.Field(default=8, gt=0, le=64)
    """Bound connections kept open, each used by one worker thread at a time."""
    retry_after: int = pydantic.Field(default=5, gt=0)
    """Seconds a client is told to wait (Retry-After) when the directory is unreachable."""

    @pydantic.field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
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

    @pydantic.field_validator("password_env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @pydantic.model_validator(mode="after")
    def _check_together(self) -> LdapSettings:
        if self.bind_dn and self.password_env is None:
            raise ValueError("bind_dn needs password_env, the variable holding its password")
        if self.start_tls and any(url.startswith("ldaps://") for url in self.urls):
            raise ValueError("start_tls applies to ldap:// URLs; ldaps:// is already TLS")
        if self.ca_file is not None and not pathlib.Path(self.ca_file).is_file():
            raise ValueError(f"ca_file {self.ca_file!r} is not a readable file")
        return self

    def password(self) -> str:
        """The bind password from the environment; KeyError names the missing variable."""
        if self.password_env is None:
            return ""
        value = os.environ.get(self.password_env)
        if value is None:
            raise KeyError(self.password_env)
        return value
