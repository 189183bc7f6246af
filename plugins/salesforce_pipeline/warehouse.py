"""The warehouse's shape and the pipeline's manners in it: bounded waits, and DDL only when needed.

Every statement the pipeline runs has a bounded wait: the session's `statement_timeout` and
`lock_timeout` come from the settings, and waiting for another run of the same object has its
own bound (`object_lock_wait_seconds`). Schema changes happen only when the catalog (read
without taking a lock) says something is missing, so a run with nothing to change never takes
an exclusive lock: a BI session's open transaction neither blocks it nor is blocked by it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.sql_files import read_sql, sql_template

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Written into the catalog (a comment on load_audit) by schema.sql; bump it with every change
#: to schema.sql, so existing warehouses get the change on their next run.
SCHEMA_VERSION = "salesforce_pipeline schema 7: a slice's last committed Id, to query on from it"
# A DDL statement that cannot get its lock within lock_timeout is tried again this many times,
# waiting a little longer each time, before the run gives up (and Airflow retries the task).
DDL_ATTEMPTS = 5


class WarehouseBusy(SalesforcePipelineError):
    """A lock the run needed was held by another session for longer than the configured wait."""

    retryable = True


class WarehouseTimeout(SalesforcePipelineError):
    """A statement ran longer than statement_timeout_seconds."""

    retryable = False


class WarehouseSchemaError(SalesforcePipelineError):
    """The target table was changed in a way the pipeline cannot load into; a person must fix it."""

    retryable = False


@dataclass(frozen=True)
class Waits:
    """The bounded waits, in seconds (defaults as in settings)."""

    lock_timeout: float = 10.0
    statement_timeout: float = 3600.0
    object_lock_wait: float = 3600.0
    # The longest a load's transaction may sit idle: a healthy load is idle between chunks and
    # while a Bulk job runs (bulk_max_wait_seconds); a stalled one is ended by Postgres after this.
    idle_in_transaction: float = 3900.0

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> Waits:
        """The waits the settings ask for."""
        return cls(
            lock_timeout=settings.lock_timeout_seconds,
            statement_timeout=settings.statement_timeout_seconds,
            object_lock_wait=settings.object_lock_wait_seconds,
            idle_in_transaction=max(settings.bulk_max_wait_seconds, settings.object_lock_wait_seconds) + 300,
        )

    def connect_options(self) -> str:
        """libpq `options` that set the session's timeouts at connect time.

        Server-side TCP keepalives end the session of a worker whose machine died or whose
        network is gone within about 60 s (its locks and transaction with it); a worker that is
        frozen but whose machine still answers is ended by the task's next try (audit.py).
        """
        return (
            f"-c lock_timeout={_ms(self.lock_timeout)} -c statement_timeout={_ms(self.statement_timeout)} "
            f"-c idle_in_transaction_session_timeout={_ms(self.idle_in_transaction)} "
            "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
        )


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def set_lock_timeout(cur: Any, seconds: float) -> None:
    """Bound this transaction's lock waits (the session's setting returns at commit)."""
    cur.execute(read_sql("set_lock_timeout.sql"), {"milliseconds": _ms(seconds)})


def lock_object(cur: Any, lock_name: str, wait_seconds: float, lock_timeout: float) -> None:
    """Take an object's transaction lock, waiting at most `wait_seconds` for another run."""
    set_lock_timeout(cur, wait_seconds)
    cur.execute(read_sql("lock_object.sql"), {"lock_name": lock_name})
    set_lock_timeout(cur, lock_timeout)


def translate(exc: BaseException, what: str, waits: Waits) -> BaseException:
    """A database error as a pipeline error that says what happened and what to do, or `exc`."""
    from psycopg2 import errors

    if isinstance(exc, errors.LockNotAvailable):
        return WarehouseBusy(
            f"{what}: another session held a lock this run needed for longer than the configured wait "
            f"(lock_timeout_seconds={waits.lock_timeout:g}, object_lock_wait_seconds="
            f"{waits.object_lock_wait:g}); nothing was changed and the task will be retried. If it "
            "keeps happening, look for long open transactions on the table (pg_stat_activity)."
        )
    if isinstance(exc, errors.DeadlockDetected):
        return WarehouseBusy(
            f"{what}: Postgres broke a deadlock with another session; the task will be retried."
        )
    if isinstance(exc, errors.QueryCanceled):
        return WarehouseTimeout(
            f"{what}: a statement ran longer than statement_timeout_seconds={waits.statement_timeout:g} and "
            "was cancelled; nothing was changed. Raise statement_timeout_seconds in Variable "
            "'salesforce_to_postgres' or look at the warehouse's load."
        )
    return exc


