"""The `scim-bridge` command: `serve`, `check` and `token new`.

`serve` and `check` run the same start-up checks (the configuration file, its tokens, the
mapping, a live connection to the backend and the backend's tables against the mapping)
and report every problem found, one line each, with exit status 2; `serve` starts only
when there is none.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from bridge.access_log import ACCEPT_FAILURES, MALFORMED_REQUESTS, AccessLog
from bridge.access_log import LOGGER as ACCESS_LOGGER
from bridge.app import build_app
from bridge.auth import TokenVerifier, new_token, token_digest
from bridge.config import ConfigError, Settings, load_config, parse_listen, unset_variable
from bridge.events import Events, store_engine
from bridge.resources import policy_problems
from bridge.runner import MAX_REQUEST_LINE, Runner
from bridge.workers import Copies, forget_board, parent_of_this_worker, until_orphaned
from connectors import build_connector
from connectors.base import Connector, ConnectorError
from connectors.forget_board import ForgetBoard
from connectors.ldap import LdapSettings
from connectors.sql import SqlSettings
from connectors.webhook import Status
from mappings import Mapping as AttributeMapping
from mappings import MappingError, load_mapping

if TYPE_CHECKING:
    from connectors.webhook import StoredEvent

# SQLAlchemy and the outbox are imported where they are used (a database to check, the
# events commands): a service on a directory without events never loads them.

log = logging.getLogger(__name__)

_EXIT_PROBLEMS = 2
"""The configuration, the mapping or the backend is not usable (as for a usage error)."""
_EXIT_INTERRUPTED = 130
"""As a shell reports a command stopped by SIGINT (128 + 2)."""
_EXIT_READER_GONE = 141
"""As a shell reports a command stopped by SIGPIPE (128 + 13), which Python ignores."""


class _UnreadableBodies(logging.Filter):
    """After answering, aiohttp reads what the handler left of a request body; a body the
    client broke (not gzip under `Content-Encoding: gzip`, a malformed chunk) fails there,
    logged as an unhandled exception with a traceback of some 30 lines, which any client,
    without a token, can repeat to flood the log. The client's fault: one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, RequestPayloadError):
            record.msg = "a request body could not be read (%s); its connection is closed"
            record.args = (type(error.__cause__ or error).__name__,)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_UNREADABLE_BODIES = _UnreadableBodies()


@dataclass(frozen=True, slots=True)
class _Service:
    """Everything the application needs, checked."""

    settings: Settings
    verifier: TokenVerifier
    mapping: AttributeMapping
    connector: Connector
    events: Events | None


async def _checked(
    config: Path,
    environ: Mapping[str, str],
    listen: str | None = None,
    *,
    rehearsal: bool = False,
    forgets: ForgetBoard | None = None,
) -> _Service:
    """Run the start-up checks; ConfigError lists every problem found.

    The backend is checked only when the mapping loads, since the mapping says what the
    backend must hold. The connector is closed again afterwards: the application opens
    it for its own lifetime. `listen` is the `--listen` that replaces `server.listen`.
    With `rehearsal` (`check`), nothing is written: the tables create_tables would make
    are checked in a transaction that is rolled back (connectors.build_connector).
    """
    settings = load_config(config)
    source = str(settings.source)
    problems = await _listen_problems(settings, listen)
    verifier: TokenVerifier | None = None
    mapping: AttributeMapping | None = None
    try:
        verifier = TokenVerifier.from_settings(settings.auth, environ, source)
    except ConfigError as exc:
        problems += exc.problems
    try:
        mapping = _mapping(settings)
    except MappingError as exc:
        problems += exc.problems
    if mapping is None:
        raise ConfigError(problems)
    problems += policy_problems(settings, mapping)
    if settings.groups.notify and not mapping.groups:
        # As an unnamed [webhooks.X] is refused: a receiver told of nothing is a slip.
        problems.append(
            f"{source}: groups.notify: the mapping maps no groups, so no group event is ever "
            f"sent and webhooks.{settings.groups.notify[0]} would receive none from it"
        )
    events = None
    secrets = _secret_problems(settings, environ)
    if secrets:
        problems += secrets
    else:
        events = Events.configured(settings, mapping, environ)
    connector = build_connector(
        settings.connector,
        mapping.backend,
        events.journal if events else None,
        rehearsal=rehearsal,
        forgets=forgets,
    )
    unusable = _password_problem(settings) or _database_file_problem(settings)
    if unusable is not None:
        problems.append(unusable)  # connecting would only fail on it again
    else:
        try:
            await connector.open()
            archives = {
                f"{kind}.archive": policy.archive
                for kind, policy in (("users", settings.users), ("groups", settings.groups))
                if policy.on_delete == "move" and policy.archive
            }
            problems += (
                _attributed(line, source, mapping, archives)
                for line in await connector.verify(archives=archives)
            )
        except Exception as exc:
            problem = _backend_problem(settings, exc)
            if problem is None:
                raise
            problems.append(problem)
        finally:
            await connector.close()
    if events is not None:
        problems += (
            line for line in await _store_problems(events, settings) if line not in problems
        )
    if problems or verifier is None:
        raise ConfigError(problems)
    return _Service(settings, verifier, mapping, connector, events)


