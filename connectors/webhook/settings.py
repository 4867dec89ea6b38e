"""The tables of the configuration that concern events: `[webhooks.NAME]`, `[events]`, and a
`[connector]` of type "webhook"."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from connectors.base import variable_name
from connectors.sql.settings import MAX_TIMEOUT, SqlSettings, parse_url
from connectors.webhook.signing import secret_key

DEFAULT_STORE = "sqlite+aiosqlite:///scim-bridge.db"

MAX_AGE = 365 * 86_400.0
"""A year: the longest an event may wait for its receiver."""

_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def parse_http_url(url: str) -> urllib.parse.SplitResult:
    """An http:// or https:// URL with a host name or address and a port in range.

    ValueError says what is wrong without repeating the URL: it may carry a credential
    (user:password@, a token in its path or query).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an http:// or https:// URL with a host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ValueError("has a port that is not a number from 1 to 65535")
    if not _is_host(parts.hostname):
        raise ValueError("has a host that is neither a host name nor an IP address")
    return parts


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return True
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_host.removesuffix(".").split(".")
    return len(ascii_host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _seconds(default: float, maximum: float = MAX_TIMEOUT) -> Any:
    """A duration field: positive, finite and at most `maximum` (`inf` is a mistake)."""
    return pydantic.Field(default=default, gt=0, le=maximum, allow_inf_nan=False)


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True, frozen=True)


class WebhookSettings(_Strict):
    """One receiver of events. The secret never appears in the file: `secret_env` names
    the environment variable holding it (`whsec_...`, Standard Webhooks)."""

    url: str
    secret_env: str
    timeout: float = _seconds(10.0)
    """Seconds a receiver has to answer one delivery."""
    max_age: float = _seconds(3 * 24 * 3600.0, MAX_AGE)
    """Seconds after which an event still undelivered is marked failed (dead letter)."""
    retry_initial: float = _seconds(1.0)
    """The first retry's delay in seconds; each next one doubles, with jitter."""
    retry_max: float = _seconds(600.0)
    """The longest delay between two attempts, in seconds."""
    concurrency: int = pydantic.Field(default=8, gt=0, le=256)
    """Deliveries under way at once (each to another resource: one resource's events go
    one after the other, in order)."""
    synchronous: bool = False
    """Deliver within the SCIM request, before the change commits: a receiver that
    refuses (or cannot be reached) fails the request, and the change is not made."""

    @pydantic.field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parse_http_url(url)  # never echoed: a webhook URL often carries its credential
        return url

    @pydantic.field_validator("retry_max")
    @classmethod
    def _no_shorter_than_the_first(cls, value: float, info: pydantic.ValidationInfo) -> float:
        initial = info.data.get("retry_initial")
        if initial is not None and initial > value:
            raise ValueError(f"is shorter than retry_initial ({initial:g} seconds)")
        return value

    @pydantic.field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return variable_name(value)

    def key(self, environ: Mapping[str, str]) -> bytes:
        """The signing key, read from the environment; ValueError names what is wrong."""
        secret = environ.get(self.secret_env)
        if secret is None:
            raise ValueError(f"environment variable {self.secret_env} is not set")
        try:
            return secret_key(secret)
        except ValueError as error:
            raise ValueError(f"environment variable {self.secret_env}: {error}") from None


class EventStoreSettings(_Strict):
    """`[events]`: where events wait for delivery.

    By default they live in the connector's own database, written in the same
    transaction as the change (sql and webhook connectors). A directory has no such
    database: `store` names one (SQLite for one process, PostgreSQL for several).
    """

    store: str | None = pydantic.Field(default=None, repr=False)
    poll_interval: float = _seconds(1.0, 3600.0)
    """Seconds between two looks for due events (writes in this process wake it at once)."""

    @pydantic.field_validator("store")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_url(url)
        return url


class WebhookConnectorSettings(SqlSettings):
    """A `[connector]` of type "webhook": SCIM state in scim-bridge's own SQL store (the
    `sql-default` tables), and every change an event for `webhooks`.

    It is the SQL connector's settings, with scim-bridge's own database by default, whose
    tables scim-bridge may create on any database (a SQL connector's tables belong to the
    admin, so there only SQLite's embedded default is ever created).
    """

    type: Literal["webhook"]  # type: ignore[assignment]  # the discriminator of this kind
    url: str = pydantic.Field(default=DEFAULT_STORE, repr=False)
    """The store: SQLite for one process, PostgreSQL when several share the work."""
    create_tables: bool = True
    webhooks: list[str] = pydantic.Field(min_length=1)
    """The `[webhooks.NAME]` every change of every resource type is delivered to."""

    @pydantic.field_validator("create_tables")
    @classmethod
    def _tables_only_for_sqlite(cls, create: bool, info: pydantic.ValidationInfo) -> bool:
        return create
