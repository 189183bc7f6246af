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
from typing import Any

from salesforce_pipeline.errors import (
    BulkJobBudgetExhausted,
    BulkJobWaitExhausted,
    SalesforceApiError,
    SalesforceBulkJobError,
    SalesforcePipelineError,
)
from salesforce_pipeline.hooks.pages import _read_csv_page, _read_json, csv_page_lines

FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
RESUMABLE_STATES = frozenset({"UploadComplete", "InProgress", "JobComplete"})
# A job's status is asked for less and less often: each interval is 1.5 times the one before,
# up to 16 times the configured one (2 s -> 32 s), so an hour-long job costs ~120 polls, not 1,800.
POLL_GROWTH = 1.5
POLL_CAP_FACTOR = 16
# Failed jobs whose errorMessage says Salesforce broke, not the query: worth another try.
_TRANSIENT_JOB_FAILURE = re.compile(
    r"internal ?server ?error|unknown_exception|server_unavailable|timed? ?out|timeout|try again",
    re.IGNORECASE,
)


def poll_intervals(first: float) -> Iterator[float]:
    """The pauses between status polls: growing from `first` to POLL_CAP_FACTOR times it."""
    interval, cap = first, first * POLL_CAP_FACTOR
    while True:
        yield interval
        interval = min(cap, interval * POLL_GROWTH)


def job_failure_is_transient(error_message: str) -> bool:
    return bool(_TRANSIENT_JOB_FAILURE.search(error_message))


