"""Compare the warehouse with the emulator's records, field by field, written apart from the
pipeline's own transform so a bug there cannot hide itself here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.extras

from salesforce_pipeline.objects import OBJECTS

_NUMERIC_TYPES = {"currency", "double", "percent"}


def column_of(api_name: str) -> str:
    # Written independently of salesforce_pipeline.transform.snake_case on purpose.
    known = {"SystemModstamp": "system_modstamp", "NPS__c": "nps__c"}
    if api_name in known:
        return known[api_name]
    base, custom = (api_name[:-3], "__c") if api_name.endswith("__c") else (api_name, "")
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+|_", base)
    return "_".join(w.lower() for w in words if w != "_") + custom


def expected_value(api_name: str, sf_type: str, value: Any) -> Any:
    """What the warehouse must hold for a Salesforce wire value."""
    if value is None:
        return None
    if sf_type == "datetime":
        return datetime.strptime(value.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
    if sf_type == "date":
        return date.fromisoformat(value)
    if sf_type in _NUMERIC_TYPES:
        return Decimal(repr(value) if isinstance(value, float) else str(value))
    if sf_type == "int":
        return int(value)
    if sf_type == "boolean":
        return bool(value)
    text = str(value).replace("\x00", "")
    if sf_type == "email":
        text = text.strip().lower()
    return text


def warehouse_rows(url: str, table: str, schema: str = "salesforce") -> dict[str, dict[str, Any]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(f'SELECT * FROM "{schema}".{table}')  # names from the test and OBJECTS, not input
            return {row["id"]: dict(row) for row in cur.fetchall()}
    finally:
        conn.close()


def mismatches(
    sobject: str,
    truth: Iterable[Mapping[str, Any]],
    rows: Mapping[str, Mapping[str, Any]],
    describe: Mapping[str, Any],
    *,
    fields: Sequence[str] | None = None,
    purged_ids: Iterable[str] = (),
) -> list[str]:
    """Every difference between the emulator's records and the warehouse rows, one line each.

    Ids purged from Salesforce must be kept as deleted rows; no row may exist that Salesforce
    never had.
    """
    spec = OBJECTS[sobject]
    types = {f["name"]: f["type"] for f in describe["fields"]}
    fields = list(fields or spec.default_fields)
    problems: list[str] = []
    seen = set()
    for record in truth:
        record_id = record["Id"]
        seen.add(record_id)
        row = rows.get(record_id)
        if row is None:
            problems.append(f"{sobject} {record_id}: missing from the warehouse")
            continue
        for api_name in fields:
            want = expected_value(api_name, types[api_name], record.get(api_name))
            got = row[column_of(api_name)]
            if isinstance(want, Decimal) and got is not None:
                got = Decimal(got)
            if want != got:
                problems.append(f"{sobject} {record_id}.{api_name}: want {want!r:.80}, got {got!r:.80}")
    for record_id in purged_ids:
        seen.add(record_id)
        row = rows.get(record_id)
        if row is not None and not row["is_deleted"]:
            problems.append(f"{sobject} {record_id}: purged in Salesforce but not marked deleted")
    extra = sorted(set(rows) - seen)
    if extra:
        problems.append(f"{sobject}: {len(extra)} warehouse rows Salesforce never had, e.g. {extra[:3]}")
    return problems
