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

from salesforce_pipeline import extract, load
from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.transform import ColumnChunk, transform_columns
from salesforce_pipeline.writer import BackgroundWriter

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

log = logging.getLogger(__name__)

METHODS = ("auto", "rest", "bulk2")


class ApiBudgetExceeded(SalesforcePipelineError):
    """The extraction would spend more of the org's remaining daily API allowance than allowed."""

    retryable = False


class DataLossDetected(SalesforcePipelineError):
    """Extracted records are not in Postgres after the load; the transaction is rolled back."""

    retryable = True


class CountMismatch(SalesforcePipelineError):
    """Salesforce's COUNT() and the records extracted disagree, and nothing changed meanwhile."""

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
    seconds: float = 0.0

    def line(self) -> str:
        """The one line per object a data team greps the task log for."""
        return (
            f"SUMMARY {self.sobject}: mode={self.mode} method={self.method} window={self.window} "
            f"extracted={self.extracted} upserted={self.upserted} deleted={self.deleted} "
            f"rejected={self.rejected} salesforce_count={self.salesforce_count} "
            f"count_difference={self.count_difference} api_calls={self.api_calls} "
            f"api_usage={self.api_usage or 'unknown'} duration={self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _usage_text(hook: SalesforcePipelineHook) -> str | None:
    usage = hook.api_usage
    return f"{usage[0]}/{usage[1]}" if usage else None


def sync_object(request: SyncRequest, hook: SalesforcePipelineHook, conn: PgConnection) -> SyncSummary:
    """Bring one object's table up to date with Salesforce for the request's window."""
    spec, settings = request.spec, request.settings
    started = time.monotonic()
    extracted_at = datetime.now(UTC)
    calls_before = hook.api_calls

    # Idempotent, and cheap: a task run on its own (a clear, `airflow tasks test`) needs no
    # prepare_warehouse before it.
    load.apply_schema(conn, {})
    full_refresh = request.full_refresh
    if full_refresh:
        log.info("%s: full refresh requested (full_refresh=true)", spec.name)
    elif not load.has_loaded_successfully(conn, spec.name):
        full_refresh = True
        log.info(
            "%s: no successful load recorded in salesforce.load_audit, so this run does a full refresh "
            "to bring in the whole history",
            spec.name,
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
    log.info(
        "%s: %s, data interval [%s, %s), reading SystemModstamp in %s (lookback %d min)",
        spec.name,
        mode,
        extract.soql_datetime(request.interval_start),
        extract.soql_datetime(request.interval_end),
        window.describe(),
        settings.lookback_minutes,
    )

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
        load.apply_schema(conn, {spec.table: plan.extra_columns})

    count = hook.count(extract.build_count_soql(spec, window), include_deleted=True)
    method = _choose_method(request.method, count, settings)
    _check_budget(hook, spec, count, method, settings)
    summary = SyncSummary(sobject=spec.name, mode=mode, method=method, window=window.describe())
    summary.salesforce_count = count
    log.info("%s: Salesforce counts %d records in the window; extracting with %s", spec.name, count, method)

    audit_id = load.audit_start(
        conn,
        dag_run_id=request.dag_run_id,
        sobject=spec.name,
        mode=mode,
        method=method,
        window_start=window.start,
        window_end=window.end or request.interval_end,
        started_at=extracted_at,
    )
    loader = load.ObjectLoad(
        conn, spec, plan.columns, dag_run_id=request.dag_run_id, extracted_at=extracted_at
    )
    try:
        loader.begin()
        soql = extract.build_soql(spec, plan.fields, window)
        progress = extract.Progress(spec.name)
        # The database side of each chunk runs in a writer thread while this thread extracts
        # and transforms the next one; the connection is the writer's until the block ends.
        with BackgroundWriter(f"{spec.name} warehouse writer") as writer:
            for chunk in _chunks(hook, soql, plan.fields, method, settings, progress):
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
        _reconcile(hook, spec, window, loader, summary, full_refresh)
        loader.commit()
    except BaseException as exc:
        loader.rollback()
        summary.seconds = time.monotonic() - started
        _finish_audit(conn, audit_id, summary, hook, calls_before, status="failed", error=_error_text(exc))
        raise
    summary.api_calls = hook.api_calls - calls_before
    summary.api_usage = _usage_text(hook)
    summary.seconds = time.monotonic() - started
    _finish_audit(conn, audit_id, summary, hook, calls_before, status="success", error=None)
    log.info("%s", summary.line())
    return summary


def _error_text(exc: BaseException) -> str:
    # Our own exceptions' messages are written to be safe to store; others are summarised by type.
    text = str(exc) if isinstance(exc, SalesforcePipelineError) else f"{type(exc).__name__}: {exc}"
    return text[:2000]


def _finish_audit(conn, audit_id, summary, hook, calls_before, *, status, error) -> None:
    try:
        load.audit_finish(
            conn,
            audit_id=audit_id,
            method=summary.method,
            extracted=summary.extracted,
            upserted=summary.upserted,
            deleted=summary.deleted,
            rejected=summary.rejected,
            api_calls=hook.api_calls - calls_before,
            api_usage_after=_usage_text(hook),
            salesforce_count=summary.salesforce_count,
            count_difference=summary.count_difference,
            count_note=summary.count_note,
            finished_at=datetime.now(UTC),
            status=status,
            error=error,
        )
    except Exception:
        # The load's own outcome matters more than its audit row; a lost connection lands here.
        log.warning("%s: could not record the load's outcome in salesforce.load_audit", summary.sobject)
        if status == "success":
            raise


def _choose_method(requested: str, count: int, settings: PipelineSettings) -> str:
    if requested not in METHODS:
        raise ValueError(f"extraction method must be one of {METHODS}, got {requested!r}")
    if requested != "auto":
        return requested
    return "bulk2" if count > settings.bulk_threshold else "rest"


def _check_budget(hook, spec, count, method, settings) -> None:
    estimate = extract.estimate_api_calls(
        count, method, rest_batch_size=settings.rest_batch_size, bulk_page_size=settings.bulk_page_size
    )
    usage = hook.api_usage
    if usage is None:
        remaining, maximum = hook.daily_api_limit()
        used = maximum - remaining
    else:
        used, maximum = usage
        remaining = maximum - used
    allowed = int(remaining * settings.api_budget_share)
    log.info(
        "%s: estimated %d API calls for %d records by %s; org has used %d of %d today, this run may use %d",
        spec.name,
        estimate,
        count,
        method,
        used,
        maximum,
        allowed,
    )
    if estimate > allowed:
        raise ApiBudgetExceeded(
            f"{spec.name}: extracting {count} records by {method} needs about {estimate} API calls, "
            f"more than the {allowed} allowed ({settings.api_budget_share:.0%} of the {remaining} "
            f"remaining of {maximum} daily calls). Nothing was extracted or loaded. Raise api_budget_share in Variable "
            f"'salesforce_to_postgres', use Bulk 2.0, or run when more of the allowance is left."
        )


def _chunks(hook, soql, fields, method, settings, progress) -> Iterator[ColumnChunk]:
    if method == "bulk2":
        return extract.bulk_chunks(
            hook,
            soql,
            fields,
            chunk_size=settings.chunk_size,
            page_size=settings.bulk_page_size,
            poll_seconds=settings.bulk_poll_seconds,
            progress=progress,
        )
    return extract.rest_chunks(
        hook,
        soql,
        fields,
        chunk_size=settings.chunk_size,
        batch_size=settings.rest_batch_size,
        progress=progress,
    )


def _reconcile(hook, spec, window, loader, summary, full_refresh) -> None:
    """Compare Salesforce's COUNT() with what the run holds; log both, explain or fail a gap.

    A gap is explained when the count moved while the run was under way (records changed
    meanwhile) or when it is no larger than the records rejected (they are in load_rejects).
    """
    if full_refresh:
        live_soql = extract.build_count_soql(spec, window, live_only=True)
        salesforce_side = hook.count(live_soql, include_deleted=False)
        warehouse_side = loader.count_live_rows()
        what = "live records"
        recount_soql, recount_deleted = live_soql, False
    else:
        salesforce_side = summary.salesforce_count
        warehouse_side = loader.extracted_id_count()
        what = "records in the window"
        recount_soql, recount_deleted = extract.build_count_soql(spec, window), True
    summary.count_difference = warehouse_side - salesforce_side
    log.info(
        "%s: Salesforce counts %d %s; this run holds %d (%d rejected)",
        spec.name,
        salesforce_side,
        what,
        warehouse_side,
        summary.rejected,
    )
    if summary.count_difference == 0:
        return
    if abs(summary.count_difference) <= summary.rejected:
        summary.count_note = f"difference of {summary.count_difference} explained by rejected records"
        log.info("%s: %s (see salesforce.load_rejects)", spec.name, summary.count_note)
        return
    recount = hook.count(recount_soql, include_deleted=recount_deleted)
    if recount != salesforce_side:
        summary.count_note = (
            f"Salesforce's count moved from {salesforce_side} to {recount} while the run was under way; "
            "records changed meanwhile and the next run picks them up"
        )
        log.info("%s: %s", spec.name, summary.count_note)
        return
    raise CountMismatch(
        f"{spec.name}: Salesforce counts {salesforce_side} {what} in {window.describe()} but this run holds "
        f"{warehouse_side}, and the count did not change during the run; the load was rolled back"
    )
