"""Read one slice from Salesforce and stage it, batch by batch, each committed with its progress.

REST pages (up to 2,000 records each) are downloaded as bytes and grouped into batches of about
`chunk_size` records; a Bulk 2.0 results page is a batch of its own. A batch is decoded,
transformed and serialised for COPY in the slice's own thread (`page_batch`: polars, which holds
no GIL while it works, so the slices' threads use every core) and COPYed into the slice's stage
table (on a first load, into the table's successor: see `checkpoint`) a chunk at a time; its
rejected records go to the load's rejects table; then the slice's progress (rows staged, the
cursor or locator to go on from, done) is written and everything is committed together. A slice
stopped anywhere resumes after its last committed batch: a Bulk job's results are read on from
the stored locator, a REST query from its stored cursor while Salesforce keeps it (else the
slice is read again from its start).

No target table is touched here, and no lock is held: the apply does that, at the end, briefly.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import extract
from salesforce_pipeline.checkpoint import Checkpoint, SliceState
from salesforce_pipeline.conversions import valid_ids
from salesforce_pipeline.errors import SalesforceCursorGone, SalesforcePipelineError
from salesforce_pipeline.frame_prepare import prepare_batch
from salesforce_pipeline.load_target import LoadTarget
from salesforce_pipeline.page_batch import (
    BULK_CSV,
    PAGES_AHEAD,
    PageBatch,
    PageFormat,
    RawPageReader,
    rest_batches,
)
from salesforce_pipeline.prefetch import prefetched
from salesforce_pipeline.sql_files import sql_template

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.audit import Attempt
    from salesforce_pipeline.extract import FieldPlan, Window
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import ObjectSpec
    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)


class SlicesStopped(SalesforcePipelineError):
    """Another slice failed for good, so this one stopped after its last committed page."""

    retryable = True


@dataclass
class SliceTotals:
    """What staging read this attempt, summed over slices (thread-safe `add`)."""

    records: int = 0
    rejected: int = 0
    duplicates: int = 0
    pages: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, records: int, rejected: int, duplicates: int, pages: int) -> None:
        """Count one staged batch of `pages` pages."""
        with self._lock:
            self.records += records
            self.rejected += rejected
            self.duplicates += duplicates
            self.pages += pages


@dataclass
class StagingJob:
    """Everything a slice needs to read and stage itself; shared by the slices of one load."""

    hook: SalesforcePipelineHook
    spec: ObjectSpec
    plan: FieldPlan
    settings: PipelineSettings
    window: Window
    checkpoint: Checkpoint
    attempt: Attempt
    progress: extract.Progress
    bulk_max_polls: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    totals: SliceTotals = field(default_factory=SliceTotals)


def stage_slice(job: StagingJob, state: SliceState, conn: PgConnection) -> None:
    """Read the slice from where its checkpoint stands and stage it to the end."""
    checkpoint = job.checkpoint
    target = LoadTarget(
        conn,
        job.spec,
        job.plan.columns,
        schema=job.settings.schema,
        dag_run_id=checkpoint.target.dag_run_id,
        extracted_at=checkpoint.extracted_at,
    )
    fmt = PageFormat(
        fields=tuple(job.plan.fields),
        kinds=dict(job.plan.kinds),
        key_prefix=job.spec.key_prefix,
        data_columns=tuple(target.data_columns),
        extracted_at=checkpoint.extracted_at,
        dag_run_id=checkpoint.target.dag_run_id,
        encoding=target.encoding,
        chunk_size=job.settings.chunk_size,
    )
    _commit(conn, checkpoint, state, replace(state, attempts=state.attempts + 1))
    log.info(
        "%s: slice %d: reading %s",
        job.spec.name,
        state.plan.number,
        "the records changed since the slices were planned"
        if state.plan.catches_up
        else f"about {max(state.plan.expected - state.staged, 0)} records"
        + (f" ({state.staged} staged already)" if state.staged else ""),
    )
    if checkpoint.method == "bulk2" and not state.plan.catches_up:
        # No ORDER BY: it would stop Salesforce from chunking the job by primary key.
        soql = extract.build_soql(job.spec, job.plan.fields, state.plan.window(job.window))
        batches = _bulk_pages(job, state, conn, soql)
    else:
        batches = _rest_pages(job, state, conn)
    for batch, resume_at in batches:
        if job.stop.is_set():
            raise SlicesStopped(f"{job.spec.name}: slice {state.plan.number} stopped: another slice failed")
        _stage_batch(job, state, target, fmt, batch, resume_at)


def _stage_batch(
    job: StagingJob,
    state: SliceState,
    target: LoadTarget,
    fmt: PageFormat,
    batch: PageBatch,
    resume_at: str | None,
) -> None:
    """Prepare one batch, COPY each of its chunks as it is ready, commit with the slice's progress.

    The transaction starts at the first COPY, with the fence: a batch being prepared holds no
    transaction open (and `_commit` fences again before committing)."""
    checkpoint, conn = job.checkpoint, target.conn
    stage = checkpoint.destination(state)
    fenced = False

    def copy(payload: bytes) -> None:
        nonlocal fenced
        if not fenced:
            with conn.cursor() as cur:
                checkpoint.fence(cur)
            fenced = True
        target.copy_into(stage, io.BytesIO(payload))

    pages = len(batch.bodies)  # counted now: preparing the batch lets its bodies go
    totals = prepare_batch(fmt, batch, copy)
    del batch
    if totals.rejects:
        with conn.cursor() as cur:
            _stage_rejects(cur, checkpoint, state, totals.rejects, job.spec.key_prefix)
    staged = replace(
        state,
        staged=state.staged + totals.rows,
        resume_at=resume_at,
        done=resume_at is None,
        last_id=totals.last_id or state.last_id,
    )
    _commit(conn, checkpoint, state, staged)
    job.totals.add(totals.records, len(totals.rejects), totals.duplicates, pages)
    job.progress.page(totals.records, pages=pages)


def _stage_rejects(
    cur: Any, checkpoint: Checkpoint, state: SliceState, rejects: list, key_prefix: str
) -> None:
    from psycopg2.extras import execute_values

    names_row = valid_ids([r.record_id for r in rejects], key_prefix)
    execute_values(
        cur,
        sql_template("stage_reject.sql", rejects=checkpoint.rejects_table),
        [
            (state.plan.number, r.record_id, r.reason, r.raw_record, bool(valid))
            for r, valid in zip(rejects, names_row, strict=True)
        ],
    )


def _commit(conn: PgConnection, checkpoint: Checkpoint, state: SliceState, new: SliceState) -> None:
    """Save ``new`` as the slice's progress and commit; only then does ``state`` take it on."""
    with conn.cursor() as cur:
        checkpoint.fence(cur)
        checkpoint.save(cur, new)
    conn.commit()
    state.staged, state.done, state.resume_at = new.staged, new.done, new.resume_at
    state.bulk_job_id, state.attempts, state.last_id = new.bulk_job_id, new.attempts, new.last_id


