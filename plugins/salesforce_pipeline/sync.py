"""One object's run end to end: plan, budget, extract, transform, load, verify, audit.

This is what a DAG task calls. It holds at most one chunk of records in memory, and one
Postgres transaction for the whole object: the warehouse sees all of the run or none of it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import (
    audit,
    budget,
    column_refresh,
    extract,
    load,
    reconcile,
    schema_drift,
    tenancy,
    warehouse,
)
from salesforce_pipeline.column_chunk import ColumnChunk
from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.transform import snake_case, transform_columns
from salesforce_pipeline.writer import BackgroundWriter

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

log = logging.getLogger(__name__)


@dataclass
class SyncRequest:
    """What a task asks of `sync_object`: one object of one org, for one run's data interval."""

    spec: ObjectSpec
    settings: PipelineSettings
    dag_run_id: str
    interval_start: datetime
    interval_end: datetime
    full_refresh: bool = False
    method: str = "auto"
    try_number: int | None = None


@dataclass
class SyncSummary:
    """What one object's run did, for the task log, the audit row and the task's return value."""

    sobject: str
    mode: str
    method: str
    window: str
    extracted: int = 0
    upserted: int = 0
    deleted: int = 0
    rejected: int = 0
    duplicates: int = 0
    backfilled: int = 0  # existing rows whose new fields' columns were filled (schema_drift.py)
    api_calls: int = 0
    api_usage: str | None = None
    salesforce_count: int | None = None
    count_difference: int | None = None
    count_note: str | None = None
    live_salesforce: int | None = None
    live_warehouse: int | None = None
    seconds: float = 0.0

    @property
    def live_difference(self) -> int | None:
        """Live rows in the warehouse minus live records in Salesforce (None if not compared)."""
        if self.live_salesforce is None or self.live_warehouse is None:
            return None
        return self.live_warehouse - self.live_salesforce

    def line(self) -> str:
        """The one line per object a data team greps the task log for."""
        return (
            f"SUMMARY {self.sobject}: mode={self.mode} method={self.method} window={self.window} "
            f"extracted={self.extracted} upserted={self.upserted} deleted={self.deleted} "
            f"rejected={self.rejected} salesforce_count={self.salesforce_count} "
            f"count_difference={self.count_difference} live_difference={self.live_difference} "
            f"api_calls={self.api_calls} "
            f"api_usage={self.api_usage or 'unknown'} duration={self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain values (what the task returns), the live difference included."""
        return {**asdict(self), "live_difference": self.live_difference}


@dataclass
class _LoadRun:
    """What one attempt at an object's load carries from step to step."""

    request: SyncRequest
    hook: SalesforcePipelineHook
    conn: PgConnection
    attempt: audit.Attempt
    summary: SyncSummary
    window: extract.Window
    full_refresh: bool
    extracted_at: datetime
    waits: warehouse.Waits
    calls_before: int
    drift: schema_drift.Drift | None = None


def _usage_text(hook: SalesforcePipelineHook) -> str | None:
    usage = hook.api_usage
    return f"{usage[0]}/{usage[1]}" if usage else None


def sync_object(request: SyncRequest, hook: SalesforcePipelineHook, conn: PgConnection) -> SyncSummary:
    """Bring one object's table up to date with Salesforce for the request's window.

    Every attempt is audited from before its first call to Salesforce (see audit.py); a
    database wait that ran out is reported as the pipeline error that says which setting bounds it.
    """
    spec, settings = request.spec, request.settings
    waits = warehouse.Waits.from_settings(settings)
    started = time.monotonic()
    extracted_at = datetime.now(UTC)

    # Cheap when there is nothing to do (a catalog read, no lock): a task run on its own (a
    # clear, `airflow tasks test`) needs no prepare_warehouse before it.
    warehouse.apply_schema(conn, settings.schema, waits)
    full_refresh = _needs_full_refresh(request, conn)
    window = (
        extract.FULL_REFRESH_WINDOW
        if full_refresh
        else extract.incremental_window(
            request.interval_start,
            request.interval_end,
            timedelta(minutes=settings.lookback_minutes),
        )
    )
    mode = "full_refresh" if full_refresh else "incremental"
    attempt = audit.start_attempt(
        conn,
        settings.schema,
        dag_run_id=request.dag_run_id,
        sobject=spec.name,
        mode=mode,
        method=None,
        window_start=window.start,
        window_end=window.end or request.interval_end,
        started_at=extracted_at,
        try_number=request.try_number,
    )
    summary = SyncSummary(sobject=spec.name, mode=mode, method="", window=window.describe())
    run = _LoadRun(
        request, hook, conn, attempt, summary, window, full_refresh, extracted_at, waits, hook.api_calls
    )
    try:
        # A frozen worker's earlier try of this task would hold the object's lock: end it first.
        attempt.end_earlier_tries()
        attempt.close_abandoned()
        _load(run)
    except BaseException as exc:
        failure = _record_failure(run, exc, started)
        if failure is exc:
            raise
        raise failure from exc
    summary.api_calls = hook.api_calls - run.calls_before
    summary.api_usage = _usage_text(hook)
    summary.seconds = time.monotonic() - started
    try:
        _finish_audit(run, status="success", error=None)
    finally:
        attempt.close()
    log.info("%s", summary.line())
    return summary


def _needs_full_refresh(request: SyncRequest, conn: PgConnection) -> bool:
    """Asked for, or the object never loaded: its first load brings in the whole history."""
    spec, schema = request.spec, request.settings.schema
    if request.full_refresh:
        log.info("%s: full refresh requested (full_refresh=true)", spec.name)
        return True
    if not audit.has_loaded_successfully(conn, schema, spec.name):
        log.info(
            "%s: no successful load recorded in %s.load_audit, so this run does a full refresh "
            "to bring in the whole history",
            spec.name,
            schema,
        )
        return True
    return False


def _load(run: _LoadRun) -> None:
    """Plan, budget, extract, transform and load, verify, then commit (or raise)."""
    request, hook, summary = run.request, run.hook, run.summary
    spec, settings = request.spec, request.settings
    log.info(
        "%s: %s, data interval [%s, %s), reading SystemModstamp in %s (lookback %d min)",
        spec.name,
        summary.mode,
        extract.soql_datetime(request.interval_start),
        extract.soql_datetime(request.interval_end),
        run.window.describe(),
        settings.lookback_minutes,
    )
    plan = _plan(run)
    count = hook.count(extract.build_count_soql(spec, run.window), include_deleted=True)
    method = budget.choose_method(request.method, count, settings)
    summary.method = method
    allowed = budget.check_budget(hook, spec, count, method, settings)
    summary.salesforce_count = count
    log.info("%s: Salesforce counts %d records in the window; extracting with %s", spec.name, count, method)

    loader = load.ObjectLoad(
        run.conn,
        spec,
        plan.columns,
        dag_run_id=request.dag_run_id,
        extracted_at=run.extracted_at,
        schema=settings.schema,
        waits=run.waits,
    )
    loader.begin()
    soql = extract.build_soql(spec, plan.fields, run.window)
    bulk = (
        budget.bulk_job_options(hook, run.attempt, soql, count, allowed, settings, run.calls_before)
        if method == "bulk2"
        else {}
    )
    progress = extract.Progress(spec.name)
    chunks = extract.chunks(
        hook, soql, plan.fields, method=method, settings=settings, progress=progress, **bulk
    )
    _write_chunks(run, chunks, plan, loader)
    summary.extracted = progress.records
    _verify_and_commit(run, loader)
    _settle_schema(run, plan)


def _settle_schema(run: _LoadRun, plan: extract.FieldPlan) -> None:
    """Fill the columns of fields that appeared, for every existing row, then record the changes.

    A full refresh read every field of every record already. A failure here leaves the committed
    load as it is and the catalog unchanged, so the next run fills the columns again.
    """
    drift, request = run.drift, run.request
    if drift is None:
        return
    spec, settings = request.spec, request.settings
    if drift.to_fill and not run.full_refresh:
        fields = [f.field for f in drift.to_fill]
        log.info("%s: filling new field(s) %s for every existing row", spec.name, ", ".join(fields))
        result = column_refresh.refresh_columns(
            run.hook, run.conn, settings, spec, fields, plan.kinds, live_only=False, waits=run.waits
        )
        run.summary.backfilled = result.updated
        log.info(
            "%s: new field(s) %s read for %d records (%s, %d API calls); %d rows filled",
            spec.name,
            ", ".join(fields),
            result.read,
            result.method,
            result.api_calls,
            result.updated,
        )
    schema_drift.record(run.conn, settings, spec, drift, request.dag_run_id, first_load=run.full_refresh)


def _plan(run: _LoadRun) -> extract.FieldPlan:
    """The fields to extract, checked against describe and the table before anything is read."""
    spec, settings = run.request.spec, run.request.settings
    hook, conn = run.hook, run.conn
    # The login must reach this org's own Salesforce org before anything is read or written.
    tenancy.check_organization(conn, settings, hook.organization_id)
    # Everything that can be wrong with the configuration fails here, before any extraction.
    plan = extract.plan_for(spec, settings, hook)
    describe = hook.describe_object(spec.name)  # cached by the hook: no second call
    # Before any column is added: what is new is what the catalog (or the table) lacks.
    run.drift = schema_drift.prepare(conn, settings, spec, plan, describe, run.waits)
    for hidden in plan.hidden_defaults:
        log.warning(
            "%s.%s is not visible to the integration user (field-level security or edition); it is left "
            "out and column %s stays null",
            spec.name,
            hidden,
            snake_case(hidden),
        )
    if plan.extra_columns:
        warehouse.add_missing_columns(conn, settings.schema, spec.table, plan.extra_columns, run.waits)
    warehouse.check_target(
        conn, settings.schema, spec.table, {snake_case(f): k for f, k in plan.kinds.items()}
    )
    return plan


def _write_chunks(
    run: _LoadRun, chunks: Iterator[ColumnChunk], plan: extract.FieldPlan, loader: load.ObjectLoad
) -> None:
    """Transform each chunk and hand it to the loader; count what was rejected, dropped, deleted."""
    spec, summary = run.request.spec, run.summary
    # The database side of each chunk runs in a writer thread while this thread extracts
    # and transforms the next one; the connection is the writer's until the block ends.
    with BackgroundWriter(f"{spec.name} warehouse writer") as writer:
        for chunk in chunks:
            result = transform_columns(chunk, plan.fields, plan.kinds, key_prefix=spec.key_prefix)
            del chunk
            if result.rejects:
                writer.submit(loader.write_rejects, result.rejects)
            prepared = loader.prepare_chunk(result.frame)
            if prepared is not None:
                writer.submit(loader.write_chunk, prepared)
            summary.rejected += len(result.rejects)
            summary.duplicates += result.duplicates_dropped
            if len(result.frame):
                summary.deleted += int(result.frame["is_deleted"].sum())
            del result, prepared
    summary.upserted = loader.upserted
    log.info(
        "%s: loaded %d rows by the %s path; the writer thread was busy %.1f s, extraction waited for it %.1f s",
        spec.name,
        loader.staged,
        loader.mode,
        writer.busy_seconds,
        writer.waited_seconds,
    )


def _verify_and_commit(run: _LoadRun, loader: load.ObjectLoad) -> None:
    """Nothing extracted may be missing, counts must agree; only then is the load committed."""
    hook, spec, summary = run.hook, run.request.spec, run.summary
    problem = loader.verification_problem()
    if problem:
        raise load.DataLossDetected(f"{spec.name}: {problem}; the load was rolled back")
    if run.full_refresh:
        summary.deleted += loader.mark_missing_as_deleted(run.extracted_at)
    reconcile.reconcile(hook, spec, run.window, loader, summary, run.full_refresh)
    reconcile.compare_live(hook, spec, loader, summary)
    audit.commit_if_current(run.attempt, loader)


def _record_failure(run: _LoadRun, exc: BaseException, started: float) -> BaseException:
    """Roll back, audit the failure, and return the error to raise (the pipeline's own, for a
    database wait that ran out)."""
    spec = run.request.spec
    _rollback(run.conn, spec.name)
    run.summary.seconds = time.monotonic() - started
    failure = warehouse.translate(exc, f"{spec.name} load", run.waits)
    _finish_audit(run, status="failed", error=_error_text(failure))
    run.attempt.close()
    return failure


def _rollback(conn: PgConnection, sobject: str) -> None:
    # A session the server ended (the failure itself, often) has nothing left to roll back.
    try:
        conn.rollback()
    except Exception:
        log.warning("%s: the warehouse session was already gone; its transaction died with it", sobject)


def _error_text(exc: BaseException) -> str:
    # Our own exceptions' messages are written to be safe to store; others are summarised by type.
    text = str(exc) if isinstance(exc, SalesforcePipelineError) else f"{type(exc).__name__}: {exc}"
    return text[:2000]


def _finish_audit(run: _LoadRun, *, status: str, error: str | None) -> None:
    summary, hook = run.summary, run.hook
    try:
        run.attempt.finish(
            method=summary.method or None,
            extracted=summary.extracted,
            upserted=summary.upserted,
            deleted=summary.deleted,
            rejected=summary.rejected,
            api_calls=hook.api_calls - run.calls_before,
            api_usage_after=_usage_text(hook),
            salesforce_count=summary.salesforce_count,
            count_difference=summary.count_difference,
            count_note=summary.count_note,
            live_salesforce=summary.live_salesforce,
            live_warehouse=summary.live_warehouse,
            live_difference=summary.live_difference,
            finished_at=datetime.now(UTC),
            status=status,
            error=error,
        )
    except Exception:
        # The load's own outcome matters more than its audit row; a lost connection lands here.
        log.warning("%s: could not record the load's outcome in its load_audit table", summary.sobject)
        if status == "success":
            raise
