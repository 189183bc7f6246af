"""Bulk API 2.0 query jobs for :class:`~salesforce_pipeline.hooks.salesforce.SalesforcePipelineHook`.

A job is created (or an earlier attempt's job resumed), polled to completion within a number of
polls and a wall-clock wait, and its CSV results pages are read one at a time. A job that runs
out of either is aborted in Salesforce, so it neither keeps running for nobody nor tempts a
caller into polling it until the org's daily allowance is gone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.bulk_csv import bulk_page_records
from salesforce_pipeline.errors import (
    BulkJobBudgetExhausted,
    BulkJobWaitExhausted,
    SalesforceApiError,
    SalesforceBulkJobError,
    SalesforcePipelineError,
)
from salesforce_pipeline.hooks.rest import read_json, whole_body
from salesforce_pipeline.hooks.transport import Retryable

if TYPE_CHECKING:
    import requests
    from airflow.sdk.types import Logger
    from simple_salesforce import Salesforce

    from salesforce_pipeline.auth import ClientSettings
    from salesforce_pipeline.hooks.transport import SalesforceTransport

FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
RESUMABLE_STATES = frozenset({"UploadComplete", "InProgress", "JobComplete"})
# A job's status is asked for less and less often: each pause is 1.5 times the one before, up
# to 30 s (or the configured interval, if longer), so an hour-long job costs ~130 polls, not 1,800.
POLL_GROWTH = 1.5
POLL_MAX_INTERVAL = 30.0
POLL_CAP_FACTOR = 16
# Failed jobs whose errorMessage says Salesforce broke, not the query: worth another try.
# "InternalServerError", "UNKNOWN_EXCEPTION", "Unknown : Exception with unknown cause occurred",
# "Timeout"/"QUERY_TIMEOUT", "Retried more than fifteen times" (its own retries of reading the
# results ran out) are Salesforce's texts; an invalid query fails at creation or with its code.
_TRANSIENT_JOB_FAILURE = re.compile(
    r"internal ?server ?error|unknown_exception|exception with unknown cause|server_unavailable"
    r"|timed? ?out|retried more than|try again",
    re.IGNORECASE,
)


def poll_intervals(first: float) -> Iterator[float]:
    """The pauses before each status poll: `first`, then 1.5 times longer each time, capped at
    POLL_MAX_INTERVAL or POLL_CAP_FACTOR times `first`, whichever is shorter (never below `first`).

    The cap scales with the setting so that a short `bulk_poll_seconds` (a test's, or an org whose
    jobs finish in seconds) keeps polls short too; the default 2 s reaches the 30 s cap.
    """
    interval, cap = first, max(first, min(POLL_MAX_INTERVAL, first * POLL_CAP_FACTOR))
    while True:
        yield interval
        interval = min(cap, interval * POLL_GROWTH)


def job_failure_is_transient(error_message: str) -> bool:
    """Whether a Failed job's errorMessage says Salesforce failed it (a rerun may pass)."""
    return bool(_TRANSIENT_JOB_FAILURE.search(error_message))


