"""A load's progress in the warehouse, so that a retried or rerun task resumes where it stopped.

One checkpoint per object and DAG run (`load_checkpoint`), with one row per slice
(`load_checkpoint_slice`: its bounds, records staged, whether it is done, its Bulk job and the
locator or cursor to go on from). Each slice's rows wait in an UNLOGGED table of the org's
schema until the apply moves them into the target; a slice's rows and its progress are committed
together, so the checkpoint never claims a row the stage does not hold.

A first load (an empty table that can be swapped, see `table_swap`) of several slices skips the
stages: every slice but the one reaching up to now COPYs straight into the table's successor,
LOGGED, and nothing is copied twice. Their SystemModstamp bounds are disjoint, so no Id is in
two of them, and a slice read again from its start deletes exactly its own rows. The slice
reaching up to now, which can hold a newer version of a record another slice has, is staged and
merged at the end (`slice_merge`).

An attempt owns the checkpoint (`owner_audit_id`): every staging transaction first reads the
owner FOR SHARE and stops when it is no longer this attempt, so a frozen worker that wakes up
cannot add rows behind a later try's back.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import table_swap
from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.slice_plan import SlicePlan
from salesforce_pipeline.sql_files import read_sql, sql_template

if TYPE_CHECKING:
    from collections.abc import Sequence

    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.load_target import LoadTarget

log = logging.getLogger(__name__)


class CheckpointTakenOver(SalesforcePipelineError):
    """A later attempt claimed this load's checkpoint: this one must stage nothing more."""

    retryable = False


@dataclass
class SliceState:
    """One slice as the checkpoint has it."""

    plan: SlicePlan
    staged: int = 0  # rows in the slice's stage table (rejected records are not among them)
    done: bool = False
    bulk_job_id: str | None = None
    resume_at: str | None = None
    attempts: int = 0
    last_id: str | None = None  # a REST slice's last committed record (it reads in Id order)