def run_ddl(conn: PgConnection, what: str, waits: Waits, step: Callable[[Any], T]) -> T:
    """Run `step` in its own transaction, again after a lock timeout, with growing pauses."""
    from psycopg2 import errors

    for attempt in range(DDL_ATTEMPTS):
        try:
            with conn.cursor() as cur:
                result = step(cur)
            conn.commit()
            return result
        except errors.LockNotAvailable as exc:
            conn.rollback()
            if attempt == DDL_ATTEMPTS - 1:
                raise translate(exc, what, waits) from None
            pause = min(30.0, 0.5 * 2**attempt)
            log.warning("%s: a lock was busy (%s); trying again in %.1f s", what, exc.pgerror or exc, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def _state_names(schema: str) -> dict[str, str]:
    # Schema names are validated identifiers (registry.SCHEMA_NAME), so plain dotted names are exact.
    return {table: f"{schema}.{table}" for table in ("account", "contact", "load_rejects", "load_audit")}


def schema_version(conn: PgConnection, schema: str) -> str | None:
    """The schema version recorded on ``<schema>.load_audit``, or None when it is not there."""
    with conn.cursor() as cur:
        cur.execute(read_sql("schema_state.sql"), _state_names(schema))
        (version,) = cur.fetchone()
    conn.commit()
    return version


def apply_schema(conn: PgConnection, schema: str, waits: Waits | None = None) -> bool:
    """Create or upgrade an org's schema when the catalog says it is not current; True if it did."""
    from psycopg2 import sql

    waits = waits or Waits()
    if schema_version(conn, schema) == SCHEMA_VERSION:
        return False
    name = sql.Identifier(schema)

    def create(cur: Any) -> bool:
        # Concurrent first runs both get here; the lock makes the second find the work done.
        lock_object(cur, f"salesforce_pipeline.schema.{schema}", waits.object_lock_wait, waits.lock_timeout)
        cur.execute(read_sql("schema_state.sql"), _state_names(schema))
        if cur.fetchone()[0] == SCHEMA_VERSION:
            return False
        cur.execute(read_sql("schema_exists.sql"), {"schema": schema})
        if cur.fetchone() is None:
            cur.execute(sql_template("create_schema.sql", schema=name))
        cur.execute(sql_template("schema.sql", schema=name), {"version": SCHEMA_VERSION})
        return True

    changed = run_ddl(conn, f"creating the warehouse schema {schema}", waits, create)
    if changed:
        log.info("warehouse schema %s created or upgraded to: %s", schema, SCHEMA_VERSION)
    return changed


def table_columns(conn: PgConnection, schema: str, table: str) -> list[tuple[str, str, bool, bool]]:
    """(name, type, not null, filled by Postgres) for each column of `<schema>.<table>`."""
    with conn.cursor() as cur:
        cur.execute(read_sql("table_columns.sql"), {"table": f"{schema}.{table}"})
        rows = cur.fetchall()
    conn.commit()
    return rows


def add_missing_columns(
    conn: PgConnection,
    schema: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    waits: Waits | None = None,
) -> list[str]:
    """Add the configured extra columns the table lacks; returns the names added.

    The catalog is read first, without a lock; only a missing column costs an ALTER TABLE (and
    its ACCESS EXCLUSIVE lock). That ALTER runs under the object's lock, so it never waits on
    another run's load of the same object, and under a short lock_timeout with retries, so a
    reader's long transaction delays it a little instead of queueing every other reader behind it.
    """
    from psycopg2 import sql

    waits = waits or Waits()
    existing = {name for name, *_ in table_columns(conn, schema, table)}
    missing = [(column, kind) for column, kind in columns if column not in existing]
    if not missing:
        return []

    def alter(cur: Any) -> list[str]:
        lock_object(cur, f"{schema}.{table}", waits.object_lock_wait, waits.lock_timeout)
        for column, column_type in missing:
            cur.execute(
                sql_template(
                    "add_column.sql",
                    target=sql.Identifier(schema, table),
                    column=sql.Identifier(column),
                    column_type=sql.SQL(column_type),
                )
            )
        return [column for column, _ in missing]

    added = run_ddl(conn, f"adding columns to {schema}.{table}", waits, alter)
    log.info("%s.%s: added column(s) %s for configured extra fields", schema, table, ", ".join(added))
    return added


# What each kind of value needs from a column: the exact types the pipeline creates, and the
# wider ones a user may have changed a column to. Anything else cannot hold every value.
_HOLDS = {
    "id": ("character varying(18)", "character varying", "text"),
    "datetime": ("timestamp with time zone", "text"),
    "date": ("date", "timestamp with time zone", "timestamp without time zone", "text"),
    "numeric": ("numeric", "text"),
    "integer": ("bigint", "numeric", "text"),
    "boolean": ("boolean", "text"),
    "email": ("text", "character varying"),
    "text": ("text", "character varying"),
}
_LINEAGE_TYPES = {"_extracted_at": "timestamp with time zone", "_dag_run_id": "text"}


def _wide_enough_varchar(actual: str, kind: str | None) -> bool:
    # An Id column widened from varchar(18) to varchar(n) still holds every Id.
    match = re.fullmatch(r"character varying\((\d+)\)", actual)
    return match is not None and kind == "id" and int(match.group(1)) >= 18


def holds(actual: str, kind: str) -> bool:
    """Whether a column of type ``actual`` holds every value of ``kind``."""
    return actual in _HOLDS[kind] or _wide_enough_varchar(actual, kind)


def column_problems(
    table: str, catalog: Sequence[tuple[str, str, bool, bool]], kinds: dict[str, str]
) -> list[str]:
    """Why the target cannot take the pipeline's rows, column by column (empty when it can).

    `table` is the qualified name (`salesforce_acme.contact`); `kinds` maps each column the
    pipeline writes to its kind (transform's kinds by column).
    """
    from salesforce_pipeline.transform import postgres_type

    problems = []
    written = {**dict.fromkeys(_LINEAGE_TYPES), **kinds}
    by_name = {name: (type_, not_null, filled) for name, type_, not_null, filled in catalog}
    for column, kind in written.items():
        if column not in by_name:
            problems.append(f"column {column} is missing (it is created by the pipeline; was it dropped?)")
            continue
        actual = by_name[column][0]
        holding = _HOLDS[kind] if kind else (_LINEAGE_TYPES[column],)
        wanted = postgres_type(kind) if kind else _LINEAGE_TYPES[column]
        if actual not in holding and not _wide_enough_varchar(actual, kind):
            problems.append(
                f"column {column} is {actual}, which cannot hold every value the pipeline writes there "
                f"({wanted}); widen it: ALTER TABLE {table} ALTER COLUMN {column} TYPE {wanted}"
            )
    for name, (type_, not_null, filled) in by_name.items():
        if name not in written and not_null and not filled:
            problems.append(
                f"column {name} ({type_}) was added as NOT NULL without a default, so no row the pipeline "
                f"inserts can satisfy it; give it a default or drop NOT NULL: ALTER TABLE "
                f"{table} ALTER COLUMN {name} DROP NOT NULL"
            )
    return problems


def check_target(conn: PgConnection, schema: str, table: str, kinds: dict[str, str]) -> None:
    """Fail before loading, naming each column, when the table cannot take the pipeline's rows."""
    problems = column_problems(f"{schema}.{table}", table_columns(conn, schema, table), kinds)
    if problems:
        raise WarehouseSchemaError(
            f"{schema}.{table} was changed in a way the pipeline cannot load into; nothing was loaded: "
            + "; ".join(problems)
        )