class Bulk2QueryMixin:
    """Bulk 2.0 query jobs, through the hook's `_api_call` (session refresh, retries, counting)."""

    def bulk2_query_csv_pages(
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
    ) -> Iterator[bytes]:
        """Run a Bulk API 2.0 query job and yield each CSV results page (header row included), as
        the UTF-8 bytes Salesforce sent, checked against ``Sforce-NumberOfRecords``; read them with
        :func:`~salesforce_pipeline.hooks.pages.csv_page_lines`.

        Creates the job (``query`` or ``queryAll``), polls it to ``JobComplete`` and follows
        ``Sforce-Locator`` through the results. Every call refreshes an expired session and retries
        transient failures; results are read with the API version that created the job.

        :param max_records: ``maxRecords`` per results page.
        :param poll_interval: seconds before the first status poll; later pauses grow (``poll_intervals``).
        :param max_wait: seconds the job may take; past them it is aborted (:class:`BulkJobWaitExhausted`).
        :param max_polls: status polls the job may cost; past them it is aborted
            (:class:`BulkJobBudgetExhausted`). None: no limit but ``max_wait``.
        :param resume_job_id: a job an earlier attempt created for the same query: read instead of
            creating another when it is still running or complete.
        :param on_job_created: called with a new job's id as soon as it exists (to persist it).
        :raises SalesforceBulkJobError: the job ended Failed or Aborted (Salesforce's errorMessage);
            ``retryable`` when Salesforce failed it with an internal error or a timeout.
        """
        client = self.get_conn()
        # Fixed at creation: a job's results must be read with the version that created it.
        jobs_url = f"https://{client.sf_instance}/services/data/v{self.settings.version}/jobs/query"
        operation = "queryAll" if include_deleted else "query"
        job_id = self._resumable_job(jobs_url, resume_job_id, operation) if resume_job_id else None
        if job_id is None:
            job_id = self._create_bulk_job(jobs_url, operation, soql)
            if on_job_created is not None:
                on_job_created(job_id)
        job_url = f"{jobs_url}/{job_id}"
        self._wait_for_bulk_job(job_id, job_url, poll_interval, max_wait, max_polls)

        locator: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"maxRecords": max_records}
            if locator:
                params["locator"] = locator
            content, locator = self._api_call(
                "GET",
                f"{job_url}/results",
                _read_csv_page,
                what=f"Bulk 2.0 job {job_id} results page {pages + 1}",
                params=params,
                headers={"Accept": "text/csv"},
                stream=True,  # read by _read_csv_page in one piece, not joined from 10 kB pieces
            )
            pages += 1
            if content:
                yield content
            # Let the caller's page go before the next one downloads (it is tens of MB).
            del content
            if not locator or locator == "null":
                break
        self.log.info("Bulk 2.0 job %s: read %d results pages", job_id, pages)

    def bulk2_query_pages(self, soql: str, **options: Any) -> Iterator[str]:
        """Like :meth:`bulk2_query_csv_pages` (same options), each page as one string (NUL dropped)."""
        for content in self.bulk2_query_csv_pages(soql, **options):
            yield "".join(csv_page_lines(content))

    def bulk2_job_info(self, job_id: str) -> dict | None:
        """A query job's status (``GET /jobs/query/{id}``), or None when Salesforce has no such job."""
        client = self.get_conn()
        url = f"https://{client.sf_instance}/services/data/v{self.settings.version}/jobs/query/{job_id}"
        try:
            return self._api_call("GET", url, _read_json, what=f"Bulk 2.0 job {job_id} status")
        except SalesforceApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _create_bulk_job(self, jobs_url: str, operation: str, soql: str) -> str:
        payload = {"operation": operation, "query": soql, "columnDelimiter": "COMMA", "lineEnding": "LF"}
        job = self._api_call(
            "POST",
            jobs_url,
            _read_json,
            what="Bulk 2.0 job creation",
            json=payload,
            headers={"Accept": "application/json"},
        )
        job_id = str(job["id"])
        self.log.info("Bulk 2.0 %s job %s created", operation, job_id)
        return job_id

    def _resumable_job(self, jobs_url: str, job_id: str, operation: str) -> str | None:
        """`job_id` when that job is still running or complete (and of this operation), else None."""
        info = self.bulk2_job_info(job_id)
        state = info.get("state") if info else "gone"
        if info and state in RESUMABLE_STATES and info.get("operation", operation) == operation:
            self.log.info("Bulk 2.0 job %s of an earlier attempt is %s: resuming it", job_id, state)
            return job_id
        self.log.info("Bulk 2.0 job %s of an earlier attempt is %s: starting a new job", job_id, state)
        return None

    def _wait_for_bulk_job(
        self, job_id: str, job_url: str, poll_interval: float, max_wait: float, max_polls: int | None = None
    ) -> None:
        deadline = time.monotonic() + max_wait
        pauses = poll_intervals(poll_interval)
        polls = 0
        while True:
            info = self._api_call("GET", job_url, _read_json, what=f"Bulk 2.0 job {job_id} status")
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
                reason = self._scrub(str(info.get("errorMessage") or "no errorMessage given"))
                transient = state == "Failed" and job_failure_is_transient(reason)
                raise SalesforceBulkJobError(
                    f"Bulk 2.0 query job {job_id} ended {state}: {reason}"
                    + ("; Salesforce failed it on its side, so the task is retried" if transient else ""),
                    job_id=job_id,
                    state=state,
                    retryable=transient,
                )
            if max_polls is not None and polls >= max_polls:
                self._abort_bulk_job(job_id, job_url)
                raise BulkJobBudgetExhausted(
                    f"Bulk 2.0 query job {job_id} was still {state} after {polls} status polls, all the "
                    "run's API budget allowed; the job was aborted in Salesforce and nothing was loaded. "
                    "Raise api_budget_share in Variable 'salesforce_to_postgres', or run when more of the "
                    "daily allowance is left (retrying now would spend more of it).",
                    job_id=job_id,
                    state=state,
                )
            pause = next(pauses)
            if time.monotonic() + pause > deadline:
                self._abort_bulk_job(job_id, job_url)
                raise BulkJobWaitExhausted(
                    f"Bulk 2.0 query job {job_id} was still {state} after {max_wait:g} s "
                    f"(bulk_max_wait_seconds); the job was aborted in Salesforce and nothing was loaded. "
                    "Raise bulk_max_wait_seconds, or check Salesforce's status page for Bulk API delays.",
                    job_id=job_id,
                    state=state,
                )
            self._sleep(pause)

    def _abort_bulk_job(self, job_id: str, job_url: str) -> None:
        """Abort a job (``PATCH {"state": "Aborted"}``); a failure to abort is logged, not raised."""
        try:
            self._api_call(
                "PATCH",
                job_url,
                _read_json,
                what=f"Bulk 2.0 job {job_id} abort",
                json={"state": "Aborted"},
                headers={"Accept": "application/json"},
            )
            self.log.warning("Bulk 2.0 job %s aborted in Salesforce", job_id)
        except SalesforcePipelineError as exc:
            self.log.warning("Bulk 2.0 job %s could not be aborted (%s); it may run on", job_id, exc)