def fingerprint(mode: str, window: Any, columns: Sequence[str]) -> str:
    """What a checkpoint is only good for: the same mode, window and columns."""
    text = json.dumps([mode, window.describe(), list(columns)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Checkpoint:
    """A load's checkpoint, its slices and the names of its stage tables."""

    def __init__(
        self,
        conn: PgConnection,
        target: LoadTarget,
        checkpoint_id: int,
        *,
        owner: int,
        method: str,
        extracted_at: datetime,
        slices: list[SliceState],
        into_successor: bool = False,
    ) -> None:
        self.conn = conn
        self.target = target
        self.id = checkpoint_id
        self.owner = owner
        self.method = method
        self.extracted_at = extracted_at
        self.slices = slices
        self.into_successor = into_successor

    # ------------------------------------------------------------------ names
    def _name(self, kind: str, suffix: str = "") -> Any:
        from psycopg2 import sql

        return sql.Identifier(self.target.schema, f"_{kind}_{self.target.spec.table}_{self.id}{suffix}")

    def stage_table(self, slice_no: int) -> Any:
        """The UNLOGGED table holding one slice's rows."""
        return self._name("stage", f"_{slice_no}")

    def in_stage(self, state: SliceState) -> bool:
        """Whether the slice stages into a stage table of its own (else into the successor)."""
        return not self.into_successor or state.plan.reaches_now

    def destination(self, state: SliceState) -> Any:
        """The table a slice COPYs its rows into: its stage, or the successor."""
        return self.stage_table(state.plan.number) if self.in_stage(state) else self.merged_table

    @property
    def rejects_table(self) -> Any:
        """The UNLOGGED table holding the load's rejected records."""
        return self._name("rejects")

    @property
    def merged_table(self) -> Any:
        """The table the apply reads: every slice's rows, one per Id (UNLOGGED, or on a first load
        the table's successor, which the apply may swap in under the table's own name). With
        `into_successor`, the slices COPY into it as they are read."""
        return self._name("merged")

    def _tables(self) -> list[Any]:
        return [
            *(self.stage_table(s.plan.number) for s in self.slices),
            self.rejects_table,
            self.merged_table,
        ]

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        conn: PgConnection,
        target: LoadTarget,
        *,
        print_: str,
        method: str,
        method_requested: bool,
        owner: int,
    ) -> Checkpoint:
        """This run's checkpoint for the object, claimed by attempt ``owner``: the one an earlier
        attempt left (same fingerprint and, when asked for, method), or a new one. A checkpoint that
        no longer fits is dropped with its staged rows. Commits."""
        schema, spec = target.schema, target.spec
        key = {"sobject": spec.name, "dag_run_id": target.dag_run_id}
        with conn.cursor() as cur:
            cur.execute(_sql("checkpoint_find.sql", schema), key)
            row = cur.fetchone()
        if row is not None:
            checkpoint_id, old_print, old_method, extracted_at, into_successor = row
            fits = old_print == print_ and (old_method == method or not method_requested)
            found = cls(
                conn,
                target,
                checkpoint_id,
                owner=owner,
                method=old_method,
                extracted_at=extracted_at,
                slices=[],
                into_successor=into_successor,
            )
            found.slices = found._read_slices()
            if fits:
                found._claim()
                return found
            log.info(
                "%s: the checkpoint of an earlier attempt does not fit this one; starting over", spec.name
            )
            found.discard()
        with conn.cursor() as cur:
            values = {
                **key,
                "fingerprint": print_,
                "method": method,
                "extracted_at": target.extracted_at,
                "owner": owner,
            }
            cur.execute(_sql("checkpoint_create.sql", schema), values)
            (checkpoint_id,) = cur.fetchone()
        conn.commit()
        return cls(
            conn,
            target,
            checkpoint_id,
            owner=owner,
            method=method,
            extracted_at=target.extracted_at,
            slices=[],
        )

    @property
    def planned(self) -> bool:
        """Whether the slices were planned (by this attempt or an earlier one)."""
        return bool(self.slices)

    def _read_slices(self) -> list[SliceState]:
        with self.conn.cursor() as cur:
            cur.execute(_sql("checkpoint_slices.sql", self.target.schema), {"checkpoint_id": self.id})
            rows = cur.fetchall()
        return [
            SliceState(
                SlicePlan(number, lower, upper, expected), staged, done, job, resume_at, attempts, last_id
            )
            for number, lower, upper, expected, staged, done, job, resume_at, attempts, last_id in rows
        ]

    def _claim(self) -> None:
        """Own the checkpoint; a slice whose stage lost rows (a server crash empties UNLOGGED
        tables) starts over, and so do the slices of a successor that is gone (dropped by hand)."""
        with self.conn.cursor() as cur:
            cur.execute(
                _sql("checkpoint_claim.sql", self.target.schema),
                {"checkpoint_id": self.id, "owner": self.owner},
            )
        self.conn.commit()
        if self.into_successor and not self._successor_exists():
            log.warning("%s: the table's successor is gone; reading its slices again", self.target.spec.name)
            table_swap.create_successor(self.target, self.merged_table)
            for state in self.slices:
                if not self.in_stage(state):
                    self.reset(self.conn, state)
            self.conn.commit()
        for state in self.slices:
            if self.in_stage(state) and state.staged and self.rows_in_stage(state) != state.staged:
                log.warning(
                    "%s: slice %d lost its staged rows (server restart?); reading it again",
                    self.target.spec.name,
                    state.plan.number,
                )
                self.reset(self.conn, state)
                self.conn.commit()
        self.conn.commit()  # the counts' snapshot and locks: the slices TRUNCATE these tables

    def _successor_exists(self) -> bool:
        with self.conn.cursor() as cur:
            cur.execute(read_sql("table_exists.sql"), {"table": self.merged_table.as_string(cur)})
            return bool(cur.fetchone()[0])

    def plan(self, slices: Sequence[SlicePlan]) -> None:
        """Record the slices and create the tables they stage into. Commits."""
        target = self.target
        with self.conn.cursor() as cur:
            for plan in slices:
                cur.execute(
                    _sql("checkpoint_add_slice.sql", target.schema),
                    {
                        "checkpoint_id": self.id,
                        "slice_no": plan.number,
                        "lower_bound": plan.lower,
                        "upper_bound": plan.upper,
                        "expected": plan.expected,
                    },
                )
        self.slices = [SliceState(plan) for plan in slices]
        self.into_successor = len(slices) > 1 and _first_load_into_successor(target)
        if self.into_successor:
            table_swap.create_successor(target, self.merged_table)
            with self.conn.cursor() as cur:
                cur.execute(_sql("checkpoint_into_successor.sql", target.schema), {"checkpoint_id": self.id})
        for state in filter(self.in_stage, self.slices):
            target.run(
                "create_slice_stage.sql",
                stage=self.stage_table(state.plan.number),
                columns=target.column_list(),
            )
        target.run("create_stage_rejects.sql", rejects=self.rejects_table)
        self.conn.commit()

    # ------------------------------------------------------------------ staging
    def fence(self, cur: Any) -> None:
        """First in every staging transaction: stop if a later attempt owns the checkpoint."""
        cur.execute(_sql("checkpoint_fence.sql", self.target.schema), {"checkpoint_id": self.id})
        row = cur.fetchone()
        if row is None or row[0] != self.owner:
            raise CheckpointTakenOver(
                f"{self.target.spec.name}: a later attempt took over this load's checkpoint (or it expired), "
                "so this attempt stages nothing more"
            )

    def save(self, cur: Any, state: SliceState) -> None:
        """Write a slice's progress (in the transaction that staged the rows it counts)."""
        cur.execute(
            _sql("checkpoint_progress.sql", self.target.schema),
            {
                "checkpoint_id": self.id,
                "slice_no": state.plan.number,
                "staged": state.staged,
                "done": state.done,
                "bulk_job_id": state.bulk_job_id,
                "resume_at": state.resume_at,
                "attempts": state.attempts,
                "last_id": state.last_id,
            },
        )

    def reset(self, conn: PgConnection, state: SliceState) -> None:
        """Forget what a slice staged, to read it again from its start (the caller commits)."""
        plan = state.plan
        with conn.cursor() as cur:
            self.fence(cur)
            if self.in_stage(state):
                statement = sql_template(
                    "reset_slice_stage.sql", stage=self.stage_table(plan.number), rejects=self.rejects_table
                )
            else:
                statement = sql_template(
                    "reset_successor_slice.sql", successor=self.merged_table, rejects=self.rejects_table
                )
            cur.execute(statement, {"slice_no": plan.number, "lower": plan.lower, "upper": plan.upper})
            state.staged, state.done, state.resume_at, state.last_id = 0, False, None, None
            self.save(cur, state)

    def rows_in_stage(self, state: SliceState) -> int:
        """Rows a slice's stage table holds now."""
        ((count,),) = self.target.query("count_stage.sql", stage=self.stage_table(state.plan.number))
        return count

    def rejected_count(self) -> int:
        """Records the slices could not convert (kept for load_rejects)."""
        ((count,),) = self.target.query("count_stage.sql", stage=self.rejects_table)
        return count

    # ------------------------------------------------------------------ the end
    def delete(self) -> None:
        """Drop the checkpoint and its tables (in the caller's transaction: the apply's).

        A successor swapped in is the target now, under the target's name: dropping the merged
        stage's name (IF EXISTS) finds nothing."""
        from psycopg2 import sql

        with self.conn.cursor() as cur:
            cur.execute(_sql("checkpoint_delete.sql", self.target.schema), {"checkpoint_id": self.id})
        self.target.run("drop_tables.sql", tables=sql.SQL(", ").join(self._tables()))

    def discard(self) -> None:
        """Drop the checkpoint and its staged rows now. Commits."""
        self.delete()
        self.conn.commit()


def _first_load_into_successor(target: LoadTarget) -> bool:
    """Whether the target is empty and can be swapped for a successor (see `table_swap`)."""
    ((empty,),) = target.query("target_is_empty.sql")
    return empty and not table_swap.blockers(target)


def _sql(name: str, schema: str) -> Any:
    from psycopg2 import sql

    return sql_template(name, schema=sql.Identifier(schema))


def expire_stale(conn: PgConnection, target: LoadTarget, ttl_hours: int) -> int:
    """Drop the object's checkpoints (and staged rows) untouched for ``ttl_hours``. Commits."""
    with conn.cursor() as cur:
        cur.execute(
            _sql("checkpoint_stale.sql", target.schema), {"sobject": target.spec.name, "ttl_hours": ttl_hours}
        )
        stale = [row[0] for row in cur.fetchall()]
    for checkpoint_id in stale:
        expired = Checkpoint(
            conn, target, checkpoint_id, owner=0, method="", extracted_at=target.extracted_at, slices=[]
        )
        expired.slices = expired._read_slices()
        expired.delete()
        log.info(
            "%s: dropped checkpoint %d and its staged rows, untouched for %d hours",
            target.spec.name,
            checkpoint_id,
            ttl_hours,
        )
    conn.commit()
    return len(stale)
