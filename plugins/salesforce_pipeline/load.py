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
    import numpy as np
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


def _escape_texts(values: np.ndarray) -> list[str] | None:
    """COPY text for an object array of str and nulls (None or NaN), or None when the column
    needs the per-value path. Nulls are found and filled by numpy, not a Python loop."""
    import numpy as np
    import pandas as pd

    nulls = pd.isna(values)
    has_nulls = bool(nulls.any())
    if has_nulls:
        values = values.copy()
        values[nulls] = ""
    filled = values.tolist()
    joined = _SEPARATOR.join(filled)
    if any(special in joined for special in _COPY_SPECIALS):
        joined = joined.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        parts = joined.split(_SEPARATOR)
        if len(parts) != len(filled):
            return None
    else:
        if _SEPARATOR in joined and joined.count(_SEPARATOR) != len(filled) - 1:
            return None
        parts = filled
    if not has_nulls:
        return parts
    texts = np.fromiter(parts, dtype=object, count=len(parts))
    texts[nulls] = "\\N"
    return texts.tolist()


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
    texts = np.datetime_as_string(stamps, unit="us", timezone="UTC" if aware else "naive")  # UTC: a Z suffix
    texts = texts.astype(object)
    texts[np.isnat(stamps)] = "\\N"
    return texts.tolist()


def _column_texts(column: pd.Series) -> list[str]:
    """One column in COPY text form: vectorised for the dtypes transform produces, per value
    for anything else (mixed objects, numpy numbers), with the same rules as `_copy_value`."""
    from pandas.api.types import infer_dtype

    if column.dtype.kind == "M":
        return _datetime_texts(column)
    # Transform's columns hold Python values (None for null); anything else is made so.
    array = column.to_numpy() if column.dtype == object else column.to_numpy(dtype=object, na_value=None)
    kind = infer_dtype(array, skipna=True)
    if kind in ("string", "empty"):
        escaped = _escape_texts(array)
        if escaped is not None:
            return escaped
    values = array.tolist()
    if kind == "boolean":
        return ["\\N" if value is None else ("t" if value else "f") for value in values]
    if kind == "integer":
        return ["\\N" if value is None else str(value) for value in values]
    return [_copy_value(value) for value in values]


