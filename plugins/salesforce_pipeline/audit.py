"""The audit trail: one row per attempt of one object's load, in `<org schema>.load_audit`.

An attempt's row is written before its first call to Salesforce and closed with its outcome,
through a connection of its own (autocommit), so that:

* a failure anywhere (login, describe, the budget check, the load) leaves a `failed` row, and a
  rolled-back load does not take its audit row with it;
* a note made in the middle of a load (the Bulk 2.0 job it created) is committed at once, while
  the load's own transaction is still open on the other connection;
* the attempt holds a session-level advisory lock for as long as its session lives. A worker
  that is killed loses its session and the lock, so the next run of the object can tell its
  `running` row is abandoned and close it, with the reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.sql_files import read_sql, sql_template

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)

ABANDONED = (
    "attempt {dag_run_id} (try {try_number}) ended without recording its outcome: its worker or "
    "its database session died while it ran. Closed by the next run of {sobject} ({closed_by})."
)


def side_connection(conn: PgConnection) -> PgConnection:
    """A second, autocommit session to the same database as `conn`, with the same parameters."""
    import psycopg2

    parameters = dict(conn.info.dsn_parameters)
    if conn.info.password:
        parameters["password"] = conn.info.password
    side = psycopg2.connect(**parameters)
    side.autocommit = True
    return side


@dataclass
class Attempt:
    """One running attempt's audit row, and the session that holds its lock."""

    conn: PgConnection
    schema: str
    audit_id: int
    sobject: str
    dag_run_id: str
    mode: str = "incremental"

    @property
    def _task(self) -> dict[str, Any]:
        """What identifies this attempt's task: its run, its object, and whether it is a sweep."""
        return {
            "dag_run_id": self.dag_run_id,
            "sobject": self.sobject,
            "sweep": self.mode == "sweep",
            "audit_id": self.audit_id,
        }

    def _sql(self, name: str) -> Any:
        return _sql(name, self.schema)

    @property
    def _lock_key(self) -> dict[str, Any]:
        return {"schema": self.schema, "audit_id": self.audit_id}

    def finish(self, **values: Any) -> None:
        """Record the outcome and release the attempt's lock."""
        with self.conn.cursor() as cur:
            cur.execute(self._sql("audit_finish.sql"), {"audit_id": self.audit_id, **values})
            cur.execute(read_sql("attempt_unlock.sql"), self._lock_key)

    def fail_before_start(self, error: str) -> None:
        """Close an attempt that failed before it could begin (settings, connections)."""
        self.finish(
            method=None,
            extracted=0,
            upserted=0,
            deleted=0,
            rejected=0,
            api_calls=0,
            api_usage_after=None,
            salesforce_count=None,
            count_difference=None,
            count_note=None,
            live_salesforce=None,
            live_warehouse=None,
            live_difference=None,
            finished_at=datetime.now(UTC),
            status="failed",
            error=error[:2000],
        )

    def record_bulk_job(self, job_id: str, query: str, created_at: datetime) -> None:
        """Store the Bulk 2.0 job this attempt created, so that a retry can resume it."""
        with self.conn.cursor() as cur:
            cur.execute(
                self._sql("audit_bulk_job.sql"),
                {"audit_id": self.audit_id, "job_id": job_id, "query": query, "created_at": created_at},
            )

    def close_abandoned(self) -> int:
        """Close the `running` rows of this object whose attempt is gone; returns how many."""
        closed = 0
        with self.conn.cursor() as cur:
            cur.execute(
                self._sql("running_attempts.sql"), {"sobject": self.sobject, "audit_id": self.audit_id}
            )
            for audit_id, dag_run_id, try_number, _started in cur.fetchall():
                cur.execute(read_sql("attempt_is_gone.sql"), {"schema": self.schema, "audit_id": audit_id})
                if not cur.fetchone()[0]:
                    continue  # its session still holds the lock: that attempt is alive
                error = ABANDONED.format(
                    dag_run_id=dag_run_id,
                    try_number=try_number if try_number is not None else "?",
                    sobject=self.sobject,
                    closed_by=self.dag_run_id,
                )
                cur.execute(
                    self._sql("close_abandoned_attempt.sql"),
                    {"audit_id": audit_id, "closed_at": datetime.now(UTC), "error": error},
                )
                cur.execute(read_sql("attempt_unlock.sql"), {"schema": self.schema, "audit_id": audit_id})
                closed += cur.rowcount if cur.rowcount > 0 else 0
                log.warning("%s: audit row %d closed as failed: %s", self.sobject, audit_id, error)
        return closed

    def end_earlier_tries(self, wait_seconds: float = 10.0) -> int:
        """End the database sessions of this task's earlier tries still recorded as running.

        Airflow starts a try only after it gave up on the one before (its worker died, or froze
        and missed its heartbeats). A frozen worker's sessions still hold the object's lock and
        an open transaction, so this try would wait for them; ending them releases both at once,
        and the frozen worker, should it wake, finds its connection gone. Returns how many tries.
        """
        with self.conn.cursor() as cur:
            cur.execute(self._sql("earlier_tries.sql"), self._task)
            tries = cur.fetchall()
            for audit_id, try_number, started_at, loader_pid, audit_pid in tries:
                pids = [pid for pid in (loader_pid, audit_pid) if pid]
                cur.execute(read_sql("terminate_sessions.sql"), {"pids": pids, "started_at": started_at})
                ended = [pid for pid, done in cur.fetchall() if done]
                # Its slices' own connections (slice_runner), named after its audit row.
                cur.execute(read_sql("terminate_named_sessions.sql"), {"name": slice_session_name(audit_id)})
                ended += [pid for pid, done in cur.fetchall() if done]
                if ended:
                    log.warning(
                        "%s: ended the database sessions of try %s (audit row %d), which Airflow gave up on: "
                        "its worker stopped answering while it held the load",
                        self.sobject,
                        try_number if try_number is not None else "?",
                        audit_id,
                    )
                    deadline = time.monotonic() + wait_seconds
                    while time.monotonic() < deadline:
                        cur.execute(read_sql("sessions_alive.sql"), {"pids": ended})
                        if cur.fetchone()[0] == 0:
                            break
                        time.sleep(0.1)
        return len(tries)

    def superseded(self, conn: PgConnection) -> bool:
        """Whether a later try of this task has started; asked on the load's own connection,
        inside its transaction, just before it commits."""
        with conn.cursor() as cur:
            cur.execute(self._sql("attempt_superseded.sql"), self._task)
            return bool(cur.fetchone()[0])

    def close(self) -> None:
        """Close the attempt's own audit connection."""
        self.conn.close()


