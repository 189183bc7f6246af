"""Bulk API 2.0 query jobs: create, poll, results pages (CSV), abort, delete, list.

The result set is snapshotted when the job is created. A job reports ``UploadComplete`` on
creation, ``InProgress`` on its first poll(s) and then ``JobComplete`` (or ``Failed``), which
exercises a client's polling loop deterministically, without wall-clock waits; with the latency
model's processing time (:mod:`salesforce_emulator.latency`) it runs until that time has passed.
Results pages are sent gzip-compressed (``Content-Encoding: gzip``), as Salesforce always does.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from salesforce_emulator.generator import make_ids
from salesforce_emulator.limits import too_many_bulk_jobs
from salesforce_emulator.render import csv_header, csv_renderer
from salesforce_emulator.rest import Response, error, ok_json
from salesforce_emulator.soql import CompiledQuery, SoqlError
from salesforce_emulator.wire import format_datetime, gzip_bytes

if TYPE_CHECKING:
    from salesforce_emulator.store import Org

__all__ = ["BulkJob", "BulkJobStore"]

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_STATE_CODES = {
    "UploadComplete": "UPLOAD_COMPLETE",
    "InProgress": "IN_PROGRESS",
    "Aborted": "ABORTED",
    "Failed": "FAILED",
    "JobComplete": "JOB_COMPLETE",
}
_COMPOUND_ERROR = "FUNCTIONALITY_NOT_ENABLED: Selecting compound data not supported in Bulk Query"


@dataclass(slots=True)
class BulkJob:
    """A Bulk 2.0 query job and its snapshotted result."""

    id: str
    operation: str
    object: str
    query: str
    version: str
    created_by: str
    created: str
    column_delimiter: str
    line_ending: str
    cq: CompiledQuery | None
    entries: list[Any] = field(default_factory=list)
    state: str = "UploadComplete"
    polls: int = 0
    error_message: str | None = None
    fail_with: str | None = None
    modstamp: str = ""
    ready_at: float | None = None  # time.monotonic() when processing ends (latency model)
    processing_ms: int = 37
    page: tuple[tuple[int, int], bytes] | None = None  # the last results page sent, compressed

    def running(self, now: float) -> bool:
        """Whether the job still counts as running (UploadComplete/InProgress, not yet done)."""
        if self.state not in ("UploadComplete", "InProgress"):
            return False
        return self.ready_at is None or now < self.ready_at

    def info(self, *, detail: bool) -> dict[str, Any]:
        """The job JSON: creation fields, plus processing figures on GET (``detail``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created,
            "systemModstamp": self.modstamp or self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
        }
        if detail:
            out["jobType"] = "V2Query"
        out["lineEnding"] = self.line_ending
        out["columnDelimiter"] = self.column_delimiter
        if detail:
            done = self.state == "JobComplete"
            out["numberRecordsProcessed"] = len(self.entries) if done else 0
            out["retries"] = 0
            out["totalProcessingTime"] = self.processing_ms if done else 0
            out["isPkChunkingSupported"] = True
            if self.error_message:
                out["errorMessage"] = self.error_message
        return out