def _mapping(settings: Settings) -> AttributeMapping:
    """The mapping the file names; a file that is not there is said at the key naming it,
    with the path tried (relative to the configuration file's directory)."""
    source = settings.mapping_source()
    if isinstance(source, Path) and not source.exists():
        raise MappingError(
            [
                f"{settings.source}: mapping: no such file: {source.absolute()} (a mapping "
                "file's path is relative to the configuration file's directory)"
            ]
        )
    return load_mapping(source)


def _attributed(
    line: str, source: str, mapping: AttributeMapping, archives: Mapping[str, str]
) -> str:
    """A backend problem, said where it can be mended: in the mapping file when the
    connector names its key there, at a key of the configuration, or under `connector`."""
    mapping_file = getattr(mapping.backend, "source", "")
    if mapping_file and line.startswith(f"{mapping_file}: "):
        return line
    if any(line.startswith(f"{key}: ") for key in archives):
        return f"{source}: {line}"
    return f"{source}: connector: {line}"


def _listen_key(settings: Settings, listen: str | None) -> str:
    """Where the address to listen on was given: `--listen`, or the file's key."""
    return "--listen" if listen is not None else f"{settings.source}: server.listen"


async def _listen_problems(settings: Settings, listen: str | None) -> list[str]:
    """The host to listen on is an address, or a name that resolves (checked, not bound:
    `check` runs beside the service it checks)."""
    key = _listen_key(settings, listen)
    host, port = parse_listen(listen or settings.server.listen)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except (socket.gaierror, UnicodeError):
            return [f"{key}: host name {host!r} not found"]
    return []


def _password_problem(settings: Settings) -> str | None:
    """The bind password is read from the process's environment, as the connector reads it."""
    if not isinstance(settings.connector, LdapSettings):
        return None
    name = settings.connector.password_env
    if name is not None and name not in os.environ:
        problem: str | None = unset_variable(name)
    else:
        problem = settings.connector.password_problem()
    return None if problem is None else f"{settings.source}: connector.password_env: {problem}"


def _database_file_problem(settings: Settings) -> str | None:
    connector = settings.connector
    if not isinstance(connector, SqlSettings):
        return None
    from connectors.sql.errors import missing_directory
    from connectors.sql.settings import parse_url

    missing = missing_directory(parse_url(connector.url))
    return (
        None
        if missing is None
        else _database_line(settings, "connector.url", connector.url, missing)
    )


def _backend_problem(settings: Settings, error: Exception) -> str | None:
    """One line for a backend that cannot be used, or None for an error nobody foresaw."""
    connector = settings.connector
    if isinstance(connector, SqlSettings):
        cause = _database_problem(connector.url, connector.connect_timeout, error)
        if cause is not None:
            return _database_line(settings, "connector.url", connector.url, cause)
    if isinstance(error, ConnectorError):
        return f"{settings.source}: connector: {error.message}"
    return None


def _database_problem(url: str, connect_timeout: float, error: BaseException) -> str | None:
    """Why a database could not be used, when `error` says."""
    from connectors.sql.errors import connection_problem
    from connectors.sql.settings import parse_url

    return connection_problem(error, parse_url(url), connect_timeout)


