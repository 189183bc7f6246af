"""Load transformed chunks into Postgres: COPY into staging, one guarded upsert per chunk.

All SQL lives in `include/sql/`; table and column names are filled in with psycopg2's
`sql.Identifier`, never by pasting strings, and values always travel as query parameters.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.transform import Reject

if TYPE_CHECKING:
    import pandas as pd
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)

LINEAGE_COLUMNS = ("_extracted_at", "_dag_run_id")
_COPY_READ_SIZE = 1 << 20
_ENCODE_BLOCK_ROWS = 2000


def sql_dir() -> Path:
    """`include/sql/` beside `plugins/`: the same layout in the repo and in the Airflow image."""
    configured = os.environ.get("SALESFORCE_PIPELINE_SQL_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "include" / "sql"


@cache
def read_sql(name: str) -> str:
    path = sql_dir() / name
    try:
        return path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"SQL file {path} is missing; the include/ folder must sit beside plugins/ "
            "(or set SALESFORCE_PIPELINE_SQL_DIR)"
        ) from None


def sql_template(name: str, **identifiers: Any):
    """A statement from include/sql with `{placeholders}` filled by psycopg2.sql composables."""
    from psycopg2 import sql

    return sql.SQL(read_sql(name)).format(**identifiers)


def _escape_copy_text(value: str) -> str:
    # COPY's text format: backslash escapes for the four characters that delimit it.
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\r" in value:
        value = value.replace("\r", "\\r")
    return value


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _escape_copy_text(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if value != value:  # NaN / NaT (NaT is a datetime too, so this comes first)
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# COPY text format delimits with tab and newline and escapes with backslash; \N is null.
_COPY_SPECIALS = ("\\", "\t", "\n", "\r")
# Joins a column's text into one string so the escaping runs as four C-level replaces instead of
# a Python call per value. Text reaching the loader holds no NUL (Postgres text cannot), and a
# column that somehow does is detected by the split and takes the per-value path.
_SEPARATOR = "\x00"


def _escape_texts(values: list[Any]) -> list[str] | None:
    """COPY text for a column of str/None, or None when the column needs the per-value path."""
    nulls = [position for position, value in enumerate(values) if value is None]
    filled = [("" if value is None else value) for value in values] if nulls else values
    joined = _SEPARATOR.join(filled)
    if any(special in joined for special in _COPY_SPECIALS):
        joined = joined.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        parts = joined.split(_SEPARATOR)
        if len(parts) != len(values):
            return None
    else:
        if _SEPARATOR in joined and joined.count(_SEPARATOR) != len(values) - 1:
            return None
        parts = list(filled)
    for position in nulls:
        parts[position] = "\\N"
    return parts


def _datetime_texts(column: pd.Series) -> list[str]:
    """ISO 8601 text for a datetime64 column, formatted by numpy in C.

    Aware columns are written in UTC with a `Z`; naive ones without an offset, as before (the
    server's TimeZone then applies).
    """
    import numpy as np

    aware = column.dt.tz is not None
    if aware:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = column.to_numpy(dtype="datetime64[us]")
    texts = np.datetime_as_string(stamps, unit="us")
    if aware:
        texts = np.char.add(texts, "Z")
    texts = texts.astype(object)
    texts[np.isnat(stamps)] = "\\N"
    return texts.tolist()


def _column_texts(column: pd.Series) -> list[str]:
    """One column in COPY text form: vectorised for the dtypes transform produces, per value
    for anything else (mixed objects, numpy numbers), with the same rules as `_copy_value`."""
    from pandas.api.types import infer_dtype

    if column.dtype.kind == "M":
        return _datetime_texts(column)
    if column.dtype == object:
        values = column.tolist()  # transform's columns: Python values, None for null
    else:
        values = column.to_numpy(dtype=object, na_value=None).tolist()
    kind = infer_dtype(values, skipna=True)
    if kind in ("string", "empty"):
        try:
            escaped = _escape_texts(values)
        except TypeError:  # a NaN among the strings (skipped by infer_dtype): per value
            escaped = None
        if escaped is not None:
            return escaped
    elif kind == "boolean":
        return ["\\N" if value is None else ("t" if value else "f") for value in values]
    elif kind == "integer":
        return ["\\N" if value is None else str(value) for value in values]
    return [_copy_value(value) for value in values]


def _copy_lines(frame: pd.DataFrame, columns: Sequence[str], constants: Sequence[Any]) -> Iterator[str]:
    """The frame's rows as COPY text lines (no newline), followed by `constants` on every row."""
    count = len(frame)
    if count == 0:
        return iter(())
    serialised = [_column_texts(frame[column]) for column in columns]
    serialised.extend([_copy_value(constant)] * count for constant in constants)
    # One C-level str.join per row over ready-made column texts.
    return map("\t".join, zip(*serialised, strict=True))


def copy_payload(frame: pd.DataFrame, columns: Sequence[str], constants: Sequence[Any] = ()) -> str:
    """The frame's rows in COPY text format, followed by `constants` (the same on every row)."""
    lines = list(_copy_lines(frame, columns, constants))
    return "\n".join(lines) + "\n" if lines else ""


def copy_bytes(
    frame: pd.DataFrame, columns: Sequence[str], constants: Sequence[Any], encoding: str
) -> io.BytesIO:
    """`copy_payload` encoded block by block, so the whole chunk never exists twice (as text and
    as bytes); text holding one emoji would even cost 4 bytes per character as one str."""
    buffer = io.BytesIO()
    lines = _copy_lines(frame, columns, constants)
    while block := list(islice(lines, _ENCODE_BLOCK_ROWS)):
        buffer.write(("\n".join(block) + "\n").encode(encoding))
    buffer.seek(0)
    return buffer


def copy_text(frame: pd.DataFrame, columns: Sequence[str]) -> io.StringIO:
    """The frame's rows in COPY text format (tab-separated, `\\N` for null)."""
    return io.StringIO(copy_payload(frame, columns))


def apply_schema(conn: PgConnection, extra_columns: dict[str, Sequence[tuple[str, str]]]) -> None:
    """Create the schema and tables if needed, and a column for each configured extra field.

    `extra_columns` maps a table name to (column, postgres type) pairs. Idempotent.
    """
    from psycopg2 import sql

    with conn.cursor() as cur:
        # Concurrent runs may both apply DDL; serialise them so CREATE ... IF NOT EXISTS can't race.
        cur.execute(read_sql("lock_object.sql"), {"lock_name": "salesforce_pipeline.schema"})
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'salesforce'")
        if cur.fetchone() is None:
            cur.execute(read_sql("create_schema.sql"))
        cur.execute(read_sql("schema.sql"))
        for table, columns in extra_columns.items():
            for column, column_type in columns:
                cur.execute(
                    sql_template(
                        "add_column.sql",
                        target=sql.Identifier("salesforce", table),
                        column=sql.Identifier(column),
                        column_type=sql.SQL(column_type),
                    )
                )
    conn.commit()


@dataclass
class ChunkResult:
    staged: int
    upserted: int


class ObjectLoad:
    """One object's load in one run: a single transaction, committed by the caller at the end.

    Chunks are staged with COPY and moved with one set-based upsert each; nothing reaches
    other sessions until `commit()`, so a failed run leaves the warehouse as it was.
    """

    def __init__(
        self,
        conn: PgConnection,
        spec: ObjectSpec,
        columns: Sequence[str],
        *,
        dag_run_id: str,
        extracted_at: datetime,
    ) -> None:
        from psycopg2 import sql

        self.conn = conn
        self.spec = spec
        self.data_columns = list(columns)
        self.columns = [*self.data_columns, *LINEAGE_COLUMNS]
        self.dag_run_id = dag_run_id
        self.extracted_at = extracted_at
        self.target = sql.Identifier("salesforce", spec.table)
        self.stage = sql.Identifier(f"_stage_{spec.table}")
        self.extracted = sql.Identifier(f"_extracted_{spec.table}")

    def begin(self) -> None:
        """Wait for any other load of this object, then create the transaction's temp tables."""
        with self.conn.cursor() as cur:
            cur.execute(read_sql("lock_object.sql"), {"lock_name": f"salesforce.{self.spec.table}"})
            cur.execute(sql_template("create_stage.sql", stage=self.stage, target=self.target))
            cur.execute(sql_template("create_extracted_ids.sql", extracted=self.extracted))

    def load_chunk(self, frame: pd.DataFrame) -> ChunkResult:
        """Stage one transformed chunk and upsert it; returns rows staged and rows written."""
        from psycopg2 import sql
        from psycopg2.extensions import encodings

        if frame.empty:
            return ChunkResult(0, 0)
        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        assignments = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in self.columns if c != "id"
        )
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("TRUNCATE {}").format(self.stage))
            copy = sql.SQL("COPY {stage} ({columns}) FROM STDIN").format(
                stage=self.stage, columns=column_list
            )
            # Bytes in the connection's encoding, as psycopg2 would encode str; it reads the file
            # in `size` pieces, one libpq call each.
            payload = copy_bytes(
                frame,
                self.data_columns,
                (self.extracted_at, self.dag_run_id),
                encodings[self.conn.encoding],
            )
            cur.copy_expert(copy.as_string(cur), payload, size=_COPY_READ_SIZE)
            del payload
            cur.execute(sql_template("record_extracted_ids.sql", extracted=self.extracted, stage=self.stage))
            cur.execute(
                sql_template(
                    "upsert_from_stage.sql",
                    target=self.target,
                    stage=self.stage,
                    columns=column_list,
                    assignments=assignments,
                )
            )
            upserted = cur.rowcount
        return ChunkResult(staged=len(frame), upserted=upserted)

    def write_rejects(self, rejects: Sequence[Reject]) -> None:
        from psycopg2.extras import execute_values

        if not rejects:
            return
        with self.conn.cursor() as cur:
            execute_values(
                cur,
                read_sql("insert_reject.sql"),
                [(self.dag_run_id, self.spec.name, r.record_id, r.reason, r.raw_record) for r in rejects],
            )

    def unverified_ids(self) -> list[str]:
        """Extracted Ids not in the table at their extracted SystemModstamp or newer (should be none)."""
        with self.conn.cursor() as cur:
            cur.execute(sql_template("verify_load.sql", extracted=self.extracted, target=self.target))
            return [row[0] for row in cur.fetchall()]

    def mark_missing_as_deleted(self, extraction_started_at: datetime) -> int:
        """Full refresh: flag rows whose Id Salesforce no longer has at all."""
        with self.conn.cursor() as cur:
            cur.execute(
                sql_template("mark_missing_deleted.sql", target=self.target, extracted=self.extracted),
                {
                    "extracted_at": self.extracted_at,
                    "dag_run_id": self.dag_run_id,
                    "extraction_started_at": extraction_started_at,
                },
            )
            return cur.rowcount

    def extracted_id_count(self) -> int:
        """Distinct Ids loaded by this run (rejected records are not among them)."""
        from psycopg2 import sql

        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(self.extracted))
            return cur.fetchone()[0]

    def count_live_rows(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute(sql_template("count_live_rows.sql", target=self.target))
            return cur.fetchone()[0]

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()


def has_loaded_successfully(conn: PgConnection, sobject: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(read_sql("last_success.sql"), {"sobject": sobject})
        (finished,) = cur.fetchone()
    conn.commit()
    return finished is not None


def audit_start(conn: PgConnection, **values: Any) -> int:
    """Record that a load began; its own transaction, so the row survives a failed load."""
    with conn.cursor() as cur:
        cur.execute(read_sql("audit_start.sql"), values)
        (audit_id,) = cur.fetchone()
    conn.commit()
    return audit_id


def audit_finish(conn: PgConnection, **values: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(read_sql("audit_finish.sql"), values)
    conn.commit()
