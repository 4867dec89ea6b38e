"""The configuration file: TOML read with tomllib into typed, strict models.

Every problem is reported at once, one line each, naming the file, the key path and what
is wrong (`config.toml: connector.url: field required`), so that an operator fixes a
broken file in one pass. The service refuses to start (exit status 2) while any remains.
"""

from __future__ import annotations

import hashlib
import ipaddress
import pathlib
import re
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from connectors import ConnectorSettings
from connectors.base import variable_name
from connectors.spelling import did_you_mean
from connectors.webhook import EventStoreSettings, WebhookSettings
from connectors.webhook.settings import parse_http_url
from mappings import preset_names, toml_text


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")

MIN_TOKEN_LENGTH = 16
"""Characters of a bearer token at the least: `scim-bridge token new` makes 43."""

_EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()

_CONVENTIONAL_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
"""A variable's name as people write one (SCIM_BRIDGE_TOKEN). What else passes for a name
(`li4YqsDw...`, `Corp2024Passw0rd`) is as likely the secret itself, pasted there by mistake."""


_NAME_NOT_REPEATED = (
    "its name is not repeated: one not in capitals may be a secret written there by mistake"
)


def unset_variable(name: str) -> str:
    """Why a secret cannot be read: its variable is not set, named only if it looks like a name.

    A variable that is set proves its name a name: only this message needs the care.
    """
    if _CONVENTIONAL_VARIABLE.fullmatch(name):
        return f"environment variable {name} is not set"
    return f"the environment variable named here is not set ({_NAME_NOT_REPEATED})"


def parse_listen(listen: str) -> tuple[str, int]:
    """Split `HOST:PORT` (an IPv6 host in brackets: `[::1]:8080`) into host and port.

    Port 0 asks the system for a free port. Raises ValueError saying what is wrong.
    """
    scheme, separator, _ = listen.partition("://")
    if separator:
        # Else read as host "http" with "//127.0.0.1:8080" left over, or worse.
        raise ValueError(
            f"is HOST:PORT without a scheme: drop {scheme}:// (127.0.0.1:8080, [::1]:8080)"
        )
    if listen.startswith("["):
        host, bracket, port = listen[1:].partition("]:")
        if not bracket:
            raise ValueError(f"expected [IPv6]:PORT, got {listen!r}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    else:
        host, colon, port = listen.rpartition(":")
        if not colon or not host:
            raise ValueError(f"expected HOST:PORT, got {listen!r}")
        if ":" in host:
            raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{host!r} is not a host name or address")
        if re.fullmatch(r"[0-9.]+", host):  # a name is never all digits: an IPv4 address
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"{host!r} is not an IPv4 address") from None
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"{port!r} is not a port number (0-65535)")
    return host, int(port)


class _Section(BaseModel):
    # strict: a TOML value already has its type; "8080" where 8080 is meant is a mistake.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


MIN_BODY_BYTES = 4096
"""Less refuses what identity providers send every day (a user with its extensions, a
PATCH of a few members) with 413."""
MAX_BODY_BYTES = 1 << 30
"""More lets one request hold the service's memory (a body is read whole to be parsed)."""
MAX_PAGE_SIZE = 100_000
"""A page is built whole in memory; identity providers ask for 100 to 1000 at a time. Far
more once passed `check` and failed every list (an integer the database cannot bind)."""
MIN_POLL_INTERVAL = 0.1
"""Seconds between two looks for due events at the least: a write in the same process
wakes delivery at once, so shorter only keeps a core and the database busy."""


