"""Values crossing the connector: coerced to the reflected column type on the way in,
normalised on the way out, and SCIM ids turned into keys and back.

The mapping hands over Python's natural types (str, bool, int, ISO 8601 strings for
dates); columns are whatever the existing table says. A value that does not fit raises
InvalidValue naming the field, with a message that names neither table nor column.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from connectors.base import InvalidValue, Kind

_INT64 = 2**63
_INTEGER_ID = re.compile(r"-?[1-9][0-9]*|0")


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive database value is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


def from_column(value: Any, column: sa.Column[Any] | None = None) -> Any:
    """A value read from the database, as the connector returns it.

    A NUMERIC or DECIMAL column reads as Decimal (every driver: asyncpg, aiomysql, and
    SQLAlchemy's processor on SQLite), which no JSON encoder writes and the mapping passes
    through: it leaves the connector as a JSON number (see `_read_number`). `column` is the
    column the value was read from; without it a Decimal reads as a declared scale of none.
    """
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, Decimal):
        scale = getattr(column.type, "scale", None) if column is not None else None
        return _read_number(value, scale)
    if isinstance(value, str) and column is not None and isinstance(column.type, sa.CHAR):
        # A fixed-width column pads what it holds with spaces (PostgreSQL's character(n)
        # gives them back; it also compares without them): `alice` stored in CHAR(20)
        # reads as `alice`, and a `map` code 'T' as 'T', not 'T  '.
        return value.rstrip(" ")
    return value


def _read_number(value: Decimal, scale: int | None) -> int | float | None:
    """A Decimal as the number SCIM writes (RFC 7643 §2.3.3 decimal, §2.3.4 integer).

    A column that declares digits after the point (NUMERIC(10,2)) holds decimals: a float,
    2.0 for 2.00. Any other gives an int when the value is whole (an integer attribute
    kept in NUMERIC, DECIMAL(10) or numeric(10,0)) and a float when it is not. NaN and
    the infinities (PostgreSQL's numeric holds them) have no JSON form: they read as no
    value. The connector cannot see the attribute's SCIM type, only the column's.
    """
    if not value.is_finite():
        return None
    if not scale and value == value.to_integral_value():
        return int(value)
    return float(value)


def to_column(column: sa.Column[Any], value: Any, *, field: str, stored: bool = True) -> Any:
    """`value` in the Python type the column's driver expects; None passes through.

    `stored`: the value is written to the column, which must hold it exactly. A filter's
    operand (stored=False) is only compared with the column's values, at any precision.
    """
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return _boolean(value, field)
    if isinstance(kind, sa.Integer):
        return _integer(value, field)
    if isinstance(kind, sa.Numeric):
        number = _number(value, field)
        scale = None if isinstance(kind, sa.Float) else kind.scale
        if stored and scale is not None and _places(number) > scale:
            # The database would round it (0.5 into NUMERIC(10,0) stores 1) and answer
            # with another value than the client wrote.
            if not scale:
                raise InvalidValue("the value is not a whole number", field=field)
            digits = "1 digit" if scale == 1 else f"{scale} digits"
            raise InvalidValue(f"the value has more than {digits} after the point", field=field)
        return number
    if isinstance(kind, sa.DateTime):
        return _datetime(value, field, aware=bool(kind.timezone))
    if isinstance(kind, sa.Date):
        return _date(value, field)
    if isinstance(kind, sa.Uuid):
        return _uuid(value, field)
    if isinstance(kind, sa.String):
        return _string(kind, value, field)
    return value


def _boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidValue("the value is not a boolean", field=field)


def _integer(value: Any, field: str) -> int:
    # bool is an int: MySQL's BOOLEAN is a TINYINT, so True is stored as 1.
    if isinstance(value, str) and _INTEGER_ID.fullmatch(value.strip()):
        value = int(value)
    if not isinstance(value, int):
        raise InvalidValue("the value is not a whole number", field=field)
    if not -_INT64 <= value < _INT64:
        raise InvalidValue("the number is too large", field=field)
    return int(value)


def _number(value: Any, field: str) -> Decimal | float:
    if isinstance(value, float | Decimal):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if number.is_finite():
                return number
    raise InvalidValue("the value is not a number", field=field)


def _places(number: Decimal | float) -> int:
    """The digits after the point `number` needs (12.50 needs 1; a float as it prints)."""
    exact = Decimal(repr(number)) if isinstance(number, float) else number
    if not exact.is_finite():
        return 0
    exponent = exact.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _datetime(value: Any, field: str, *, aware: bool) -> datetime:
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None:
        raise InvalidValue("the value is not an ISO 8601 date and time", field=field)
    moment = utc(moment)
    # A column without a time zone holds UTC by convention (and reads back as UTC).
    return moment if aware else moment.replace(tzinfo=None)


def _date(value: Any, field: str) -> date:
    """The day `value` names, as written: `2026-03-01T00:00:00+02:00` is 1 March (not 28
    February, its day in UTC), as a `format` rule writes it into a text column."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            try:
                return datetime.fromisoformat(value).date()
            except ValueError:
                pass
    raise InvalidValue("the value is not an ISO 8601 date", field=field)


def _uuid(value: Any, field: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidValue("the value is not a UUID", field=field) from None


def _string(kind: sa.String, value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidValue("the value is not text", field=field)
    text = str(value)
    if kind.length is not None and len(text) > kind.length:
        raise InvalidValue(f"the value is too long (at most {kind.length} characters)", field=field)
    if isinstance(kind, sa.Enum) and kind.enums and text not in kind.enums:
        raise InvalidValue("the value is not one of those allowed", field=field)
    return text


# --- Keys ---------------------------------------------------------------------------


ID_PREFIXES = {Kind.USERS: "", Kind.GROUPS: "g"}
"""RFC 7643 §3.1 wants an id unique across every resource of the service, but a users
table and a groups table each count their keys from 1: group ids carry a prefix."""


INTEGER_RANGE = "scim_bridge.integer_range"
"""Column.info key: (lowest, highest + 1) of an integer column, where the database keeps
to its type's width (an id beyond it names no record, and must not reach the query)."""


def beyond_range(column: sa.Column[Any], value: Any) -> int:
    """1 when `value` is above every value `column` can hold, -1 when it is below every
    one, 0 otherwise (within, or not of the column's kind at all).

    A filter may name any integer (RFC 7643 §2.3.4 sets no bound), and any dateTime
    (§2.3.5: `9999-12-31T23:59:59-05:00` is a valid one, past the last instant Python and
    the databases hold once in UTC). One the column cannot hold is not a wrong filter: it
    decides the comparison without the database, whose driver or server would refuse the
    value as a parameter (PostgreSQL's int4, and any value past 64 bits).
    """
    if isinstance(column.type, sa.DateTime):
        return _instant_beyond_range(value)
    if not isinstance(column.type, sa.Integer) or isinstance(value, bool):
        return 0
    if isinstance(value, str) and _INTEGER_ID.fullmatch(value.strip()):
        value = int(value)
    if not isinstance(value, int):
        return 0
    low, high = column.info.get(INTEGER_RANGE, (-_INT64, _INT64))
    if value >= high:
        return 1
    return -1 if value < low else 0


def _instant_beyond_range(value: Any) -> int:
    moment = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return 0  # not a dateTime: to_column says so
    if moment is None:
        return 0
    try:
        utc(moment)
    except OverflowError:  # within a day of the first or the last year, in another zone
        return 1 if moment.year > 1 else -1
    return 0


_SECONDS_FRACTION = re.compile(r"\d{2}:\d{2}:\d{2}[.,](\d+)")


def finer_than_microseconds(value: Any) -> bool:
    """Whether `value`, an ISO 8601 text, names an instant between two microseconds: its
    seconds have digits past the sixth that are not all zero. Python's datetime, hence the
    operand the database is sent, keeps the microsecond below it (`.8264181` is `.826418`).
    """
    if not isinstance(value, str):
        return False
    found = _SECONDS_FRACTION.search(value)
    return found is not None and found[1][6:].strip("0") != ""


def key_from_id(resource: Kind, column: sa.Column[Any], id: str) -> Any | None:
    """The backend key a SCIM id stands for, or None when it cannot be a key at all."""
    prefix = ID_PREFIXES[resource]
    if not id.startswith(prefix):
        return None
    id = id[len(prefix) :]
    kind = column.type
    if isinstance(kind, sa.Integer):
        if not _INTEGER_ID.fullmatch(id):
            return None
        key = int(id)
        low, high = column.info.get(INTEGER_RANGE, (-_INT64, _INT64))
        return key if low <= key < high else None
    if isinstance(kind, sa.Uuid):
        try:
            parsed = uuid.UUID(id)
        except ValueError:
            return None
        return parsed if str(parsed) == id else None
    if isinstance(kind, sa.String) and kind.length is not None and len(id) > kind.length:
        return None
    return id


def id_from_key(resource: Kind, key: Any) -> str:
    """RFC 7643 §3.1: the id is the key rendered as text, stable for the record's life."""
    return f"{ID_PREFIXES[resource]}{key}"


KEY_LENGTH = 32
"""The length of the text keys made for new records (a UUID's 32 hexadecimal digits)."""


def new_key(column: sa.Column[Any]) -> Any | None:
    """A key for a new record, or None when the database assigns one (autoincrement)."""
    if isinstance(column.type, sa.Integer):
        return None
    if isinstance(column.type, sa.Uuid):
        return uuid.uuid4()
    return uuid.uuid4().hex