class BulkJobStore:
    """All Bulk 2.0 query jobs of the org."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, BulkJob] = {}
        self._counter = 0
        self.created_today = 0

    def add(self, job_factory: Any, max_running: int | None = None) -> BulkJob | None:
        """Create a job with the next Id (``job_factory(job_id) -> BulkJob``); None when
        ``max_running`` jobs are running already."""
        with self._lock:
            if max_running is not None and self._running() >= max_running:
                return None
            self._counter += 1
            self.created_today += 1
            job = job_factory(make_ids("750", self._counter, 1)[0])
            self._jobs[job.id] = job
            return job

    def _running(self) -> int:
        now = time.monotonic()
        return sum(1 for job in self._jobs.values() if job.running(now))

    def running(self) -> int:
        """How many jobs are running (UploadComplete or InProgress)."""
        with self._lock:
            return self._running()

    def get(self, job_id: str) -> BulkJob | None:
        """A job by Id."""
        with self._lock:
            return self._jobs.get(job_id)

    def delete(self, job_id: str) -> bool:
        """Forget a job; False if unknown."""
        with self._lock:
            return self._jobs.pop(job_id, None) is not None

    def all(self) -> list[BulkJob]:
        """Every job, oldest first."""
        with self._lock:
            return list(self._jobs.values())


def create(org: Org, user_id: str, version: str, body: bytes, fail_with: str | None) -> Response:
    """``POST /jobs/query``."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return error(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON object")
    if not isinstance(payload, dict):
        return error(400, "JSON_PARSER_ERROR", "Expected a JSON object")
    operation = payload.get("operation")
    if operation not in ("query", "queryAll"):
        return error(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    soql = payload.get("query")
    if not isinstance(soql, str) or not soql.strip():
        return error(400, "INVALIDJOB", "InvalidJob : Query is required for query jobs")
    delimiter = payload.get("columnDelimiter", "COMMA")
    line_ending = payload.get("lineEnding", "LF")
    if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
        return error(400, "INVALIDJOB", "InvalidJob : Invalid columnDelimiter or lineEnding")
    if payload.get("contentType", "CSV") != "CSV":
        return error(400, "INVALIDJOB", "InvalidJob : Only CSV is supported for query jobs")
    try:
        cq = org.compile(soql)
    except SoqlError as exc:
        return error(400, exc.code, exc.message)
    if cq.count_only or cq.offset is not None or cq.uses_fields_fn:
        what = "COUNT()" if cq.count_only else "OFFSET" if cq.offset is not None else "FIELDS()"
        return error(400, "API_ERROR", f"{what} is not supported by Bulk API 2.0 query")
    max_running = org.limits.max_concurrent_bulk_jobs
    if max_running is not None and org.bulk_jobs.running() >= max_running:
        return too_many_bulk_jobs(org)  # before the snapshot; add() checks again, atomically
    failure = fail_with
    if cq.has_compound:
        failure = _COMPOUND_ERROR
    entries: list[Any] = []
    if not failure:
        cq, entries = org.run(cq, include_deleted=operation == "queryAll")
    created = format_datetime(org.now())
    seconds = None if failure else org.latency.job_seconds(len(entries))

    def factory(job_id: str) -> BulkJob:
        job = BulkJob(
            id=job_id,
            operation=operation,
            object=cq.sobject.name,
            query=soql,
            version=version,
            created_by=user_id,
            created=created,
            column_delimiter=delimiter,
            line_ending=line_ending,
            cq=cq,
            entries=entries,
            fail_with=failure,
        )
        if seconds is not None:
            job.ready_at = time.monotonic() + seconds
            job.processing_ms = round(seconds * 1000)
        return job

    job = org.bulk_jobs.add(factory, max_running)
    if job is None:
        return too_many_bulk_jobs(org)
    return ok_json(job.info(detail=False))


def poll(org: Org, job_id: str) -> Response:
    """``GET /jobs/query/{id}``: advances UploadComplete -> InProgress -> JobComplete/Failed."""
    job = org.bulk_jobs.get(job_id)
    if job is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    if job.state in ("UploadComplete", "InProgress"):
        job.polls += 1
        if job.fail_with:
            job.state = "Failed"
            job.error_message = job.fail_with
        elif job.ready_at is not None:  # the latency model's processing time decides
            job.state = "JobComplete" if time.monotonic() >= job.ready_at else "InProgress"
        elif job.polls > org.bulk_in_progress_polls:
            job.state = "JobComplete"
        else:
            job.state = "InProgress"
        job.modstamp = format_datetime(org.now())
    return ok_json(job.info(detail=True))


def abort(org: Org, job_id: str, body: bytes) -> Response:
    """``PATCH /jobs/query/{id}`` with ``{"state": "Aborted"}``."""
    job = org.bulk_jobs.get(job_id)
    if job is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return error(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON object")
    if not isinstance(payload, dict) or payload.get("state") != "Aborted":
        return error(400, "INVALIDJOBSTATE", "Invalid state: query jobs can only be set to Aborted")
    if job.state in ("JobComplete", "Failed", "Aborted"):
        return error(400, "INVALIDJOBSTATE", f"Aborting already {job.state} Job not allowed")
    job.state = "Aborted"
    job.entries = []
    job.modstamp = format_datetime(org.now())
    return ok_json(job.info(detail=False))


def delete(org: Org, job_id: str) -> Response:
    """``DELETE /jobs/query/{id}``: 204 No Content, as Salesforce answers."""
    job = org.bulk_jobs.get(job_id)
    if job is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    if job.state in ("UploadComplete", "InProgress"):
        return error(400, "API_ERROR", "Can't delete a job that is in progress; abort it first")
    org.bulk_jobs.delete(job_id)
    return Response(204, b"")


def listing(org: Org) -> Response:
    """``GET /jobs/query``: all query jobs."""
    return ok_json(
        {"done": True, "records": [j.info(detail=False) for j in org.bulk_jobs.all()], "nextRecordsUrl": None}
    )


def _encode_locator(offset: int) -> str:
    # Salesforce's locators look like "MTAwMDA": base64 of the offset, padding stripped.
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int | None:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def results(org: Org, version: str, job_id: str, params: dict[str, str]) -> Response:
    """``GET /jobs/query/{id}/results?maxRecords=N&locator=L``: one CSV page."""
    job = org.bulk_jobs.get(job_id)
    if job is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    done_at = job.ready_at
    if done_at is not None and job.state in ("UploadComplete", "InProgress") and time.monotonic() >= done_at:
        job.state = "JobComplete"  # processed by now, even if nobody polled since
    if job.state != "JobComplete":
        return error(
            412,
            "JOB_NOT_COMPLETE",
            "can only download query results of successfully completed bulk job with status: "
            f"JOB_COMPLETE. Current status: {_STATE_CODES[job.state]}",
        )
    if version != job.version:
        return error(
            409,
            "API_VERSION_MISMATCH",
            f"Query results must be retrieved with the API version that created the job (v{job.version})",
        )
    max_text = params.get("maxRecords")
    if max_text is None:
        max_records = org.bulk_default_max_records
    elif max_text.isdigit() and int(max_text) > 0:
        max_records = int(max_text)
    else:
        return error(400, "INVALIDPARAMETER", f"Invalid maxRecords: {max_text}")
    start = 0
    locator = params.get("locator")
    if locator:
        decoded = _decode_locator(locator)
        if decoded is None or decoded > len(job.entries):
            return error(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        start = decoded
    end = min(len(job.entries), start + max_records)
    next_locator = _encode_locator(end) if end < len(job.entries) else "null"
    return Response(
        200,
        _page_body(job, start, end),
        "text/csv",
        {
            "Content-Encoding": "gzip",
            "Sforce-NumberOfRecords": str(end - start),
            "Sforce-Locator": next_locator,
        },
    )


def _page_body(job: BulkJob, start: int, end: int) -> bytes:
    """A results page as gzip (level 1: cheap); the last one is kept for a client's retry."""
    cached = job.page
    if cached is not None and cached[0] == (start, end):
        return cached[1]
    assert job.cq is not None
    delimiter = DELIMITERS[job.column_delimiter]
    ending = LINE_ENDINGS[job.line_ending]
    render = csv_renderer(job.cq, delimiter, ending)
    text = csv_header(job.cq, delimiter, ending) + "".join(render(e) for e in job.entries[start:end])
    body = gzip_bytes(text.encode())
    job.page = ((start, end), body)
    return body
