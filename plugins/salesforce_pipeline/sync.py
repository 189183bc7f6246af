"""One object's run end to end: plan, budget, stage the slices, apply, verify, audit.

This is what a DAG task calls. The window is cut into slices (`slice_plan`) staged up to
`max_parallel_slices` at once, each page committed with its checkpoint (`slice_runner`,
`slice_stage`, `checkpoint`), outside any transaction on the target. Then one short transaction
applies the staged rows under the object's lock (`staged_load`): the warehouse sees all of the
run or none of it. A retried or rerun task resumes from the checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from salesforce_pipeline import (
    audit,
    budget,
    checkpoint,
    extract,
    load,
    reconcile,
    schema_drift,
    slice_merge,
    slice_plan,
    tenancy,
    warehouse,
)
from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.load_target import LoadTarget
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.slice_runner import stage_all
from salesforce_pipeline.slice_stage import StagingJob
from salesforce_pipeline.staged_load import StagedLoad
from salesforce_pipeline.sync_summary import SyncSummary, finish_audit, usage_text
from salesforce_pipeline.transform import snake_case

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
    connect: Callable[[], PgConnection] | None = None
    drift: schema_drift.Drift | None = None


def sync_object(
    request: SyncRequest,
    hook: SalesforcePipelineHook,
    conn: PgConnection,
    *,
    connect: Callable[[], PgConnection] | None = None,
) -> SyncSummary:
    """Bring one object's table up to date with Salesforce for the request's window.

    ``connect`` opens another warehouse connection: slices are staged in parallel through
    connections of their own; without it they are staged one after another on ``conn``.
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
        request,
        hook,
        conn,
        attempt,
        summary,
        window,
        full_refresh,
        extracted_at,
        waits,
        hook.api_calls,
        connect,
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
    summary.api_usage = usage_text(hook)
    summary.seconds = time.monotonic() - started
    try:
        finish_audit(run.attempt, run.summary, run.hook, run.calls_before, status="success", error=None)
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
    """Plan, budget, stage every slice (resuming a checkpoint), then apply in one short transaction."""
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
    summary.salesforce_count = count
    target = LoadTarget(
        run.conn,
        spec,
        plan.columns,
        schema=settings.schema,
        dag_run_id=request.dag_run_id,
        extracted_at=run.extracted_at,
    )
    checkpoint.expire_stale(run.conn, target, settings.checkpoint_ttl_hours)
    saved = checkpoint.Checkpoint.open(
        run.conn,
        target,
        print_=checkpoint.fingerprint(summary.mode, run.window, target.columns),
        method=budget.choose_method(request.method, count, settings),
        method_requested=request.method != "auto",
        owner=run.attempt.audit_id,
    )
    summary.method = method = saved.method
    # A resumed load keeps its first attempt's start: the lineage and mark-missing's guard use it.
    run.extracted_at = saved.extracted_at
    if saved.planned:
        summary.slices_resumed = sum(s.done for s in saved.slices)
        remaining = sum(max(s.plan.expected - s.staged, 0) for s in saved.slices if not s.done)
        log.info(
            "%s: resuming this run's checkpoint: %d of %d slices staged already, about %d records to read",
            spec.name,
            summary.slices_resumed,
            len(saved.slices),
            remaining,
        )
        allowed = budget.check_budget(hook, spec, remaining, method, settings)
    else:
        allowed = budget.check_budget(hook, spec, count, method, settings)
        size = slice_plan.records_per_slice(
            method, count, settings.slice_records, settings.max_parallel_slices
        )
        saved.plan(slice_plan.plan_from_salesforce(hook, spec, run.window, count, size))
    summary.slices = len(saved.slices)
    log.info(
        "%s: Salesforce counts %d records in the window; extracting with %s in %d slice(s)",
        spec.name,
        count,
        method,
        summary.slices,
    )
    job = StagingJob(
        hook,
        spec,
        plan,
        settings,
        run.window,
        saved,
        run.attempt,
        extract.Progress(spec.name),
        bulk_max_polls=budget.bulk_polls_per_slice(hook, saved.slices, allowed, settings, run.calls_before)
        if method == "bulk2"
        else None,
    )
    staging_started = time.monotonic()
    staged = stage_all(job, run.conn, run.connect)
    summary.staging_seconds = time.monotonic() - staging_started
    log.info(
        "%s: staged %d slice(s) in %.1f s (%d records read by this attempt, %d pages)",
        spec.name,
        staged,
        summary.staging_seconds,
        job.totals.records,
        job.totals.pages,
    )
    summary.duplicates = job.totals.duplicates
    _apply(run, saved, plan)
    if run.drift is not None:
        summary.backfilled = schema_drift.settle(
            run.drift,
            hook,
            run.conn,
            settings,
            spec,
            plan.kinds,
            full_refresh=run.full_refresh,
            dag_run_id=request.dag_run_id,
            waits=run.waits,
        )