class ServerSettings(_Section):
    """The `[server]` table: where and how the HTTP service listens."""

    listen: str = "127.0.0.1:8080"
    base_path: str = "/scim/v2"
    """The path under which the SCIM endpoints live (RFC 7644 §3: the service's base URI)."""
    max_body_bytes: int = Field(default=1_048_576, ge=MIN_BODY_BYTES, le=MAX_BODY_BYTES)
    """Larger request bodies are refused with 413 (announced as bulk.maxPayloadSize)."""
    max_page_size: int = Field(default=1000, gt=0, le=MAX_PAGE_SIZE)
    """`count` is capped to this (RFC 7644 §3.4.2.4; announced as filter.maxResults)."""
    workers: int = Field(default=1, ge=1, le=64)
    """Serving processes, all accepting on `listen` (SO_REUSEPORT); one per core uses the
    machine. Each holds its own backend connections (`pool_size` each)."""
    idle_timeout: float = Field(default=75.0, ge=1, le=3600, allow_inf_nan=False)
    """Seconds a connection may stay without a complete request (idle between requests,
    or sending one too slowly) before it is closed: connections that never finish their
    headers would otherwise be held until the process runs out of file descriptors."""
    access_log: bool = True
    """One line per request on stderr: client, method, path (never the query, whose filters
    hold user names), status, size and duration."""
    public_url: str | None = None
    """The URL clients reach the service at through a proxy, e.g. `https://idm.example.com`;
    Location headers and `$ref` values are built from it followed by `base_path`. Its path,
    if any, is the proxy's own prefix (`https://example.com/idm` for a proxy that strips
    `/idm`). Empty or absent: from the request's own scheme and host."""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("base_path")
    @classmethod
    def _check_base_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        if any(char in value for char in "?#% \t"):
            raise ValueError(f"must be a plain path, got {value!r}")
        inner = value[1:].rstrip("/")
        if inner and any(segment in ("", ".", "..") for segment in inner.split("/")):
            # Clients resolve dot segments and proxies merge slashes (RFC 3986 §5.2.4):
            # every request would then miss the path the service answers on.
            raise ValueError(f"must be a path without empty, '.' or '..' segments, got {value!r}")
        return value.rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        # Not echoed: a URL may carry credentials (user:password@, a token).
        url = urllib.parse.urlsplit(value)
        if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
            raise ValueError("must be an http:// or https:// URL without a query or fragment")
        parse_http_url(value)  # a host name or address, a port in range
        if url.username is not None or url.password is not None:
            raise ValueError("must not hold user:password@: every Location header would publish it")
        base_path = info.data.get("base_path")
        path = url.path.rstrip("/")
        if base_path and path and (path + "/").endswith(base_path + "/"):
            raise ValueError(
                f"ends with base_path {base_path!r}, which is appended to it; give the URL "
                "without it (its path is only a proxy's own prefix)"
            )
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]


class TokenSettings(_Section):
    """One `[[auth.tokens]]` entry: a bearer token read from the environment, or its digest.

    Either way the file itself never holds a usable secret.
    """

    env: str | None = None
    """The name of the environment variable holding the token."""
    sha256: str | None = None
    """The SHA-256 hex digest of the token (`scim-bridge token new` prints it)."""

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: str | None) -> str | None:
        return None if value is None else variable_name(value)

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("must be the 64 hex digits of a SHA-256 digest")
        if value.lower() == _EMPTY_DIGEST:
            # "Authorization: Bearer " with nothing after it would match.
            raise ValueError("is the digest of the empty string, not of a token")
        return value.lower()

    @model_validator(mode="after")
    def _exactly_one(self) -> TokenSettings:
        if (self.env is None) == (self.sha256 is None):
            raise ValueError("give exactly one of env or sha256")
        return self


class AuthSettings(_Section):
    """The `[auth]` table: the bearer tokens an identity provider may present (RFC 6750)."""

    tokens: list[TokenSettings] = Field(min_length=1)


