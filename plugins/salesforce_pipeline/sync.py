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

from salesforce_pipeline import audit, budget, extract, load, reconcile, tenancy, warehouse
from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.transform import ColumnChunk, transform_columns
from salesforce_pipeline.writer import BackgroundWriter

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

log = logging.getLogger(__name__)


class DataLossDetected(SalesforcePipelineError):
    """Extracted records are not in Postgres after the load; the transaction is rolled back."""

    retryable = True


@dataclass
class SyncRequest:
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
    sobject: str
    mode: str
    method: str
    window: str
    extracted: int = 0
    upserted: int = 0
    deleted: int = 0
    rejected: int = 0
    duplicates: int = 0
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
        return {**asdict(self), "live_difference": self.live_difference}


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
    full_refresh = request.full_refresh
    if full_refresh:
        log.info("%s: full refresh requested (full_refresh=true)", spec.name)
    elif not audit.has_loaded_successfully(conn, settings.schema, spec.name):
        full_refresh = True
        log.info(
            "%s: no successful load recorded in %s.load_audit, so this run does a full refresh "
            "to bring in the whole history",
            spec.name,
            settings.schema,
        )
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
    calls_before = hook.api_calls
    try:
        # A frozen worker's earlier try of this task would hold the object's lock: end it first.
        attempt.end_earlier_tries()
        attempt.close_abandoned()
        _run(request, hook, conn, attempt, summary, window, full_refresh, extracted_at, waits, calls_before)
    except BaseException as exc:
        _rollback(conn, spec.name)
        summary.seconds = time.monotonic() - started
        failure = warehouse.translate(exc, f"{spec.name} load", waits)
        _finish_audit(attempt, summary, hook, calls_before, status="failed", error=_error_text(failure))
        attempt.close()
        if failure is exc:
            raise
        raise failure from exc
    summary.api_calls = hook.api_calls - calls_before
    summary.api_usage = _usage_text(hook)
    summary.seconds = time.monotonic() - started
    try:
        _finish_audit(attempt, summary, hook, calls_before, status="success", error=None)
    finally:
        attempt.close()
    log.info("%s", summary.line())
    return summary


def _run(
    request, hook, conn, attempt, summary, window, full_refresh, extracted_at, waits, calls_before
) -> None:
    spec, settings = request.spec, request.settings
    log.info(
        "%s: %s, data interval [%s, %s), reading SystemModstamp in %s (lookback %d min)",
        spec.name,
        summary.mode,
        extract.soql_datetime(request.interval_start),
        extract.soql_datetime(request.interval_end),
        window.describe(),
        settings.lookback_minutes,
    )

    # The login must reach this org's own Salesforce org before anything is read or written.
    tenancy.check_organization(conn, settings, hook.organization_id)
    # Everything that can be wrong with the configuration fails here, before any extraction.
    plan = extract.plan_fields(
        spec,
        hook.describe_object(spec.name),
        settings.extra_fields.get(spec.name, ()),
        hook.describe_object,
    )
    for hidden in plan.hidden_defaults:
        log.warning(
            "%s.%s is not visible to the integration user (field-level security or edition); it is left "
            "out and column %s stays null",
            spec.name,
            hidden,
            extract.snake_case(hidden),
        )
    if plan.extra_columns:
        warehouse.add_missing_columns(conn, settings.schema, spec.table, plan.extra_columns, waits)
    warehouse.check_target(
        conn, settings.schema, spec.table, {extract.snake_case(f): k for f, k in plan.kinds.items()}
    )

    count = hook.count(extract.build_count_soql(spec, window), include_deleted=True)
    method = budget.choose_method(request.method, count, settings)
    summary.method = method
    allowed = budget.check_budget(hook, spec, count, method, settings)
    summary.salesforce_count = count
    log.info("%s: Salesforce counts %d records in the window; extracting with %s", spec.name, count, method)

    loader = load.ObjectLoad(
        conn,
        spec,
        plan.columns,
        dag_run_id=request.dag_run_id,
        extracted_at=extracted_at,
        schema=settings.schema,
        waits=waits,
    )
    loader.begin()
    soql = extract.build_soql(spec, plan.fields, window)
    progress = extract.Progress(spec.name)
    bulk = (
        budget.bulk_job_options(hook, attempt, soql, count, allowed, settings, calls_before)
        if method == "bulk2"
        else {}
    )
    # The database side of each chunk runs in a writer thread while this thread extracts
    # and transforms the next one; the connection is the writer's until the block ends.
    with BackgroundWriter(f"{spec.name} warehouse writer") as writer:
        for chunk in _chunks(hook, soql, plan.fields, method, settings, progress, bulk):
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
    summary.extracted = progress.records
    summary.upserted = loader.upserted
    log.info(
        "%s: loaded %d rows by the %s path; the writer thread was busy %.1f s, extraction waited for it %.1f s",
        spec.name,
        loader.staged,
        loader.mode,
        writer.busy_seconds,
        writer.waited_seconds,
    )

    problem = loader.verification_problem()
    if problem:
        raise DataLossDetected(f"{spec.name}: {problem}; the load was rolled back")
    if full_refresh:
        summary.deleted += loader.mark_missing_as_deleted(extracted_at)
    reconcile.reconcile(hook, spec, window, loader, summary, full_refresh)
    reconcile.compare_live(hook, spec, loader, summary)
    audit.commit_if_current(attempt, loader)


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


def _finish_audit(attempt, summary, hook, calls_before, *, status, error) -> None:
    try:
        attempt.finish(
            method=summary.method or None,
            extracted=summary.extracted,
            upserted=summary.upserted,
            deleted=summary.deleted,
            rejected=summary.rejected,
            api_calls=hook.api_calls - calls_before,
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


def _chunks(hook, soql, fields, method, settings, progress, bulk) -> Iterator[ColumnChunk]:
    if method == "bulk2":
        return extract.bulk_chunks(
            hook,
            soql,
            fields,
            chunk_size=settings.chunk_size,
            page_size=settings.bulk_page_size,
            poll_seconds=settings.bulk_poll_seconds,
            progress=progress,
            **bulk,
        )
    return extract.rest_chunks(
        hook,
        soql,
        fields,
        chunk_size=settings.chunk_size,
        batch_size=settings.rest_batch_size,
        progress=progress,
    )
