"""One object's load in one run: the way into its table, chosen here and only here, and the
transaction around it.

Two ways in, chosen under the object's lock when the load begins:

* **direct** (`direct_copy`), when the table is empty, as on a first load: each chunk is COPYed
  straight into it. Nothing to guard, nothing to mark deleted.
* **guarded** (`staging` + `guarded_upsert`), when it holds rows: each chunk is COPYed into a
  staging table and applied by one set-based upsert that keeps the newest SystemModstamp, and
  the extracted Ids are noted for verification and for marking rows Salesforce no longer has.

A chunk carrying an Id the direct path already copied (which a single query should never
return) moves the rest of the load onto the guarded path before that chunk is written.

The whole load is one transaction, committed by the caller at the end: nothing reaches other
sessions until `commit()`, so a failed run leaves the warehouse as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from salesforce_pipeline.conversions import valid_ids
from salesforce_pipeline.direct_copy import DirectCopy
from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.guarded_upsert import GuardedUpsert
from salesforce_pipeline.load_target import LoadTarget, PreparedChunk
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.sql_files import sql_template
from salesforce_pipeline.transform import Reject
from salesforce_pipeline.warehouse import Waits, lock_object

if TYPE_CHECKING:
    import pandas as pd
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)


class DataLossDetected(SalesforcePipelineError):
    """Extracted records are not in Postgres after the load; the transaction is rolled back."""

    retryable = True


class ObjectLoad:
    """One object's load in one run: `begin()`, then chunks and rejects, then verification and
    (on a full refresh) marking rows Salesforce no longer has, then `commit()` or `rollback()`."""

    def __init__(
        self,
        conn: PgConnection,
        spec: ObjectSpec,
        columns: Sequence[str],
        *,
        dag_run_id: str,
        extracted_at: datetime,
        schema: str,
        waits: Waits | None = None,
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.target = LoadTarget(
            conn, spec, columns, schema=schema, dag_run_id=dag_run_id, extracted_at=extracted_at
        )
        self.table_name = self.target.table_name  # what the object's lock is named after
        self.waits = waits or Waits()
        self.staged = 0  # rows written by this load, either way
        self.upserted = 0
        self._way: DirectCopy | GuardedUpsert | None = None

    @property
    def mode(self) -> str:
        """The way into the table the load is on: "direct" or "guarded"."""
        return self._chosen.mode

    @property
    def _chosen(self) -> DirectCopy | GuardedUpsert:
        if self._way is None:
            raise RuntimeError("ObjectLoad.begin() chooses the way into the table; call it first")
        return self._way

    def begin(self) -> None:
        """Wait for any other load of this object, then choose the way into its table."""
        with self.conn.cursor() as cur:
            lock_object(cur, self.table_name, self.waits.object_lock_wait, self.waits.lock_timeout)
        target = self.target
        ((empty,),) = target.query("target_is_empty.sql")
        target.run("create_rejected_ids.sql", rejected=target.rejected)
        if empty:
            log.info(
                "%s: %s is empty, so chunks are COPYed straight into it", self.spec.name, self.table_name
            )
            self._way = DirectCopy(target)
        else:
            self._way = GuardedUpsert.begin(target)

    def prepare_chunk(self, frame: pd.DataFrame) -> PreparedChunk | None:
        """Serialise one transformed chunk for COPY (None when it has no rows). It does not touch
        the connection, so it runs while the writer thread writes the previous chunk."""
        return self.target.prepare(frame)

    def write_chunk(self, prepared: PreparedChunk) -> int:
        """The database side of one chunk; returns the rows written."""
        if isinstance(self._way, DirectCopy) and self._way.repeats_an_id(prepared):
            log.warning(
                "%s: an Id came back in two chunks of one extraction; loading the rest through the "
                "staging table and the guarded upsert, which keeps the newest version",
                self.spec.name,
            )
            self._way = GuardedUpsert.after_direct_copy(self.target)
        written = self._chosen.write(prepared)
        self.staged += prepared.rows
        self.upserted += written
        return written

    def write_rejects(self, rejects: Sequence[Reject]) -> None:
        """Keep the rejected records in the schema's load_rejects, with why, and note their Ids."""
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
                sql_template("insert_reject.sql", schema=sql.Identifier(self.target.schema)),
                [
                    (self.target.dag_run_id, self.spec.name, r.record_id, r.reason, r.raw_record)
                    for r in rejects
                ],
            )
            if ids:
                execute_values(
                    cur, sql_template("record_rejected_ids.sql", rejected=self.target.rejected), ids
                )

    def verification_problem(self) -> str | None:
        """What is missing from the table after the load, or None when everything extracted is there.

        Guarded: every extracted Id must be in the table at its extracted SystemModstamp or a
        newer one. Direct: the table was empty, so it must hold exactly the rows COPYed.
        """
        return self._chosen.verification_problem()

    def mark_missing_as_deleted(self, extraction_started_at: datetime) -> int:
        """Full refresh: flag rows whose Id Salesforce no longer has at all; returns how many."""
        return self._chosen.mark_missing_as_deleted(extraction_started_at)

    def extracted_id_count(self) -> int:
        """Distinct Ids loaded by this run (rejected records are not among them)."""
        return self._chosen.extracted_id_count()

    def count_live_rows(self) -> int:
        """Rows of the table not marked deleted, as this transaction sees them."""
        ((count,),) = self.target.query("count_live_rows.sql")
        return count

    def commit(self) -> None:
        """Make the load visible to other sessions, and release the object's lock."""
        self.conn.commit()

    def rollback(self) -> None:
        """Undo everything the load wrote, and release the object's lock."""
        self.conn.rollback()