class UserPolicy(_Section):
    """The `[users]` table: what deprovisioning does to a user's entry or row.

    RFC 7644 §3.6 lets a service keep a deleted resource as long as it answers 404 for it
    afterwards; identity providers also deactivate (`active` false) instead of deleting.
    Each choice is explicit here, and checked against the mapping at start-up.
    """

    on_delete: Literal["delete", "disable", "move"] = "delete"
    """DELETE removes the entry ("delete"); or keeps it, disabled through the mapping's
    `active` rule and still readable ("disable"); or, in a directory, disables it when the
    mapping can, takes it out of its groups and moves it to `archive`, after which it is
    404 ("move")."""
    on_deactivate: Literal["disable", "delete", "refuse"] | None = None
    """`active` set to false disables through the mapping's rule ("disable", the default
    when the mapping maps `active`); or deprovisions as DELETE does ("delete", for
    backends that know no disabled state); or is refused with 400 ("refuse", the default
    when the mapping maps no `active`: nothing is silently left enabled)."""
    archive: str | None = None
    """With on_delete = "move": the container entries move to, relative to the
    connector's base_dn (`ou=archive`)."""
    notify: list[str] = []
    """`[webhooks.NAME]` told of every change to users, beside any connector."""

    @model_validator(mode="after")
    def _consistent(self) -> UserPolicy:
        _check_archive(self.on_delete, self.archive)
        if self.on_deactivate == "delete" and self.on_delete == "disable":
            raise ValueError(
                'on_deactivate = "delete" deprovisions as DELETE does, '
                'which on_delete = "disable" makes a deactivation'
            )
        return self


class GroupPolicy(_Section):
    """The `[groups]` table: what DELETE does to a group's entry or row."""

    on_delete: Literal["delete", "move"] = "delete"
    archive: str | None = None
    notify: list[str] = []
    """`[webhooks.NAME]` told of every change to groups, beside any connector."""

    @model_validator(mode="after")
    def _consistent(self) -> GroupPolicy:
        _check_archive(self.on_delete, self.archive)
        return self


def _check_archive(on_delete: str, archive: str | None) -> None:
    if on_delete == "move" and not archive:
        raise ValueError('on_delete = "move" needs archive: the container entries move to')
    if archive is not None and on_delete != "move":
        raise ValueError('archive applies only with on_delete = "move"')