def _database_line(settings: Settings, key: str, url: str, cause: str) -> str:
    """`file: key: URL: cause`, the URL without its password (nor its query, where
    drivers take one too)."""
    from connectors.sql.settings import parse_url

    parsed = parse_url(url)
    shown = (
        type(parsed)
        .create(
            parsed.drivername,
            username=parsed.username,
            host=parsed.host,
            port=parsed.port,
            database=parsed.database,
        )
        .render_as_string()
    )
    return f"{settings.source}: {key}: {shown}: {cause}"


def _secret_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Each receiver whose signing secret is missing or malformed, one line each."""
    used = sorted({name for names in settings.destinations().values() for name in names})
    problems = []
    for name in used:
        key = f"{settings.source}: webhooks.{name}.secret_env"
        variable = settings.webhooks[name].secret_env
        if variable not in environ:
            problems.append(f"{key}: {unset_variable(variable)}")
            continue
        try:
            settings.webhooks[name].key(environ)
        except ValueError as error:
            problems.append(f"{key}: {error}")
    return problems


async def _store_problems(events: Events, settings: Settings) -> list[str]:
    """Whether the events' database answers (nothing is written to it here)."""
    import sqlalchemy as sa

    from connectors.sql.errors import missing_database
    from connectors.sql.settings import parse_url

    if missing_database(parse_url(events.store)) is not None:
        # Connecting would create the file, which `serve` does with the events table:
        # a check writes nothing. (A missing directory fails the connect below.)
        await events.engine.dispose()
        return []
    try:
        async with events.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))
    except (OSError, sa.exc.SQLAlchemyError) as error:
        return [_store_problem(settings, events.store, error)]
    finally:
        await events.engine.dispose()
    return []


def _store_problem(settings: Settings, store: str, error: Exception) -> str:
    """The events' database cannot be used: the key that names it, and why."""
    key = "events.store" if settings.events.store is not None else "connector.url"
    timeout = getattr(settings.connector, "connect_timeout", 10.0)
    cause = _database_problem(store, timeout, error)
    return _database_line(settings, key, store, cause or f"cannot connect ({type(error).__name__})")


async def _check(config: Path, environ: Mapping[str, str]) -> int:
    service = await _checked(config, environ, rehearsal=True)
    settings, mapping = service.settings, service.mapping
    # What the backend check found worth saying that does not stop the service (a
    # failover server down): `check` silences the connectors' log, so it is printed here.
    for line in getattr(service.connector, "warnings", ()):
        print(f"warning: {settings.source}: connector: {line}")
    for line in [*settings.slips(), *mapping.slips]:
        print(f"warning: {line}")
    print(f"ok: {settings.source}: configuration is valid")
    print(f"ok: {len(settings.auth.tokens)} bearer token(s) configured")
    served = "users and groups" if mapping.groups else "users"
    print(f"ok: mapping {settings.mapping_source()}: {served}")
    created = list(getattr(service.connector, "to_create", ()))
    events_table = await _missing_events_table(service.events)
    if events_table is not None and settings.events.store is None:
        created.append(events_table)  # in the connector's own database
    if created:  # create_tables: checked in a transaction rolled back, made by `serve`
        print(f"ok: the backend is reachable; serve creates its tables: {', '.join(created)}")
    else:
        print("ok: the backend is reachable and holds everything the mapping names")
    if events_table is not None and settings.events.store is not None:
        print(f"ok: events.store is reachable; serve creates its table: {events_table}")
    return 0


async def _missing_events_table(events: Events | None) -> str | None:
    """The events table's name when `serve` will create it (Events.open), else None.

    Read only: a SQLite file that does not exist yet is not opened (it would be made)."""
    if events is None:
        return None
    import sqlalchemy as sa

    from connectors.sql.errors import missing_database
    from connectors.sql.settings import parse_url

    name = events.outbox.table.name
    if missing_database(parse_url(events.store)) is not None:
        return name
    try:
        async with events.engine.connect() as connection:
            held = await connection.run_sync(lambda sync: sa.inspect(sync).has_table(name))
    finally:
        await events.engine.dispose()
    return None if held else name


