"""Load transformed chunks into Postgres: COPY into staging, one guarded upsert per chunk.

All SQL lives in `include/sql/`; table and column names are filled in with psycopg2's
`sql.Identifier`, never by pasting strings, and values always travel as query parameters.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.conversions import valid_ids
from salesforce_pipeline.copy_format import copy_bytes
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.sql_files import sql_template
from salesforce_pipeline.transform import Reject
from salesforce_pipeline.warehouse import Waits, lock_object

if TYPE_CHECKING:
    import pandas as pd
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)

LINEAGE_COLUMNS = ("_extracted_at", "_dag_run_id")
_COPY_READ_SIZE = 1 << 20


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
        schema: str,
        direct_when_empty: bool = True,
        waits: Waits | None = None,
    ) -> None:
        from psycopg2 import sql

        self.conn = conn
        self.spec = spec
        self.direct_when_empty = direct_when_empty  # False: always the guarded path (the bench)
        self.data_columns = list(columns)
        self.columns = [*self.data_columns, *LINEAGE_COLUMNS]
        self.dag_run_id = dag_run_id
        self.extracted_at = extracted_at
        self.schema = schema
        self.target = sql.Identifier(schema, spec.table)
        self.table_name = f"{schema}.{spec.table}"  # for lock names and messages
        self.stage = sql.Identifier(f"_stage_{spec.table}")
        self.extracted = sql.Identifier(f"_extracted_{spec.table}")
        self.rejected = sql.Identifier(f"_rejected_{spec.table}")
        self.waits = waits or Waits()
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
            lock_object(cur, self.table_name, self.waits.object_lock_wait, self.waits.lock_timeout)
            cur.execute(sql_template("target_is_empty.sql", target=self.target))
            self.direct = bool(cur.fetchone()[0]) and self.direct_when_empty
            cur.execute(sql_template("create_rejected_ids.sql", rejected=self.rejected))
        if self.direct:
            self._seen_hashes = np.empty(0, dtype=np.int64)
            log.info(
                "%s: %s is empty, so chunks are COPYed straight into it",
                self.spec.name,
                self.table_name,
            )
        else:
            self._create_work_tables()

    def _create_work_tables(self) -> None:
        from psycopg2 import sql

        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        with self.conn.cursor() as cur:
            cur.execute(
                sql_template("create_stage.sql", stage=self.stage, target=self.target, columns=column_list)
            )
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
        from psycopg2 import sql
        from psycopg2.extras import execute_values

        if not rejects:
            return
        # Only well-formed Ids of this object can name a row of the table.
        names_a_row = valid_ids([r.record_id for r in rejects], self.spec.key_prefix)
        ids = [(r.record_id,) for r, valid in zip(rejects, names_a_row, strict=True) if valid]
        with self.conn.cursor() as cur:
            execute_values(
                cur,
                sql_template("insert_reject.sql", schema=sql.Identifier(self.schema)),
                [(self.dag_run_id, self.spec.name, r.record_id, r.reason, r.raw_record) for r in rejects],
            )
            if ids:
                execute_values(cur, sql_template("record_rejected_ids.sql", rejected=self.rejected), ids)

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
        table = self.table_name
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
                sql_template(
                    "mark_missing_deleted.sql",
                    target=self.target,
                    extracted=self.extracted,
                    rejected=self.rejected,
                ),
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