class Settings(_Section):
    """The whole file, plus where it was read from."""

    server: ServerSettings = ServerSettings()
    auth: AuthSettings
    connector: ConnectorSettings
    users: UserPolicy = UserPolicy()
    groups: GroupPolicy = GroupPolicy()
    webhooks: dict[str, WebhookSettings] = {}
    """Receivers of events, by name (`[webhooks.hr-events]`)."""
    events: EventStoreSettings = EventStoreSettings()
    mapping: str
    """A preset name (`sql-default`) or a path to a TOML file (ending in `.toml` or
    holding a `/`), relative to the configuration file's directory."""
    source: pathlib.Path

    @field_validator("mapping")
    @classmethod
    def _check_mapping(cls, value: str) -> str:
        if not _is_path(value) and value not in preset_names():
            presets = ", ".join(preset_names())
            raise ValueError(
                f"{value!r} is not a preset{did_you_mean(value, preset_names())} ({presets}); "
                "a mapping file's path ends in .toml"
            )
        return value

    def destinations(self) -> dict[str, list[str]]:
        """The receivers of each resource type's events: `users` and `groups`."""
        common = list(getattr(self.connector, "webhooks", []))
        return {
            "users": list(dict.fromkeys([*common, *self.users.notify])),
            "groups": list(dict.fromkeys([*common, *self.groups.notify])),
        }

    def slips(self, *, listen_given: bool = False) -> list[str]:
        """What the configuration says that the service can run with but that is most
        likely a mistake: printed by `check` and logged at start, never silently kept.
        `listen_given`: the address came from `--listen`, where port 0 is meant."""
        found = []
        if self.events.store is not None and not any(self.destinations().values()):
            found.append(
                "events.store: no webhook receives events (connector.webhooks, users.notify "
                "and groups.notify name none), so nothing is ever kept there"
            )
        if self.server.port == 0 and not listen_given:
            found.append(
                "server.listen: port 0 takes any free port, another at each start, which an "
                "identity provider's base URL cannot follow; name a port (--listen "
                "127.0.0.1:0 is for trials)"
            )
        return [f"{self.source}: {line}" for line in found]

    def event_store(self) -> str | None:
        """The database events wait in: `[events] store`, else the connector's own."""
        if self.events.store is not None:
            return self.events.store
        return getattr(self.connector, "url", None)

    @model_validator(mode="after")
    def _tokens_are_distinct(self) -> Settings:
        """A token named twice is a copy-and-paste slip: the second was meant to be another."""
        seen: dict[tuple[str, str], int] = {}
        for index, token in enumerate(self.auth.tokens):
            key = ("env", token.env) if token.env is not None else ("sha256", token.sha256 or "")
            if key in seen:
                if token.env is None:
                    what, why = "this digest", ""
                elif _CONVENTIONAL_VARIABLE.fullmatch(token.env):
                    what, why = token.env, ""
                else:
                    what, why = "this name", f" ({_NAME_NOT_REPEATED})"
                raise ValueError(
                    f"auth.tokens[{index}].{key[0]}: {what} is already "
                    f"auth.tokens[{seen[key]}]{why}"
                )
            seen[key] = index
        return self

    @model_validator(mode="after")
    def _events_have_somewhere_to_go(self) -> Settings:
        used = {name for names in self.destinations().values() for name in names}
        for table, names in (
            ("connector.webhooks", getattr(self.connector, "webhooks", [])),
            ("users.notify", self.users.notify),
            ("groups.notify", self.groups.notify),
        ):
            unknown = [name for name in names if name not in self.webhooks]
            if unknown:
                raise ValueError(
                    f"{table}: no [webhooks.{unknown[0]}] table"
                    + (f" (known: {', '.join(self.webhooks)})" if self.webhooks else "")
                )
        if used and self.event_store() is None:
            raise ValueError(
                "events.store: a directory has no database for events; name one "
                '(store = "sqlite+aiosqlite:///scim-bridge-events.db")'
            )
        for names in self.destinations().values():
            agreeing = [name for name in dict.fromkeys(names) if self.webhooks[name].synchronous]
            if len(agreeing) > 1:
                # The first would be told of a change the second then refuses: nothing
                # takes the first's acceptance back.
                raise ValueError(
                    f"webhooks.{agreeing[1]}.synchronous: one synchronous webhook per "
                    f"resource type (webhooks.{agreeing[0]} is one already)"
                )
        synchronous = [name for name in used if self.webhooks[name].synchronous]
        if synchronous and (self.connector.type == "ldap" or self.events.store is not None):
            raise ValueError(
                f"webhooks.{synchronous[0]}.synchronous: a refusal can only undo a change "
                "written in the same transaction as its event: a sql or webhook connector, "
                "without [events] store"
            )
        return self

    @model_validator(mode="after")
    def _passwords_are_escaped(self) -> Settings:
        """An `@` in a URL's password ends the password there, and the rest reads as the
        host (`scim:Tr0ub4dor@2024@db.internal`): connecting would then print a part of
        the password as a host name not found."""
        from connectors.sql.settings import parse_url

        for key, url in (
            ("connector.url", getattr(self.connector, "url", None)),
            ("events.store", self.events.store),
        ):
            if url is not None and "@" in (parse_url(url).host or ""):
                raise ValueError(
                    f"{key}: its password holds an @, which a URL writes as %40 (the URL is "
                    "not repeated: it holds a password)"
                )
        return self

    @model_validator(mode="after")
    def _events_are_not_polled_in_a_loop(self) -> Settings:
        if self.events.poll_interval < MIN_POLL_INTERVAL:
            raise ValueError(
                f"events.poll_interval: must be at least {MIN_POLL_INTERVAL:g} seconds: a "
                "write wakes delivery at once, and polling faster only keeps a core busy"
            )
        return self

    @model_validator(mode="after")
    def _webhooks_are_used(self) -> Settings:
        used = {name for names in self.destinations().values() for name in names}
        for name in self.webhooks:
            if name not in used:
                raise ValueError(
                    f"webhooks.{name}: no connector.webhooks, users.notify or groups.notify "
                    "names it, so it would receive nothing"
                )
        return self

    @model_validator(mode="after")
    def _workers_share_nothing(self) -> Settings:
        """Several workers are several processes: what one process keeps in order for
        the others cannot be shared, so such a configuration is refused, not degraded."""
        if self.server.workers == 1:
            return self
        stores = [("connector.url", getattr(self.connector, "url", None))]
        if self.events.store is not None:
            stores.append(("events.store", self.events.store))
        for key, url in stores:
            if url is not None and url.startswith("sqlite"):
                raise ValueError(
                    f"server.workers: {key} is a SQLite file, which takes one writer at a "
                    "time; use PostgreSQL or MariaDB, or workers = 1"
                )
        used = any(self.destinations().values())
        if used and self.connector.type == "ldap":
            raise ValueError(
                "server.workers: a directory's events are put in the order of its writes "
                "inside one process; with webhooks on a ldap connector, workers must be 1"
            )
        return self

    @model_validator(mode="after")
    def _moves_need_a_directory(self) -> Settings:
        for table, policy in (("users", self.users), ("groups", self.groups)):
            if policy.on_delete == "move" and self.connector.type != "ldap":
                raise ValueError(
                    f'{table}.on_delete: "move" needs a directory (connector type "ldap")'
                )
        return self

    def mapping_source(self) -> str | pathlib.Path:
        """The preset name, or the mapping file's path resolved against this file's directory."""
        if not _is_path(self.mapping):
            return self.mapping
        return _beside(self.source, self.mapping)


