"""Wire-form values: the exact shapes the Salesforce REST API uses in JSON.

Datetimes are UTC strings ``2024-05-20T20:49:32.000+0000`` and dates ``2024-05-20``. Because
every stored datetime has that one fixed layout, string comparison orders them correctly, which
is what lets the SOQL evaluator compare datetimes without parsing them per row.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from typing import Any

from salesforce_emulator.ids import to_18
from salesforce_emulator.schema import NUMBER_TYPES, STRING_TYPES, FieldDef

__all__ = [
    "UTC",
    "epoch_to_wire",
    "format_date",
    "format_datetime",
    "gzip_bytes",
    "parse_datetime",
    "to_wire",
    "wire_to_bulk_datetime",
]

UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_DAY_CACHE: dict[int, str] = {}
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def gzip_bytes(data: bytes, level: int = 1) -> bytes:
    """*data* as a gzip stream (``Content-Encoding: gzip``); level 1 keeps the server fast."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 16+15: gzip header and trailer
    return compressor.compress(data) + compressor.flush()


def format_datetime(value: dt.datetime) -> str:
    """Format an aware (or naive UTC) datetime in wire form, milliseconds kept."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def format_date(value: dt.date) -> str:
    """Format a date in wire form (``YYYY-MM-DD``)."""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def epoch_to_wire(seconds: int) -> str:
    """Fast wire-form datetime for whole epoch seconds (the data generator's hot path)."""
    day, rem = divmod(seconds, 86400)
    prefix = _DAY_CACHE.get(day)
    if prefix is None:
        prefix = format_date((_EPOCH + dt.timedelta(days=day)).date())
        _DAY_CACHE[day] = prefix
    hour, rem = divmod(rem, 3600)
    minute, sec = divmod(rem, 60)
    return f"{prefix}T{hour:02d}:{minute:02d}:{sec:02d}.000+0000"


def parse_datetime(text: str) -> dt.datetime:
    """Parse an ISO-8601 / Salesforce datetime (``Z``, ``+0000``, ``+00:00`` or naive = UTC)."""
    m = _DATETIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a datetime: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or "0"
    micro = int(frac.ljust(6, "0")[:6])
    tz_text = m.group(8)
    tz = UTC
    if tz_text and tz_text != "Z":
        sign = 1 if tz_text[0] == "+" else -1
        digits = tz_text[1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).astimezone(UTC)


def wire_to_bulk_datetime(value: str) -> str:
    """``2024-05-20T20:49:32.000+0000`` -> ``2024-05-20T20:49:32.000Z`` (the Bulk 2.0 CSV form)."""
    return value[:-5] + "Z"


def to_wire(field: FieldDef, value: Any) -> Any:
    """Convert an admin-supplied Python value to the stored wire form of *field*.

    Raises ValueError when the value does not fit the field type, so that bad test data fails
    loudly at insert time rather than as a confusing query result later.
    """
    if value is None:
        if not field.nillable and field.type != "boolean":
            raise ValueError(f"{field.name} is required")
        return False if field.type == "boolean" else None
    kind = field.type
    if kind in ("id", "reference"):
        if not isinstance(value, str):
            raise ValueError(f"{field.name}: expected an Id string")
        return to_18(value)
    if kind in STRING_TYPES:
        if not isinstance(value, str):
            raise ValueError(f"{field.name}: expected a string, got {type(value).__name__}")
        if len(value) > field.length:
            raise ValueError(f"{field.name}: longer than {field.length} characters")
        # Picklists are unrestricted (like Salesforce's default): unknown values are accepted.
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{field.name}: expected a bool")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field.name}: expected an int")
        return value
    if kind in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{field.name}: expected a number")
        return round(float(value), field.scale)
    if kind == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            return format_date(value)
        if isinstance(value, str) and _DATE_RE.match(value):
            dt.date.fromisoformat(value)
            return value
        raise ValueError(f"{field.name}: expected a date")
    if kind == "datetime":
        if isinstance(value, dt.datetime):
            return format_datetime(value)
        if isinstance(value, str):
            return format_datetime(parse_datetime(value))
        raise ValueError(f"{field.name}: expected a datetime")
    raise ValueError(f"{field.name}: field of type {kind} cannot be written")
