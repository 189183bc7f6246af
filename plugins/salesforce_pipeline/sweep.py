"""The drift sweep: compare the whole object with Salesforce, and re-read exactly what differs.

Incremental runs read a window of `SystemModstamp` with a short lookback. A record committed
later than that lookback, a delete that fell outside every window, a row changed or lost in the
warehouse by hand: none of them is in any window. On its cadence (setting `sweep`: daily,
weekly, off) the sweep lists `Id, SystemModstamp, IsDeleted` of every record (queryAll; Bulk 2.0
above `bulk_threshold`), compares the list with the table in one query, re-reads only the
records that differ (by Id, ~300 per query) through the load's way in (the guarded upsert; a
table the sweep finds empty is filled by COPY, as a first load is), and marks rows whose Id
Salesforce no longer lists at all as deleted. No full refresh, and its API calls are budgeted
like a load's.

It holds the object's lock from listing to commit, so no load of the object writes between the
comparison and the repair.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import audit, budget, extract, load, tenancy, warehouse
from salesforce_pipeline.conversions import valid_ids
from salesforce_pipeline.copy_format import copy_bytes
from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.sql_files import sql_template
from salesforce_pipeline.transform import transform_columns

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

# Less than the cadence itself: a daily run scheduled at midnight that started a little earlier
# than yesterday's must still find yesterday's sweep old enough.
CADENCES = {"daily": timedelta(hours=20), "weekly": timedelta(days=6, hours=12)}
LISTED_FIELDS = ("Id", "SystemModstamp", "IsDeleted")
LISTED_COLUMNS = ("id", "system_modstamp", "is_deleted")
# Ids per re-read query: 300 quoted Ids keep the GET URL near 7 kB, well within Salesforce's limit.
REREAD_BATCH = 300


class SweepListIncomplete(SalesforcePipelineError):
    """The listing holds fewer records than Salesforce counts; nothing is marked or re-read."""

    retryable = True


@dataclass
class SweepSummary:
    """What one sweep found and healed, for the task log, the audit row and the task's return value."""

    sobject: str
    method: str = ""
    listed: int = 0
    salesforce_count: int = 0
    missing: int = 0
    stale: int = 0
    missed_delete: int = 0
    wrongly_deleted: int = 0
    purged: int = 0
    reread: int = 0  # differing records Salesforce returned when re-read by Id
    written: int = 0  # of those, rows the guarded upsert wrote (it keeps a newer row it holds)
    rejected: int = 0
    live_salesforce: int | None = None
    live_warehouse: int | None = None
    api_calls: int = 0
    seconds: float = 0.0

    @property
    def differences(self) -> int:
        """Rows that differed from Salesforce, of every kind."""
        return self.missing + self.stale + self.missed_delete + self.wrongly_deleted + self.purged

    def note(self) -> str:
        """What the sweep found and did, in a sentence for the audit row's count_note."""
        return (
            f"sweep compared {self.listed} Salesforce records with the table: {self.missing} missing "
            f"(committed late or never loaded), {self.stale} older than Salesforce's version, "
            f"{self.missed_delete} deletes missed, {self.wrongly_deleted} rows marked deleted while live; "
            f"re-read {self.reread} and wrote {self.written}; {self.purged} rows Salesforce no longer has marked deleted"
        )

    def line(self) -> str:
        """The one line per sweep a data team greps the task log for."""
        return (
            f"SWEEP {self.sobject}: method={self.method} listed={self.listed} missing={self.missing} "
            f"stale={self.stale} missed_deletes={self.missed_delete} wrongly_deleted={self.wrongly_deleted} "
            f"purged={self.purged} reread={self.reread} written={self.written} rejected={self.rejected} "
            f"api_calls={self.api_calls} duration={self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain values (what the task returns), the differences included."""
        return {**asdict(self), "differences": self.differences}


def sweep_due(conn: PgConnection, schema: str, sobject: str, cadence: str, now: datetime) -> bool:
    """Whether the object's last whole comparison (a sweep or a full refresh) is `cadence` old."""
    from psycopg2 import sql

    if cadence == "off":
        return False
    with conn.cursor() as cur:
        cur.execute(sql_template("sweep_due.sql", schema=sql.Identifier(schema)), {"sobject": sobject})
        (last,) = cur.fetchone()
    conn.commit()
    return last is None or now - last >= CADENCES[cadence]


@dataclass
class _SweepRun:
    """What one sweep carries from step to step."""

    spec: ObjectSpec
    settings: PipelineSettings
    hook: SalesforcePipelineHook
    conn: PgConnection
    summary: SweepSummary
    dag_run_id: str
    started_at: datetime
    waits: warehouse.Waits
    attempt: audit.Attempt
    calls_before: int

    def calls_left(self, allowed: int) -> int:
        """What the sweep's budget has left of the `allowed` calls."""
        return allowed - (self.hook.api_calls - self.calls_before)


def run_sweep(
    spec: ObjectSpec,
    settings: PipelineSettings,
    hook: SalesforcePipelineHook,
    conn: PgConnection,
    *,
    dag_run_id: str,
    extra_fields: tuple[str, ...] = (),
    try_number: int | None = None,
) -> SweepSummary:
    """Compare `spec`'s table with Salesforce and heal what differs; audited as mode 'sweep'."""
    waits = warehouse.Waits.from_settings(settings)
    warehouse.apply_schema(conn, settings.schema, waits)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    attempt = audit.start_attempt(
        conn,
        settings.schema,
        dag_run_id=dag_run_id,
        sobject=spec.name,
        mode="sweep",
        method=None,
        window_start=None,
        window_end=started_at,
        started_at=started_at,
        try_number=try_number,
    )
    summary = SweepSummary(sobject=spec.name)
    run = _SweepRun(
        spec, settings, hook, conn, summary, dag_run_id, started_at, waits, attempt, hook.api_calls
    )
    try:
        attempt.end_earlier_tries()
        attempt.close_abandoned()
        _sweep(run, extra_fields)
    except BaseException as exc:
        try:
            conn.rollback()
        except Exception:
            log.warning("%s: the warehouse session was already gone", spec.name)
        failure = warehouse.translate(exc, f"{spec.name} sweep", waits)
        _finish(run, started, "failed", str(failure)[:2000])
        attempt.close()
        if failure is exc:
            raise
        raise failure from exc
    _finish(run, started, "success", None)
    attempt.close()
    log.info("%s", summary.line())
    return summary


def _sweep(run: _SweepRun, extra_fields: tuple[str, ...]) -> None:
    spec, settings, hook, conn, summary = run.spec, run.settings, run.hook, run.conn, run.summary
    tenancy.check_organization(conn, settings, hook.organization_id)
    plan = extract.plan_fields(
        spec,
        hook.describe_object(spec.name),
        extra_fields,
        hook.describe_object,
        all_fields=settings.all_fields(spec.name),
    )
    if plan.extra_columns:
        warehouse.add_missing_columns(conn, settings.schema, spec.table, plan.extra_columns, run.waits)
    count_soql = extract.build_count_soql(spec, extract.FULL_REFRESH_WINDOW)
    summary.salesforce_count = hook.count(count_soql, include_deleted=True)
    summary.method = "bulk2" if summary.salesforce_count > settings.bulk_threshold else "rest"
    allowed = budget.check_budget(hook, spec, summary.salesforce_count, summary.method, settings)

    loader = load.ObjectLoad(
        conn,
        spec,
        plan.columns,
        dag_run_id=run.dag_run_id,
        extracted_at=run.started_at,
        schema=settings.schema,
        waits=run.waits,
    )
    loader.begin()  # the object's lock, held to the commit
    names = _SweepTables(spec)
    with conn.cursor() as cur:
        cur.execute(sql_template("create_sweep_ids.sql", **names.identifiers))
    _list_records(run, names.listed, allowed)
    _check_listing(run, names, count_soql)
    _compare(run, names, loader)

    to_reread = summary.missing + summary.stale + summary.missed_delete + summary.wrongly_deleted
    needed = math.ceil(to_reread / REREAD_BATCH)
    left = run.calls_left(allowed)
    if needed > left:
        raise budget.ApiBudgetExceeded(
            f"{spec.name}: the sweep found {to_reread} records to re-read, about {needed} API calls, more "
            f"than the {left} its budget has left; nothing was changed. Raise api_budget_share, or run a "
            "full refresh in a quieter hour."
        )
    if to_reread:
        _reread(run, names.reread, plan, loader)
        problem = loader.verification_problem()
        if problem:
            raise load.DataLossDetected(f"{spec.name} sweep: {problem}; rolled back")
    summary.live_warehouse = loader.count_live_rows()
    audit.commit_if_current(run.attempt, loader)
    if summary.differences:
        log.warning("%s: %s", spec.name, summary.note())
    else:
        log.info("%s: the sweep found the table equal to Salesforce (%d records)", spec.name, summary.listed)


class _SweepTables:
    """The temporary tables of one sweep: every record listed, and the Ids to re-read."""

    def __init__(self, spec: ObjectSpec) -> None:
        from psycopg2 import sql

        self.listed = sql.Identifier(f"_sweep_listed_{spec.table}")
        self.reread = sql.Identifier(f"_sweep_reread_{spec.table}")
        self.identifiers = {"listed": self.listed, "reread": self.reread}


def _check_listing(run: _SweepRun, names: _SweepTables, count_soql: str) -> None:
    """A listing short of what Salesforce counts (before or now) would make rows look purged."""
    summary = run.summary
    with run.conn.cursor() as cur:
        cur.execute(sql_template("sweep_listed_counts.sql", **names.identifiers))
        summary.listed, summary.live_salesforce = cur.fetchone()
    recount = run.hook.count(count_soql, include_deleted=True)
    if summary.listed < min(summary.salesforce_count, recount):
        raise SweepListIncomplete(
            f"{run.spec.name}: the sweep listed {summary.listed} records but Salesforce counts "
            f"{min(summary.salesforce_count, recount)}; nothing was re-read or marked deleted"
        )


def _compare(run: _SweepRun, names: _SweepTables, loader: load.ObjectLoad) -> None:
    """Count each kind of difference (the Ids to re-read are kept), and mark purged rows deleted."""
    summary, target = run.summary, loader.target.table
    with run.conn.cursor() as cur:
        cur.execute(sql_template("analyze_table.sql", table=names.listed))
        cur.execute(sql_template("sweep_differences.sql", target=target, **names.identifiers))
        for reason, found in cur.fetchall():
            setattr(summary, reason, found)
        cur.execute(
            sql_template("sweep_mark_purged.sql", target=target, **names.identifiers),
            {"extracted_at": run.started_at, "dag_run_id": run.dag_run_id},
        )
        summary.purged = cur.rowcount


def _list_records(run: _SweepRun, listed: Any, allowed: int) -> None:
    """Stream Id, SystemModstamp and IsDeleted of every record into the `listed` temp table."""
    from psycopg2 import sql
    from psycopg2.extensions import encodings

    spec, settings, hook, summary = run.spec, run.settings, run.hook, run.summary
    soql = extract.build_soql(spec, LISTED_FIELDS, extract.FULL_REFRESH_WINDOW)
    kinds = {"Id": "id", "SystemModstamp": "datetime", "IsDeleted": "boolean"}
    progress = extract.Progress(f"{spec.name} sweep")
    job: dict[str, Any] = {}
    if summary.method == "bulk2":
        pages = extract.bulk_page_calls(summary.salesforce_count, settings.bulk_page_size)
        job = {
            "max_polls": max(1, run.calls_left(allowed) - pages - 2),
            "max_wait": settings.bulk_max_wait_seconds,
        }
    chunks = extract.chunks(
        hook, soql, LISTED_FIELDS, method=summary.method, settings=settings, progress=progress, **job
    )
    copy = sql.SQL("COPY {} (id, system_modstamp, is_deleted) FROM STDIN").format(listed)
    encoding = encodings[run.conn.encoding]
    with run.conn.cursor() as cur:
        statement = copy.as_string(cur)
        for chunk in chunks:
            result = transform_columns(chunk, LISTED_FIELDS, kinds, key_prefix=spec.key_prefix)
            summary.rejected += len(result.rejects)
            if len(result.frame):
                cur.copy_expert(statement, copy_bytes(result.frame, LISTED_COLUMNS, (), encoding))


def _reread(run: _SweepRun, reread: Any, plan: extract.FieldPlan, loader: load.ObjectLoad) -> None:
    """Re-read the differing records by Id and load them through the loader."""
    from psycopg2 import sql

    spec = run.spec
    with run.conn.cursor(name=f"sweep_reread_{spec.table}") as ids:
        ids.execute(sql.SQL("SELECT id FROM {} ORDER BY id").format(reread))
        while batch := [row[0] for row in ids.fetchmany(REREAD_BATCH)]:
            # The Ids came from Salesforce through the listing's transform, but they are pasted
            # into SOQL: anything that is not a well-formed Id never gets there.
            valid = [record_id for record_id, ok in zip(batch, valid_ids(batch), strict=True) if ok]
            if len(valid) < len(batch):
                log.warning(
                    "%s: %d listed Ids are not Salesforce Ids and are not re-read (e.g. %r)",
                    spec.name,
                    len(batch) - len(valid),
                    sorted(set(batch) - set(valid))[:3],
                )
            if valid:
                _reread_batch(run, valid, plan, loader)


def _reread_batch(run: _SweepRun, ids: list[str], plan: extract.FieldPlan, loader: load.ObjectLoad) -> None:
    spec, summary = run.spec, run.summary
    quoted = ", ".join(f"'{record_id}'" for record_id in ids)
    soql = f"SELECT {', '.join(plan.fields)} FROM {spec.name} WHERE Id IN ({quoted})"
    progress = extract.Progress(f"{spec.name} sweep re-read")
    for chunk in extract.rest_chunks(
        run.hook,
        soql,
        plan.fields,
        chunk_size=run.settings.chunk_size,
        batch_size=run.settings.rest_batch_size,
        progress=progress,
    ):
        result = transform_columns(chunk, plan.fields, plan.kinds, key_prefix=spec.key_prefix)
        loader.write_rejects(result.rejects)
        summary.rejected += len(result.rejects)
        prepared = loader.prepare_chunk(result.frame)
        if prepared is not None:
            summary.written += loader.write_chunk(prepared)
        summary.reread += len(result.frame)


def _finish(run: _SweepRun, started: float, status: str, error: str | None) -> None:
    summary, hook = run.summary, run.hook
    summary.api_calls = hook.api_calls - run.calls_before
    summary.seconds = time.monotonic() - started
    usage = hook.api_usage
    live_difference = (
        summary.live_warehouse - summary.live_salesforce
        if summary.live_warehouse is not None and summary.live_salesforce is not None
        else None
    )
    try:
        run.attempt.finish(
            method=summary.method or None,
            extracted=summary.listed,
            upserted=summary.written,
            deleted=summary.purged,
            rejected=summary.rejected,
            api_calls=summary.api_calls,
            api_usage_after=f"{usage[0]}/{usage[1]}" if usage else None,
            salesforce_count=summary.salesforce_count,
            count_difference=summary.differences,
            count_note=summary.note() if status == "success" else None,
            live_salesforce=summary.live_salesforce,
            live_warehouse=summary.live_warehouse,
            live_difference=live_difference,
            finished_at=datetime.now(UTC),
            status=status,
            error=error,
        )
    except Exception:
        log.warning("%s: could not record the sweep's outcome in its load_audit table", summary.sobject)
        if status == "success":
            raise