def _is_path(mapping: str) -> bool:
    return mapping.endswith(".toml") or "/" in mapping


def _beside(config: pathlib.Path, value: str) -> pathlib.Path:
    """A path the configuration file gives, relative to that file's directory (so that
    the service finds the same files from whatever directory it is started in)."""
    return config.parent / pathlib.Path(value).expanduser()


def _files_beside(document: dict[str, Any], config: pathlib.Path) -> dict[str, Any]:
    """The document with its file paths (`connector.ca_file`) resolved against `config`'s
    directory, as `mapping` is, before the connector's settings check that they exist.

    Absolute, so that the error naming a missing file names the very path tried.
    (SQLite URLs stay relative to the working directory, as SQLAlchemy reads them: a
    database read from elsewhere than before would be a new, empty one.)"""
    connector = document.get("connector")
    if not isinstance(connector, dict) or not isinstance(connector.get("ca_file"), str):
        return document
    ca_file = str(_beside(config, connector["ca_file"]).absolute())
    return {**document, "connector": {**connector, "ca_file": ca_file}}


def load_config(path: pathlib.Path) -> Settings:
    """Read and validate the configuration file; ConfigError lists every problem found."""
    try:
        text = toml_text(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    except ValueError as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {_sentence(str(exc))}"]) from None
    problems = [f"{path}: source: unknown key"] if "source" in document else []
    try:
        settings = Settings.model_validate({**_files_beside(document, path), "source": path})
    except ValidationError as exc:
        problems += (f"{path}: {_describe(error)}" for error in exc.errors())
    if problems:
        raise ConfigError(problems)
    return settings


_TAG_ERRORS = ("union_tag_not_found", "union_tag_invalid")


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as `key.path[0].name: what is wrong` (never echoing the value)."""
    loc = list(error["loc"])
    if len(loc) > 1 and loc[0] == "connector" and error["type"] not in _TAG_ERRORS:
        del loc[1]  # the connector type pydantic chose the model by, not a key of the file
    location = _key_path(loc)
    if error["type"] == "union_tag_not_found":
        return f"{location}.type: field required"
    if error["type"] == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return f"{location}.type: must be one of {expected}"
    if error["type"] == "missing":
        problem = "field required"
    elif error["type"] == "extra_forbidden" and _is_token_in_file(error["loc"]):
        problem = _WRITTEN_ELSEWHERE
    elif error["type"] == "extra_forbidden":
        problem = "unknown key" + did_you_mean(str(loc[-1]), _keys_taken_at(error["loc"][:-1]))
        if error["loc"][-1] == "mapping" and len(error["loc"]) > 1:
            problem += " (a top-level key such as mapping must come before the first [table])"
    elif error["type"] == "value_error":
        problem = str(error["ctx"]["error"])
    elif error["type"] == "list_type" and _holds_tables(error["loc"]):
        # TOML's [auth.tokens] is one table; a list of them is written [[auth.tokens]]
        # (`tokens = "..."` is no list of strings either: the token goes elsewhere).
        problem = f"must be a list of tables: write each one as [[{location}]]"
        if isinstance(error.get("input"), dict):
            problem += f", not [{location}]"
        elif loc == ["auth", "tokens"]:
            problem += f"; {_WRITTEN_ELSEWHERE}"
    elif error["type"] == "list_type":
        problem = f"must be a list: {_list_example(str(loc[-1]))}"
    else:
        problem = _sentence(error["msg"])
    return f"{location}: {problem}" if location else problem


def _holds_tables(loc: Sequence[Any]) -> bool:
    """Whether the list at `loc` is one of tables (`[[auth.tokens]]`), not of values."""
    return bool(_keys_taken_at([*loc, 0]))


_TOKEN_KEYS = frozenset({"token", "value", "secret", "bearer"})
"""Keys under [[auth.tokens]] (or [auth]) that can only mean the token itself, written
in the file."""

_WRITTEN_ELSEWHERE = (
    "a token is never written in the file (nor repeated here): put it in an environment "
    'variable named by env (env = "SCIM_BRIDGE_TOKEN" in [[auth.tokens]]), or its SHA-256 '
    "digest in sha256 (`scim-bridge token new` prints both)"
)


def _is_token_in_file(loc: Sequence[Any]) -> bool:
    """Whether an unknown key is the token itself, under [[auth.tokens]] or [auth]: said
    as such, since "unknown key" left the admin to guess where the token goes instead."""
    return len(loc) >= 2 and loc[0] == "auth" and str(loc[-1]).lower() in _TOKEN_KEYS


_LIST_EXAMPLES = {"urls": '"ldap://..."'}
"""What an item of a list looks like, by key, for `must be a list: urls = [...]`."""


def _list_example(key: str) -> str:
    """`key = ["..."]`, as the list a single value must be written as; the value given is
    not repeated (it may hold what the log must not show)."""
    item = _LIST_EXAMPLES.get(key, '"..."')
    return f"{key} = [{item}]"


def _keys_taken_at(loc: Sequence[Any]) -> list[str]:
    """The keys the table at `loc` takes (an unknown key's location without that key),
    found by following the settings models down; none when that cannot be told."""
    annotation: Any = Settings
    for part in loc:
        annotation = _unwrapped(annotation)
        origin = typing.get_origin(annotation)
        if origin in (list, dict):  # an item of [[auth.tokens]], a [webhooks.NAME] table
            annotation = typing.get_args(annotation)[-1]
            continue
        models = _models_in(annotation)
        if len(models) > 1:  # the connector: pydantic names the `type` it chose
            models = [model for model in models if part in _types_of(model)]
            if len(models) != 1:
                return []
            annotation = models[0]
            continue
        field = models[0].model_fields.get(str(part)) if models else None
        if field is None:
            return []
        annotation = field.annotation
    models = _models_in(_unwrapped(annotation))
    return (
        [field.alias or name for name, field in models[0].model_fields.items()]
        if len(models) == 1
        else []
    )


def _unwrapped(annotation: Any) -> Any:
    """`annotation` without Annotated[...] and without None in a union."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    arguments = [each for each in typing.get_args(annotation) if each is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(arguments) == 1:
        return _unwrapped(arguments[0])
    return annotation


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation names: itself, or the members of a union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [model for each in typing.get_args(annotation) for model in _models_in(each)]
    return []


def _types_of(model: type[BaseModel]) -> tuple[Any, ...]:
    """The `type` values a connector's settings model is chosen by (its Literal)."""
    field = model.model_fields.get("type")
    return typing.get_args(field.annotation) if field is not None else ()


def _key_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            path += f".{name}" if path else name
    return path


def _sentence(message: str) -> str:
    return message[:1].lower() + message[1:]