async def application(
    config: Path,
    environ: Mapping[str, str],
    *,
    listen: str | None = None,
    forgets: ForgetBoard | None = None,
) -> tuple[web.Application, Settings]:
    """The application a configuration file describes, after every start-up check.

    `listen` overrides `server.listen`; `forgets` is the board the workers share
    (bridge.workers.forget_board). ConfigError lists the problems found.
    """
    service = await _checked(config, environ, listen, forgets=forgets)
    settings = service.settings
    if listen is not None:
        server = settings.server.model_copy(update={"listen": listen})
        settings = settings.model_copy(update={"server": server})
    if parent_of_this_worker(environ) is None:  # said once, not by every worker
        for slip in service.mapping.slips:
            log.warning("%s", slip)
    app = build_app(settings, service.mapping, service.connector, service.verifier, service.events)
    return app, settings


async def _serve(config: Path, listen: str | None, environ: Mapping[str, str]) -> int:
    board = forget_board(environ)
    app, settings = await application(config, environ, listen=listen, forgets=board)
    # A request line up to 64 KiB (a long filter) reaches the service, which answers it in
    # SCIM terms; aiohttp's own limit of 8 KiB would answer plain text.
    logging.getLogger("aiohttp.server").addFilter(MALFORMED_REQUESTS)
    logging.getLogger("aiohttp.server").addFilter(_UNREADABLE_BODIES)
    logging.getLogger("asyncio").addFilter(ACCEPT_FAILURES)
    # The idle timeout runs from the connection's start and again after each answer: a
    # request whose headers never end is closed too (aiohttp's own default is an hour).
    idle, line = settings.server.idle_timeout, MAX_REQUEST_LINE
    if settings.server.access_log:
        runner = Runner(
            app,
            access_log_class=AccessLog,
            access_log=ACCESS_LOGGER,
            max_line_size=line,
            keepalive_timeout=idle,
        )
    else:
        runner = Runner(app, access_log=None, max_line_size=line, keepalive_timeout=idle)
    await runner.setup()  # opens the connector; runner.cleanup() closes it
    # Everything built so far (models, mappings, pools) lives as long as the process:
    # out of the collector's sight, it no longer makes each full collection long.
    gc.collect()
    gc.freeze()
    workers = settings.server.workers
    parent = parent_of_this_worker(environ)
    try:
        host, port = settings.server.host, settings.server.port
        try:
            await web.TCPSite(runner, host, port, reuse_port=workers > 1).start()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            print(
                f"{_listen_key(settings, listen)}: cannot listen on {settings.server.listen}: "
                f"{reason}",
                file=sys.stderr,
            )
            return _EXIT_PROBLEMS
        if parent is not None:  # a copy: the first worker logged where the service is
            await _until_stopped(orphaned=until_orphaned(parent))
            return 0
        for slip in settings.slips(listen_given=listen is not None):
            log.warning("%s", slip)
        bound = runner.addresses[0][1]  # differs from `port` when port 0 asked for any
        authority = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
        copies = Copies(workers - 1, config, authority, environ, board)
        copies.start()
        if workers > 1:
            log.info("%d workers accept on this port", workers)
        log.info("serving SCIM 2.0 at http://%s%s", authority, settings.server.base_path)
        try:
            await _until_stopped()
        finally:
            await copies.stop()
    finally:
        await runner.cleanup()
    return 0


