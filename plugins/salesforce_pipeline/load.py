"""Load transformed chunks into Postgres: COPY into staging, one guarded upsert per chunk.

All SQL lives in `include/sql/`; table and column names are filled in with psycopg2's
`sql.Identifier`, never by pasting strings, and values always travel as query parameters.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.transform import Reject

if TYPE_CHECKING:
    import pandas as pd
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)

LINEAGE_COLUMNS = ("_extracted_at", "_dag_run_id")


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
    if isinstance(value, datetime):
        return value.isoformat()
    if value != value:  # NaN / NaT
        return "\\N"
    return str(value)


def copy_text(frame: pd.DataFrame, columns: Sequence[str]) -> io.StringIO:
    """The frame's rows in COPY text format (tab-separated, `\\N` for null)."""
    serialised = []
    for column in columns:
        values = frame[column].tolist()
        if str(frame[column].dtype).startswith("datetime64"):
            serialised.append(["\\N" if v is None or v != v else v.isoformat() for v in values])
        else:
            serialised.append([_copy_value(v) for v in values])
    buffer = io.StringIO()
    buffer.writelines("\t".join(row) + "\n" for row in zip(*serialised, strict=True))
    buffer.seek(0)
    return buffer


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

        if frame.empty:
            return ChunkResult(0, 0)
        frame = frame.assign(_extracted_at=self.extracted_at, _dag_run_id=self.dag_run_id)
        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        assignments = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in self.columns if c != "id"
        )
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("TRUNCATE {}").format(self.stage))
            copy = sql.SQL("COPY {stage} ({columns}) FROM STDIN").format(
                stage=self.stage, columns=column_list
            )
            cur.copy_expert(copy.as_string(cur), copy_text(frame, self.columns))
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