def _apply(run: _LoadRun, saved: checkpoint.Checkpoint, plan: extract.FieldPlan) -> None:
    """Merge the slices (no lock), then the one short transaction: lock, write, verify, mark
    missing, reconcile, delete the checkpoint, commit (unless a later try started)."""
    request, hook, spec, summary = run.request, run.hook, run.request.spec, run.summary
    merge_started = time.monotonic()
    # Salesforce's live count is asked before the lock (held for database work only), while the
    # warehouse merges: the one waits on Salesforce, the other on Postgres.
    live_soql = extract.build_count_soql(spec, extract.FULL_REFRESH_WINDOW, live_only=True)
    with ThreadPoolExecutor(1, thread_name_prefix=f"{spec.name} live count") as asking:
        live = asking.submit(hook.count, live_soql, include_deleted=False)
        merged = slice_merge.merge(saved)
        summary.merge_seconds = time.monotonic() - merge_started
        summary.live_salesforce = live.result()
    log.info("%s: the slices merged in %.1f s (no lock held)", spec.name, summary.merge_seconds)
    loader = StagedLoad(
        run.conn,
        spec,
        plan.columns,
        dag_run_id=request.dag_run_id,
        extracted_at=saved.extracted_at,
        schema=request.settings.schema,
        merged=merged,
        rejects=saved.rejects_table,
        waits=run.waits,
    )
    summary.deleted, _ids = loader.staged_counts()
    summary.rejected = saved.rejected_count()
    summary.extracted = sum(s.staged for s in saved.slices) + summary.rejected
    loader.begin()
    try:
        summary.upserted = loader.apply()
        problem = loader.verification_problem()
        if problem:
            raise load.DataLossDetected(f"{spec.name}: {problem}; the load was rolled back")
        if run.full_refresh:
            summary.deleted += loader.mark_missing_as_deleted(saved.extracted_at)
        reconcile.reconcile(hook, spec, run.window, loader, summary, run.full_refresh)
        reconcile.compare_live(hook, spec, loader, summary)
        saved.delete()
        audit.commit_if_current(run.attempt, loader)
    except (load.DataLossDetected, reconcile.CountMismatch):
        # What was staged does not add up: the retry reads the window again from Salesforce.
        loader.rollback()
        saved.discard()
        raise
    finally:
        summary.lock_seconds = loader.lock_seconds
    steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in loader.timings.items())
    log.info(
        "%s: the object's lock was held %.2f s for the apply (%s)", spec.name, loader.lock_seconds, steps
    )


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


def _record_failure(run: _LoadRun, exc: BaseException, started: float) -> BaseException:
    """Roll back, audit the failure, and return the error to raise (the pipeline's own, for a
    database wait that ran out)."""
    spec = run.request.spec
    _rollback(run.conn, spec.name)
    run.summary.seconds = time.monotonic() - started
    failure = warehouse.translate(exc, f"{spec.name} load", run.waits)
    finish_audit(
        run.attempt, run.summary, run.hook, run.calls_before, status="failed", error=_error_text(failure)
    )
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