class Bulk2QueryMixin:
    """Bulk 2.0 query jobs, through the hook's transport (session refresh, retries, counting)."""

    if TYPE_CHECKING:  # what the hook this is mixed into provides

        @property
        def http(self) -> SalesforceTransport:
            """The hook's transport."""

        @property
        def settings(self) -> ClientSettings:
            """The connection's client settings."""

        @property
        def log(self) -> Logger:
            """The hook's logger."""

        _sleep: Callable[[float], None]

        def get_conn(self) -> Salesforce:
            """The logged-in simple-salesforce client."""

    def bulk2_query_csv_pages(self, soql: str, **options: Any) -> Iterator[bytes]:
        """Run a Bulk API 2.0 query job and yield each CSV results page: the pages of
        :meth:`bulk2_query_pages_resumable` (same options) without their locators."""
        for content, _locator in self.bulk2_query_pages_resumable(soql, **options):
            yield content

    def bulk2_query_pages_resumable(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        max_records: int = 50000,
        poll_interval: float = 2.0,
        max_wait: float = 3600.0,
        max_polls: int | None = None,
        resume_job_id: str | None = None,
        on_job_created: Callable[[str], None] | None = None,
        start_locator: str | None = None,
    ) -> Iterator[tuple[bytes, str | None]]:
        """Run a Bulk API 2.0 query job and yield each CSV results page (header row included), as
        the UTF-8 bytes Salesforce sent, checked against ``Sforce-NumberOfRecords``.

        Creates the job (``query`` or ``queryAll``), or resumes ``resume_job_id``, polls it to
        ``JobComplete`` and follows ``Sforce-Locator`` through the results. Every call refreshes an
        expired session and retries transient failures; results are read with the API version
        that created the job. A job still running when ``max_polls`` or ``max_wait`` runs out is
        aborted in Salesforce (one more API call) before the error is raised.

        :param max_records: ``maxRecords`` per results page.
        :param poll_interval: seconds before the first status poll; each later pause is 1.5 times
            the one before, up to 30 s (:func:`poll_intervals`).
        :param max_wait: seconds the job may take; past them it is aborted (:class:`BulkJobWaitExhausted`).
        :param max_polls: status polls the job may cost (the caller derives it from the run's API
            budget); past them it is aborted (:class:`BulkJobBudgetExhausted`). None: only
            ``max_wait`` limits the polls.
        :param resume_job_id: the job an earlier attempt created for this query: when it is still
            UploadComplete, InProgress or JobComplete (and of the same operation and API version)
            its results are read and no job is created; otherwise a new job is created.
        :param on_job_created: called with a new job's id as soon as Salesforce has created it
            (the caller persists it so that its next attempt can resume the job).
        :param start_locator: with a resumed job, the ``Sforce-Locator`` of the first page not yet
            read (each page is yielded with the locator of the page after it, None after the last).
        :raises SalesforceBulkJobError: the job ended Failed or Aborted (Salesforce's errorMessage);
            ``retryable`` when Salesforce failed it with an internal error or a timeout.
        :raises BulkJobBudgetExhausted: ``max_polls`` polls were spent; the job was aborted.
        :raises BulkJobWaitExhausted: ``max_wait`` seconds passed; the job was aborted.
        """
        if max_polls is not None and max_polls < 1:
            raise ValueError("max_polls must be at least 1, or None for no limit")
        client = self.get_conn()
        version = self.settings.version
        # Fixed at creation: a job's results must be read with the version that created it.
        jobs_url = f"https://{client.sf_instance}/services/data/v{version}/jobs/query"
        operation = "queryAll" if include_deleted else "query"
        resumed = self._resumable_job(resume_job_id, operation, version) if resume_job_id else None
        if resume_job_id and resumed is not None:
            job_id = resume_job_id
        else:
            job_id = self._create_bulk_job(jobs_url, operation, soql)
            if on_job_created is not None:
                on_job_created(job_id)
        job_url = f"{jobs_url}/{job_id}"
        if resumed is None or resumed.get("state") != "JobComplete":
            self._wait_for_bulk_job(job_id, job_url, poll_interval, max_wait, max_polls)

        # A locator belongs to its job: it is used only when that job is the one being read.
        locator: str | None = start_locator if resumed is not None else None
        pages = 0
        while True:
            params: dict[str, Any] = {"maxRecords": max_records}
            if locator:
                params["locator"] = locator
            content, locator = self.http.call(
                "GET",
                f"{job_url}/results",
                _read_csv_page,
                what=f"Bulk 2.0 job {job_id} results page {pages + 1}",
                params=params,
                headers={"Accept": "text/csv"},
                stream=True,  # read by whole_body in one piece, not joined from 10 kB pieces
            )
            pages += 1
            finished = not locator or locator == "null"
            if content:
                yield content, None if finished else locator
            # Let the caller's page go before the next one downloads (it is tens of MB).
            del content
            if finished:
                break
        self.log.info("Bulk 2.0 job %s: read %d results pages", job_id, pages)

    def bulk2_job_info(self, job_id: str) -> dict | None:
        """A query job's status (``GET /jobs/query/{id}``, one API call), or None when Salesforce
        has no such job (deleted, or of another org)."""
        client = self.get_conn()
        url = f"https://{client.sf_instance}/services/data/v{self.settings.version}/jobs/query/{job_id}"
        try:
            return self.http.call("GET", url, read_json, what=f"Bulk 2.0 job {job_id} status")
        except SalesforceApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _create_bulk_job(self, jobs_url: str, operation: str, soql: str) -> str:
        payload = {"operation": operation, "query": soql, "columnDelimiter": "COMMA", "lineEnding": "LF"}
        job = self.http.call(
            "POST",
            jobs_url,
            read_json,
            what="Bulk 2.0 job creation",
            json=payload,
            headers={"Accept": "application/json"},
        )
        job_id = str(job["id"])
        self.log.info("Bulk 2.0 %s job %s created", operation, job_id)
        return job_id

    def _resumable_job(self, job_id: str, operation: str, version: str) -> dict | None:
        """The status of `job_id` when it can be resumed (running or complete, same operation and
        API version), else None."""
        info = self.bulk2_job_info(job_id)
        if info is None:
            self.log.info(
                "Bulk 2.0 job %s of an earlier attempt no longer exists: starting a new job", job_id
            )
            return None
        state = info.get("state")
        if state not in RESUMABLE_STATES:
            self.log.info("Bulk 2.0 job %s of an earlier attempt is %s: starting a new job", job_id, state)
            return None
        job_operation, job_version = info.get("operation", operation), info.get("apiVersion", version)
        if job_operation != operation or float(job_version) != float(version):
            # Its results could only be read with the version that created it.
            self.log.info(
                "Bulk 2.0 job %s of an earlier attempt is a %s job of API v%s, not %s v%s: starting a new job",
                job_id,
                job_operation,
                job_version,
                operation,
                version,
            )
            return None
        self.log.info(
            "Bulk 2.0 job %s of an earlier attempt is %s: resuming it instead of creating another",
            job_id,
            state,
        )
        return info

    def _wait_for_bulk_job(
        self, job_id: str, job_url: str, poll_interval: float, max_wait: float, max_polls: int | None = None
    ) -> None:
        """Poll the job until JobComplete; abort it when `max_polls` or `max_wait` runs out."""
        started = time.monotonic()
        deadline = started + max_wait
        pauses = poll_intervals(poll_interval)
        polls = 0
        while True:
            # The pause comes first: a job just created is never complete yet.
            self._sleep(max(0.0, min(next(pauses), deadline - time.monotonic())))
            info = self.http.call("GET", job_url, read_json, what=f"Bulk 2.0 job {job_id} status")
            polls += 1
            state = info.get("state")
            if state == "JobComplete":
                self.log.info(
                    "Bulk 2.0 job %s complete after %d status polls: %s records",
                    job_id,
                    polls,
                    info.get("numberRecordsProcessed", "?"),
                )
                return
            if state in FINAL_STATES:
                reason = self.http.scrub(str(info.get("errorMessage") or "no errorMessage given"))
                transient = state == "Failed" and job_failure_is_transient(reason)
                raise SalesforceBulkJobError(
                    f"Bulk 2.0 query job {job_id} ended {state}: {reason}"
                    + (
                        "; Salesforce failed it on its side (not the query), so the task is retried"
                        if transient
                        else ""
                    ),
                    job_id=job_id,
                    state=state,
                    retryable=transient,
                )
            if max_polls is not None and polls >= max_polls:
                self._abort_bulk_job(job_id, job_url)
                raise BulkJobBudgetExhausted(
                    f"Bulk 2.0 query job {job_id} was still {state} after {polls} status polls, all the "
                    "run's API budget allowed; the job was aborted in Salesforce and nothing was loaded. "
                    "Not retried: a retry would spend more of the daily allowance. Raise api_budget_share "
                    "in Variable 'salesforce_to_postgres', or run when more of the daily allowance is left.",
                    job_id=job_id,
                    state=state,
                )
            waited = time.monotonic() - started
            if waited >= max_wait:
                self._abort_bulk_job(job_id, job_url)
                raise BulkJobWaitExhausted(
                    f"Bulk 2.0 query job {job_id} was still {state} after {waited:.1f} s ({polls} status "
                    f"polls), past the {max_wait:g} s allowed (bulk_max_wait_seconds); the job was aborted "
                    "in Salesforce and nothing was loaded. Not retried: a retry would wait as long. Raise "
                    "bulk_max_wait_seconds in Variable 'salesforce_to_postgres', or run when Salesforce's "
                    "Bulk API is less busy (see its status page).",
                    job_id=job_id,
                    state=state,
                )

    def _abort_bulk_job(self, job_id: str, job_url: str) -> None:
        """Abort a job (``PATCH {"state": "Aborted"}``, one API call); a failure to abort is
        logged, not raised, so that it cannot hide why the job was given up."""
        try:
            self.http.call(
                "PATCH",
                job_url,
                read_json,
                what=f"Bulk 2.0 job {job_id} abort",
                json={"state": "Aborted"},
                headers={"Accept": "application/json"},
            )
        except SalesforcePipelineError as exc:
            self.log.warning(
                "Bulk 2.0 job %s could not be aborted (%s); it may run on in Salesforce", job_id, exc
            )
        else:
            self.log.warning("Bulk 2.0 job %s aborted in Salesforce", job_id)


def _read_csv_page(response: requests.Response) -> tuple[bytes, str | None]:
    """``(csv_bytes, next_locator)`` of a Bulk 2.0 results page, checked against its record count.

    Decoded as UTF-8 ourselves: requests would guess ISO-8859-1 for ``text/csv`` without a charset.
    """
    content = whole_body(response)
    expected = response.headers.get("Sforce-NumberOfRecords")
    try:
        records = bulk_page_records(content)
    except UnicodeDecodeError:
        raise Retryable("Bulk 2.0 results page is not valid UTF-8 (cut short?)") from None
    except ValueError as problem:
        raise Retryable(f"Bulk 2.0 results page is malformed: {problem} (cut short?)") from None
    if expected is not None and expected.strip().isdigit() and records != int(expected):
        raise Retryable(
            f"Bulk 2.0 results page holds {records} records but Sforce-NumberOfRecords says {expected}"
        )
    return content, response.headers.get("Sforce-Locator")
