"""The apply: one short transaction that moves a load's staged rows into its table.

Everything slow happened before it: reading Salesforce, converting, COPYing into the slices'
stage tables, merging them into one stage with each Id once (`checkpoint.merge`). The apply
takes the object's lock and, in one transaction, writes the rows, moves the rejected records
to `load_rejects`, verifies, marks rows Salesforce no longer has (full refresh), reconciles
and deletes the checkpoint; the caller commits it. Other runs of the object wait only for this.

Three ways in, chosen under the lock:

* the table is **empty** (a first load) and the merged stage is its successor, built and
  indexed beside it (`checkpoint.merge`, `table_swap`): the successor is **swapped** in, a
  catalog change; the table must then hold exactly the merged rows;
* it is empty but cannot be swapped (a view on it, say): the merged rows are **INSERTed** as
  they are, the secondary indexes built after them;
* it **holds rows**: the guarded upsert keeps the newest SystemModstamp (`guarded_upsert`), every
  merged Id must be in the table at its stamp or a newer one, and a full refresh marks the rows
  whose Id is not among them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import table_swap
from salesforce_pipeline.guarded_upsert import upsert_from
from salesforce_pipeline.load_target import LoadTarget
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.sql_files import read_sql, sql_template
from salesforce_pipeline.warehouse import Waits, lock_object

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)


class StagedLoad:
    """`begin()` (the lock), `apply()`, the checks, then `commit()` or `rollback()`."""

    def __init__(
        self,
        conn: PgConnection,
        spec: ObjectSpec,
        columns: Sequence[str],
        *,
        dag_run_id: str,
        extracted_at: datetime,
        schema: str,
        merged: Any,
        rejects: Any,
        waits: Waits | None = None,
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.target = LoadTarget(
            conn, spec, columns, schema=schema, dag_run_id=dag_run_id, extracted_at=extracted_at
        )
        self.merged = merged
        self.rejects = rejects
        self.waits = waits or Waits()
        self.was_empty = False
        # Why an empty table is not swapped (None when it is), for the task log.
        self.swap_refused: str | None = None
        self.upserted = 0
        self.lock_seconds = 0.0
        self._locked_at: float | None = None
        # Seconds each step of the apply took, for the task log: where the lock's time goes.
        self.timings: dict[str, float] = {}
        self._staged: tuple[int, int] | None = None

    @property
    def mode(self) -> str:
        """How the rows went in: "swap" or "insert" into an empty table, or "guarded" upsert."""
        if not self.was_empty:
            return "guarded"
        return "insert" if self.swap_refused else "swap"

    def staged_counts(self) -> tuple[int, int]:
        """``(deleted, rows)`` of the merged stage: records flagged deleted, and Ids in all."""
        if self._staged is None:  # the merged stage does not change once built
            ((deleted, rows),) = self.target.query("count_deleted_in_stage.sql", stage=self.merged)
            self._staged = (deleted, rows)
        return self._staged

    def begin(self) -> None:
        """Wait for any other load of this object (at most ``object_lock_wait_seconds``)."""
        with self.conn.cursor() as cur:
            lock_object(cur, self.target.table_name, self.waits.object_lock_wait, self.waits.lock_timeout)
        self._locked_at = time.monotonic()
        ((self.was_empty,),) = self.target.query("target_is_empty.sql")
        if self.was_empty:
            self._check_swap()

    def _check_swap(self) -> None:
        """An empty table: lock it against every other session (writers that do not take the
        object's lock included), look again, and see whether the successor can replace it."""
        started = time.monotonic()
        self.staged_counts()  # a swap takes the merged stage's name away
        self.target.run("lock_table_exclusive.sql")
        ((self.was_empty,),) = self.target.query("target_is_empty.sql")
        if self.was_empty:
            self.swap_refused = table_swap.swap_refusal(self.target, self.merged)
        self.timings["swap check"] = time.monotonic() - started
        if self.was_empty and self.swap_refused:
            log.info("%s: not swapping the empty table in: %s", self.spec.name, self.swap_refused)

    def apply(self) -> int:
        """Write the merged rows and the rejected records; returns the rows written."""
        from psycopg2 import sql

        target = self.target
        target.run("create_rejected_ids.sql", rejected=target.rejected)
        target.run(
            "apply_stage_rejects.sql",
            {"dag_run_id": target.dag_run_id, "sobject": self.spec.name},
            schema=sql.Identifier(target.schema),
            rejects=self.rejects,
            rejected=target.rejected,
        )
        started = time.monotonic()
        if self.mode == "swap":
            table_swap.swap(target, self.merged)
            self.upserted = self.staged_counts()[1]
        elif self.was_empty:
            self.upserted = self._insert_then_index()
        else:
            self.upserted = upsert_from(target, self.merged)
        self.timings["write"] = time.monotonic() - started
        log.info(
            "%s: applied %d rows to %s (%s)", self.spec.name, self.upserted, target.table_name, self.mode
        )
        return self.upserted

    def _insert_then_index(self) -> int:
        """Into the empty table: its secondary indexes dropped, the rows inserted, the indexes
        built again from their own definitions, all in the apply's transaction (a failure puts
        everything back)."""
        from psycopg2 import sql

        target = self.target
        with self.conn.cursor() as cur:
            cur.execute(read_sql("secondary_indexes.sql"), {"table": target.table.as_string(cur)})
            indexes = cur.fetchall()
            for name, _definition, _comment in indexes:
                cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
        inserted = target.run("insert_from_stage.sql", stage=self.merged, columns=target.column_list())
        with self.conn.cursor() as cur:
            for name, definition, comment in indexes:
                cur.execute(definition)
                if comment is not None:
                    cur.execute(
                        sql_template("comment_on_index.sql", index=sql.SQL(name)), {"comment": comment}
                    )
        return inserted

    def verification_problem(self) -> str | None:
        """What is missing from the table after the apply, or None when every merged row is there."""
        started = time.monotonic()
        try:
            return self._verification_problem()
        finally:
            self.timings["verify"] = time.monotonic() - started

    def _verification_problem(self) -> str | None:
        target = self.target
        if self.was_empty:
            ((present,),) = target.query("count_rows.sql")
            _deleted, merged = self.staged_counts()
            if present == merged:
                return None
            return f"{target.table_name} holds {present} rows after inserting {merged} into it while it was empty"
        missing = [row[0] for row in target.query("verify_load.sql", extracted=self.merged)]
        if not missing:
            return None
        return (
            f"{len(missing)}+ extracted records are not in {target.table_name} at their extracted "
            f"SystemModstamp or newer (e.g. {missing[:5]})"
        )

    def mark_missing_as_deleted(self, extraction_started_at: datetime) -> int:
        """Full refresh: flag rows whose Id Salesforce no longer has at all; returns how many."""
        if self.was_empty:
            return 0  # every row in the table came from this load
        target = self.target
        return target.run(
            "mark_missing_deleted.sql",
            {
                "extracted_at": target.extracted_at,
                "dag_run_id": target.dag_run_id,
                "extraction_started_at": extraction_started_at,
            },
            extracted=self.merged,
            rejected=target.rejected,
        )

    def extracted_id_count(self) -> int:
        """Distinct Ids loaded by this run (rejected records are not among them)."""
        return self.staged_counts()[1]

    def count_live_rows(self) -> int:
        """Rows of the table not marked deleted, as this transaction sees them."""
        ((count,),) = self.target.query("count_live_rows.sql")
        return count

    def commit(self) -> None:
        """Make the load visible to other sessions, and release the object's lock."""
        self.conn.commit()
        self._released()

    def rollback(self) -> None:
        """Undo the apply, and release the object's lock."""
        self.conn.rollback()
        self._released()

    def _released(self) -> None:
        if self._locked_at is not None:
            self.lock_seconds = time.monotonic() - self._locked_at
            self._locked_at = None