def _column_blocks(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[list[list[str]], int]:
    return [_column_texts(frame[column]) for column in columns], len(frame)


def _join_rows(serialised: Sequence[Sequence[str]], start: int, stop: int, row_end: str) -> str:
    """Rows start..stop of column-wise COPY texts as one block of lines, each ending in `row_end`.

    Interleaves the columns with their separators by extended-slice assignment into one list
    and joins it once: C-level copying, and no tuple or string per row.
    """
    rows = stop - start
    width = len(serialised)
    pieces: list[str] = [""] * (rows * width * 2)
    tab = ["\t"] * rows
    for position, texts in enumerate(serialised):
        pieces[2 * position :: 2 * width] = texts[start:stop]
        pieces[2 * position + 1 :: 2 * width] = tab if position < width - 1 else [row_end] * rows
    return "".join(pieces)


def _row_end(constants: Sequence[Any]) -> str:
    # The lineage values are the same on every row: written once into the line ending.
    return "".join(f"\t{_copy_value(constant)}" for constant in constants) + "\n"


def copy_bytes(
    frame: pd.DataFrame, columns: Sequence[str], constants: Sequence[Any], encoding: str
) -> io.BytesIO:
    """The frame's rows in COPY text format (tab-separated, `\\N` for null), each followed by
    `constants` (the same on every row), encoded block by block: the whole chunk never exists
    twice (as text and as bytes); text holding one emoji would even cost 4 bytes per character
    as one str."""
    buffer = io.BytesIO()
    serialised, count = _column_blocks(frame, columns)
    row_end = _row_end(constants)
    for start in range(0, count, _ENCODE_BLOCK_ROWS):
        stop = min(start + _ENCODE_BLOCK_ROWS, count)
        buffer.write(_join_rows(serialised, start, stop, row_end).encode(encoding))
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


@dataclass
class PreparedChunk:
    """A transformed chunk serialised for COPY: the Python side of loading it, done up front so
    the database side can run in another thread while the next chunk is being transformed."""

    payload: io.BytesIO
    rows: int
    id_hashes: Any  # numpy int64 array: sorted hashes of the chunk's Ids


class ObjectLoad:
    """One object's load in one run: a single transaction, committed by the caller at the end.

    Nothing reaches other sessions until `commit()`, so a failed run leaves the warehouse as it
    was. Two ways in, chosen under the object's lock at `begin()`:

    * **guarded** (the table has rows): each chunk is COPYed into a staging table and moved with
      one set-based upsert whose WHERE keeps the newest SystemModstamp, and the extracted Ids are
      kept for verification and for marking rows Salesforce no longer has;
    * **direct** (the table is empty, as on a first load): each chunk is COPYed straight into
      the table. There is nothing to guard or mark deleted, and the table itself is the record of
      what was extracted. A chunk carrying an Id an earlier chunk already had (which a single
      query should never return) moves the load onto the guarded path before it is written.
    """

    def __init__(
        self,
        conn: PgConnection,
        spec: ObjectSpec,
        columns: Sequence[str],
        *,
        dag_run_id: str,
        extracted_at: datetime,
        direct_when_empty: bool = True,
    ) -> None:
        from psycopg2 import sql

        self.conn = conn
        self.spec = spec
        self.direct_when_empty = direct_when_empty  # False: always the guarded path (the bench)
        self.data_columns = list(columns)
        self.columns = [*self.data_columns, *LINEAGE_COLUMNS]
        self.dag_run_id = dag_run_id
        self.extracted_at = extracted_at
        self.target = sql.Identifier("salesforce", spec.table)
        self.stage = sql.Identifier(f"_stage_{spec.table}")
        self.extracted = sql.Identifier(f"_extracted_{spec.table}")
        self.direct = False
        self.staged = 0  # rows written by this load, in either mode
        self.upserted = 0
        self._copied_directly = 0
        self._seen_hashes: Any = None
        self._encoding = "utf-8"  # the connection's, read at begin(): prepare_chunk must not touch it

    @property
    def mode(self) -> str:
        return "direct" if self.direct else "guarded"

    def begin(self) -> None:
        """Wait for any other load of this object, then choose the direct or the guarded path."""
        import numpy as np
        from psycopg2.extensions import encodings

        # COPY data goes as bytes in the connection's encoding, as psycopg2 would encode str.
        self._encoding = encodings[self.conn.encoding]
        with self.conn.cursor() as cur:
            cur.execute(read_sql("lock_object.sql"), {"lock_name": f"salesforce.{self.spec.table}"})
            cur.execute(sql_template("target_is_empty.sql", target=self.target))
            self.direct = bool(cur.fetchone()[0]) and self.direct_when_empty
        if self.direct:
            self._seen_hashes = np.empty(0, dtype=np.int64)
            log.info(
                "%s: salesforce.%s is empty, so chunks are COPYed straight into it",
                self.spec.name,
                self.spec.table,
            )
        else:
            self._create_work_tables()

    def _create_work_tables(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql_template("create_stage.sql", stage=self.stage, target=self.target))
            cur.execute(sql_template("create_extracted_ids.sql", extracted=self.extracted))

    def prepare_chunk(self, frame: pd.DataFrame) -> PreparedChunk | None:
        """Serialise one transformed chunk for COPY (Python only: it runs while the writer thread
        uses the connection, so it does not touch it)."""
        import numpy as np

        if frame.empty:
            return None
        payload = copy_bytes(frame, self.data_columns, (self.extracted_at, self.dag_run_id), self._encoding)
        hashes = np.unique(np.fromiter(map(hash, frame["id"]), dtype=np.int64, count=len(frame)))
        return PreparedChunk(payload=payload, rows=len(frame), id_hashes=hashes)

    def load_chunk(self, frame: pd.DataFrame) -> ChunkResult:
        """Stage one transformed chunk and upsert it (or COPY it, on the direct path)."""
        prepared = self.prepare_chunk(frame)
        if prepared is None:
            return ChunkResult(0, 0)
        return self.write_chunk(prepared)

    def write_chunk(self, prepared: PreparedChunk) -> ChunkResult:
        """The database side of one chunk; returns rows staged and rows written."""
        if self.direct and self._seen_before(prepared.id_hashes):
            self._leave_direct_path()
        if self.direct:
            self._copy(self.target, prepared.payload)
            self._remember(prepared.id_hashes)
            self._copied_directly += prepared.rows
            result = ChunkResult(staged=prepared.rows, upserted=prepared.rows)
        else:
            result = self._upsert(prepared)
        self.staged += result.staged
        self.upserted += result.upserted
        return result

    def _copy(self, table, payload: io.BytesIO) -> None:
        from psycopg2 import sql

        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        with self.conn.cursor() as cur:
            copy = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(table=table, columns=column_list)
            # psycopg2 reads the file in `size` pieces, one libpq call each.
            cur.copy_expert(copy.as_string(cur), payload, size=_COPY_READ_SIZE)

    def _upsert(self, prepared: PreparedChunk) -> ChunkResult:
        from psycopg2 import sql

        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        assignments = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in self.columns if c != "id"
        )
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("TRUNCATE {}").format(self.stage))
        self._copy(self.stage, prepared.payload)
        with self.conn.cursor() as cur:
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
        return ChunkResult(staged=prepared.rows, upserted=upserted)

    def _seen_before(self, hashes) -> bool:
        """Whether any of the chunk's Ids (by hash) was in an earlier chunk. A hash collision only
        sends the load onto the guarded path, which is correct for any input."""
        import numpy as np

        seen = self._seen_hashes
        if not len(seen) or not len(hashes):
            return False
        positions = np.searchsorted(seen, hashes).clip(max=len(seen) - 1)
        return bool((seen[positions] == hashes).any())

    def _remember(self, hashes) -> None:
        import numpy as np

        # Two sorted runs: the stable sort (timsort) merges them in linear time. 8 bytes per Id.
        merged = np.concatenate((self._seen_hashes, hashes))
        merged.sort(kind="stable")
        self._seen_hashes = merged

    def _leave_direct_path(self) -> None:
        log.warning(
            "%s: an Id came back in two chunks of one extraction; loading the rest through the "
            "staging table and the guarded upsert, which keeps the newest version",
            self.spec.name,
        )
        self._create_work_tables()
        with self.conn.cursor() as cur:
            cur.execute(sql_template("record_copied_ids.sql", extracted=self.extracted, target=self.target))
        self.direct = False
        self._seen_hashes = None

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
        """Guarded path: extracted Ids not in the table at their extracted SystemModstamp or newer."""
        if self.direct:
            raise RuntimeError("the direct path keeps no Id list; use verification_problem()")
        with self.conn.cursor() as cur:
            cur.execute(sql_template("verify_load.sql", extracted=self.extracted, target=self.target))
            return [row[0] for row in cur.fetchall()]

    def verification_problem(self) -> str | None:
        """What is missing from the table after the load, or None when everything extracted is there.

        Guarded path: every extracted Id must be in the table at its extracted SystemModstamp or a
        newer one. Direct path: the table was empty, so it must hold exactly the rows COPYed.
        """
        table = f"salesforce.{self.spec.table}"
        if self.direct:
            with self.conn.cursor() as cur:
                cur.execute(sql_template("count_rows.sql", target=self.target))
                (present,) = cur.fetchone()
            if present == self._copied_directly:
                return None
            return f"{table} holds {present} rows after COPYing {self._copied_directly} into it while it was empty"
        missing = self.unverified_ids()
        if not missing:
            return None
        return (
            f"{len(missing)}+ extracted records are not in {table} at their extracted SystemModstamp or "
            f"newer (e.g. {missing[:5]})"
        )

    def mark_missing_as_deleted(self, extraction_started_at: datetime) -> int:
        """Full refresh: flag rows whose Id Salesforce no longer has at all."""
        if self.direct:
            return 0  # the table was empty: every row in it was just extracted
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
        if self.direct:
            return self._copied_directly
        with self.conn.cursor() as cur:
            cur.execute(sql_template("count_extracted_ids.sql", extracted=self.extracted))
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