async def _until_stopped(orphaned: Coroutine[Any, Any, None] | None = None) -> None:
    """Wait for SIGINT or SIGTERM (or for `orphaned` to return), so that stopping closes
    backend connections cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    waits: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
    if orphaned is not None:
        waits.append(asyncio.create_task(orphaned))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    log.info("stopping")


async def _events(args: argparse.Namespace) -> int:
    """`events list` and `events retry`: the outbox as an operator sees it."""
    settings = load_config(args.config)
    store = settings.event_store()
    if store is None:
        raise ConfigError([f"{settings.source}: events.store: no database holds events"])
    import sqlalchemy as sa

    from connectors.webhook import Outbox

    outbox = Outbox()
    engine = store_engine(store, settings)
    counts = dict.fromkeys(Status, 0)
    skipped: list[str] = []  # ids `retry` was given that name no failed event
    try:
        async with engine.begin() as connection:
            # Read, never created here: a database without the table holds no events.
            held = await connection.run_sync(
                lambda sync: sa.inspect(sync).has_table(outbox.table.name)
            )
            if args.events_command == "retry":
                retried: list[str] = []
                if held:
                    retried = await outbox.retry(
                        connection, ids=args.ids, all_failed=args.all_failed
                    )
                print(f"retried: {len(retried)}")
                skipped = [id for id in dict.fromkeys(args.ids or []) if id not in retried]
                for id in skipped:
                    print(f"not retried: {id}: no failed event has this id", file=sys.stderr)
            elif held:
                status = Status(args.status) if args.status else None
                for event in await outbox.listed(connection, status, args.limit):
                    print(_event_line(event))
            if held:
                counts = await outbox.counts(connection)
    except BrokenPipeError:
        raise  # the reader of the listing went away: main's quiet 141, not the store's
    except (OSError, sa.exc.SQLAlchemyError) as error:
        raise ConfigError([_store_problem(settings, store, error)]) from None
    finally:
        await engine.dispose()
    print("  ".join(f"{status.value}: {counts[status]}" for status in Status))
    return _EXIT_PROBLEMS if skipped else 0


def _event_line(event: StoredEvent) -> str:
    created = datetime.fromtimestamp(event.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = (
        f"{event.id}  {event.webhook}  {event.type}  {event.resource_type}/{event.resource_id}"
        f"  {event.status.value}  attempts={event.attempts}  created={created}"
    )
    return line + (f"  last_error={event.last_error}" if event.last_error else "")


def _print_token(token: str) -> None:
    print(f"token: {token}")
    print()
    print("# Either keep the token in the service's environment:")
    print(f"export SCIM_BRIDGE_TOKEN='{token}'")
    print("[[auth.tokens]]")
    print('env = "SCIM_BRIDGE_TOKEN"')
    print()
    print("# or keep only its SHA-256 digest in the configuration file:")
    print("[[auth.tokens]]")
    print(f'sha256 = "{token_digest(token)}"')


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def _listen_address(value: str) -> str:
    try:
        parse_listen(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-bridge",
        description="A SCIM 2.0 service that provisions users and groups into existing backends.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="check the configuration, then serve SCIM 2.0")
    serve.add_argument("--config", type=Path, required=True, metavar="FILE")
    serve.add_argument(
        "--listen",
        type=_listen_address,
        metavar="HOST:PORT",
        help="instead of server.listen ([::1]:8080 for IPv6; port 0 picks a free port)",
    )

    check = commands.add_parser(
        "check", help="check the configuration, its tokens, the mapping and the backend"
    )
    check.add_argument("--config", type=Path, required=True, metavar="FILE")

    events = commands.add_parser("events", help="the events waiting for webhook receivers")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    listing = event_commands.add_parser("list", help="list events, newest first, and count them")
    listing.add_argument("--config", type=Path, required=True, metavar="FILE")
    listing.add_argument("--status", choices=[status.value for status in Status])
    listing.add_argument("--limit", type=_positive, default=50, metavar="N")
    retry = event_commands.add_parser("retry", help="deliver failed events again")
    retry.add_argument("--config", type=Path, required=True, metavar="FILE")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID")
    which.add_argument("--all-failed", action="store_true")

    token = commands.add_parser("token", help="bearer tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    token_commands.add_parser("new", help="print a fresh token and how to configure it")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        status = _run(argv)
        sys.stdout.flush()  # here, not at exit, where a reader gone away is a traceback
    except BrokenPipeError:
        # `events list | head -1`: the reader has all it wanted, and the rest is dropped
        # quietly, as other commands do. Python would fail again flushing at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _EXIT_READER_GONE
    return status


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "token":
        _print_token(new_token())
        return 0
    try:
        if args.command == "events":
            return asyncio.run(_events(args))
        if args.command == "check":
            # Every problem is one line of the report: the connectors' log records of the
            # same failures would print it twice (through logging's last-resort handler).
            logging.getLogger("scim_bridge").addHandler(logging.NullHandler())
            return asyncio.run(_check(args.config, os.environ))
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        return asyncio.run(_serve(args.config, args.listen, os.environ))
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return _EXIT_PROBLEMS
    except KeyboardInterrupt:
        # Ctrl-C before serving began (during `check`, or while the backend is slow to
        # answer at start): stopped as asked, without a traceback. Once serving, SIGINT
        # is handled by _serve and stops the service cleanly.
        print("interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