def slice_session_name(audit_id: int) -> str:
    """The application_name of the connections an attempt's slices stage through, so that a
    later try of the task can end them as it ends the attempt's own sessions."""
    return f"salesforce_to_postgres slices of load_audit {audit_id}"


class AttemptSuperseded(SalesforcePipelineError):
    """A later try of the task started while this one was stalled: it must not commit."""

    retryable = False


def commit_if_current(attempt: Attempt, loader: Any) -> None:
    """Commit the load's transaction unless a later try of its task has started (the fence
    against a worker that froze and woke up); the check runs inside that transaction."""
    if attempt.superseded(loader.conn):
        raise AttemptSuperseded(
            f"{attempt.sobject}: a later try of this task started while this one was stalled (its worker "
            "froze or lost its heartbeat), so this one commits nothing; the later try loads the window"
        )
    loader.commit()


def _sql(name: str, schema: str) -> Any:
    from psycopg2 import sql

    return sql_template(name, schema=sql.Identifier(schema))


def start_attempt(conn: PgConnection, schema: str, **values: Any) -> Attempt:
    """Write the attempt's `running` row in `schema` on a side session of `conn` and take its lock.

    `values` are the columns of include/sql/audit_start.sql (`try_number` may be None).
    """
    values.setdefault("try_number", None)
    side = side_connection(conn)
    values["loader_pid"], values["audit_pid"] = conn.info.backend_pid, side.info.backend_pid
    try:
        with side.cursor() as cur:
            cur.execute(_sql("audit_start.sql", schema), values)
            (audit_id,) = cur.fetchone()
            cur.execute(read_sql("attempt_lock.sql"), {"schema": schema, "audit_id": audit_id})
    except BaseException:
        side.close()
        raise
    return Attempt(
        conn=side,
        schema=schema,
        audit_id=audit_id,
        sobject=values["sobject"],
        dag_run_id=values["dag_run_id"],
        mode=values["mode"],
    )


def has_loaded_successfully(conn: PgConnection, schema: str, sobject: str) -> bool:
    """Whether any load of ``sobject`` in ``schema`` has succeeded."""
    with conn.cursor() as cur:
        cur.execute(_sql("last_success.sql", schema), {"sobject": sobject})
        (finished,) = cur.fetchone()
    conn.commit()
    return finished is not None