def _rest_pages(
    job: StagingJob, state: SliceState, conn: PgConnection
) -> Iterator[tuple[PageBatch, str | None]]:
    """The slice's REST pages in Id order, in batches: from its stored cursor if Salesforce still
    has it, else from a new query past its last committed record."""
    hook, settings, window = job.hook, job.settings, state.plan.window(job.window)

    def pages(resume_url: str | None, after_id: str | None = None) -> Iterator[tuple[Any, str | None]]:
        return hook.query_pages_resumable(
            extract.build_soql(job.spec, job.plan.fields, window, in_id_order=True, after_id=after_id),
            include_deleted=True,
            batch_size=settings.rest_batch_size,
            decoder=RawPageReader(),
            resume_url=resume_url,
        )

    source = pages(state.resume_at)
    if state.resume_at:
        try:
            first = next(source)
        except SalesforceCursorGone as exc:
            # Released (more than 10 cursors of the user), idle for 15 minutes, or closed once its
            # last page was sent: query on past the last record committed (the records are in Id
            # order), or from the start when there is none.
            log.info(
                "%s: slice %d: its query cursor is gone (%s); %s",
                job.spec.name,
                state.plan.number,
                exc,
                f"querying on past Id {state.last_id}" if state.last_id else "reading it from its start",
            )
            if state.last_id is None:
                job.checkpoint.reset(conn, state)
                conn.commit()
            source = pages(None, after_id=state.last_id)
        else:
            source = _chain(first, source)
    # The next batch's pages download while this one is prepared and staged. A batch holds whole
    # pages only: it is committed with the cursor after its last page, and a cursor resumes
    # after a page, not inside one.
    downloaded = prefetched(
        source, depth=PAGES_AHEAD, name=f"{job.spec.name} slice {state.plan.number} prefetch"
    )
    yield from rest_batches(downloaded, settings.chunk_size)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _bulk_pages(
    job: StagingJob, state: SliceState, conn: PgConnection, soql: str
) -> Iterator[tuple[PageBatch, str | None]]:
    """The slice's Bulk 2.0 job's results pages: its stored job and locator when Salesforce still
    has the job, else a new job (and the slice's staged rows go: they came from the old one)."""
    settings, checkpoint = job.settings, job.checkpoint

    def created(job_id: str) -> None:
        if state.staged or state.resume_at:
            log.info(
                "%s: slice %d: its Bulk job is gone; staging it again from a new job",
                job.spec.name,
                state.plan.number,
            )
            checkpoint.reset(conn, state)
        _commit(conn, checkpoint, state, replace(state, bulk_job_id=job_id))
        job.attempt.record_bulk_job(job_id, soql, datetime.now(UTC))

    for content, locator in job.hook.bulk2_query_pages_resumable(
        soql,
        include_deleted=True,
        max_records=settings.bulk_page_size,
        poll_interval=settings.bulk_poll_seconds,
        max_wait=settings.bulk_max_wait_seconds,
        max_polls=job.bulk_max_polls,
        resume_job_id=state.bulk_job_id,
        on_job_created=created,
        start_locator=state.resume_at,
    ):
        yield PageBatch(BULK_CSV, [content]), locator
        del content
