"""REST API resources: versions, query/queryAll with cursors, describe, limits, record reads."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from salesforce_emulator.generator import make_ids
from salesforce_emulator.ids import is_valid_id, to_18
from salesforce_emulator.render import json_renderer, json_renderer_bytes
from salesforce_emulator.schema import SCHEMA_BY_LOWER, describe_global, describe_sobject
from salesforce_emulator.soql import SoqlError

if TYPE_CHECKING:
    from collections.abc import Callable

    from salesforce_emulator.store import Org

__all__ = [
    "MAX_VERSION",
    "MIN_VERSION",
    "CursorStore",
    "Response",
    "error",
    "version_label",
]

MIN_VERSION = 31
MAX_VERSION = 66  # Spring '26
DEFAULT_BATCH = 2000
JSON_TYPE = "application/json;charset=UTF-8"


@dataclass(slots=True)
class Response:
    """An HTTP response to send: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: dict[str, str] | None = None


def error(status: int, code: str, message: str) -> Response:
    """A Salesforce REST error: a JSON array with one ``{"message", "errorCode"}`` object."""
    return Response(
        status, json.dumps([{"message": message, "errorCode": code}], ensure_ascii=False).encode()
    )


def ok_json(payload: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(status, json.dumps(payload, ensure_ascii=False).encode())


def version_label(major: int) -> str:
    """Release name of an API version: 59 -> "Winter '24" (three releases a year)."""
    season = ("Winter", "Spring", "Summer")[(major - 59) % 3]
    year = 24 + (major - 59) // 3
    return f"{season} '{year:02d}"


def versions() -> Response:
    """``GET /services/data/``: the versions list (no authentication needed, like Salesforce)."""
    return ok_json(
        [
            {"label": version_label(v), "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
            for v in range(MIN_VERSION, MAX_VERSION + 1)
        ]
    )


def resources(version: str) -> Response:
    """``GET /services/data/vXX.X/``: the resource directory."""
    base = f"/services/data/v{version}"
    names = ("tooling", "metadata", "jobs", "query", "queryAll", "limits", "sobjects", "search", "recent")
    return ok_json({name: f"{base}/{name}" for name in names})


# ---------------------------------------------------------------------------------------------
# Query cursors


@dataclass(slots=True)
class Cursor:
    """Server-side state of a query whose results span several pages."""

    id: str
    user_id: str
    entries: list[Any]
    render: Callable[[Any], bytes]
    include_deleted: bool
    batch_size: int
    last_used: float


class CursorStore:
    """Open query cursors, at most *max_per_user* per user (oldest released first, like
    Salesforce), each released after its last page or 15 minutes of inactivity.

    Inactivity is measured on *clock* (seconds): the emulator passes the org clock, so a test
    that advances it past 15 minutes finds the cursor gone, as a slow client would.
    """

    IDLE_SECONDS = 15 * 60

    def __init__(self, max_per_user: int, clock: Callable[[], float] = time.monotonic):
        self.max_per_user = max_per_user
        self._clock = clock
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._counter = 0

    def open(
        self,
        user_id: str,
        entries: list[Any],
        render: Callable[[Any], bytes],
        include_deleted: bool,
        batch: int,
    ) -> Cursor:
        """Register a cursor over *entries* and return it."""
        with self._lock:
            self._counter += 1
            cursor_id = make_ids("01g", self._counter, 1)[0]
            cursor = Cursor(cursor_id, user_id, entries, render, include_deleted, batch, self._clock())
            self._cursors[cursor_id] = cursor
            mine = [c for c in self._cursors.values() if c.user_id == user_id]
            for old in mine[: max(0, len(mine) - self.max_per_user)]:
                del self._cursors[old.id]
            return cursor

    def get(self, cursor_id: str) -> Cursor | None:
        """The cursor, if still open; touching it resets its idle timer."""
        now = self._clock()
        with self._lock:
            for cid in [c.id for c in self._cursors.values() if now - c.last_used > self.IDLE_SECONDS]:
                del self._cursors[cid]
            cursor = self._cursors.get(cursor_id)
            if cursor is not None:
                cursor.last_used = now
            return cursor

    def close(self, cursor_id: str) -> None:
        """Release a cursor."""
        with self._lock:
            self._cursors.pop(cursor_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cursors)


def parse_batch_size(header: str | None, default: int = DEFAULT_BATCH) -> int:
    """Batch size from ``Sforce-Query-Options: batchSize=N`` (clamped to 200..2000)."""
    if not header:
        return default
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                n = int(value.strip())
            except ValueError:
                return default
            return max(200, min(2000, n))
    return default


def _page(total: int, next_url: str | None, records: list[bytes]) -> bytes:
    head = f'{{"totalSize":{total},"done":{"false" if next_url else "true"},'
    if next_url:
        head += f'"nextRecordsUrl":"{next_url}",'
    return b"".join((head.encode(), b'"records":[', b",".join(records), b"]}"))


def query(
    org: Org, user_id: str, version: str, soql: str | None, include_deleted: bool, options: str | None
) -> Response:
    """``GET /query?q=`` and ``/queryAll?q=``: run the query, snapshot it, return page one."""
    if soql is None or not soql.strip():
        return error(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        cq, entries = org.run(soql, include_deleted=include_deleted)
    except SoqlError as exc:
        return error(400, exc.code, exc.message)
    if cq.count_only:
        return Response(200, _page(len(entries), None, []))
    render = json_renderer_bytes(cq, version, org.fragments)
    batch = parse_batch_size(options)
    if len(entries) <= batch:
        return Response(200, _page(len(entries), None, [render(e) for e in entries]))
    cursor = org.cursors.open(user_id, entries, render, include_deleted, batch)
    next_url = f"/services/data/v{version}/query/{cursor.id}-{batch}"
    return Response(200, _page(len(entries), next_url, [render(e) for e in entries[:batch]]))


def _invalid_locator() -> Response:
    # What Salesforce answers for a cursor it released (the user's 11th opened) or expired.
    return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


def query_more(org: Org, version: str, locator: str, options: str | None) -> Response:
    """``GET /query/{cursor}-{offset}``: the next page of a snapshot."""
    cursor_id, _, offset_text = locator.partition("-")
    cursor = org.cursors.get(cursor_id)
    if cursor is None or not offset_text.isdigit():
        return _invalid_locator()
    start = int(offset_text)
    total = len(cursor.entries)
    if start > total:
        return _invalid_locator()
    batch = parse_batch_size(options, cursor.batch_size)
    end = min(total, start + batch)
    page = [cursor.render(e) for e in cursor.entries[start:end]]
    if end >= total:
        org.cursors.close(cursor.id)
        return Response(200, _page(total, None, page))
    next_url = f"/services/data/v{version}/query/{cursor.id}-{end}"
    return Response(200, _page(total, next_url, page))


def limits(org: Org) -> Response:
    """``GET /limits/``: DailyApiRequests agrees with ``Sforce-Limit-Info``."""
    used, maximum = org.api_usage
    jobs = org.bulk_jobs.created_today if org.bulk_jobs is not None else 0

    def lim(m: int, remaining: int) -> dict[str, int]:
        return {"Max": m, "Remaining": max(0, remaining)}

    return ok_json(
        {
            "ActiveScratchOrgs": lim(3, 3),
            "ConcurrentAsyncGetReportInstances": lim(200, 200),
            "DailyApiRequests": lim(maximum, maximum - used),
            "DailyAsyncApexExecutions": lim(250000, 250000),
            "DailyBulkApiBatches": lim(15000, 15000),
            "DailyBulkV2QueryFileStorageMB": lim(976562, 976562),
            "DailyBulkV2QueryJobs": lim(10000, 10000 - jobs),
            "DataStorageMB": lim(5, 5),
            "FileStorageMB": lim(20, 20),
            "HourlyODataCallout": lim(10000, 10000),
        }
    )


def _sobject_or_404(name: str) -> Any:
    return SCHEMA_BY_LOWER.get(name.lower())


def describe_global_response(version: str) -> Response:
    """``GET /sobjects``."""
    return ok_json(describe_global(version))


def describe(org: Org, version: str, name: str) -> Response:
    """``GET /sobjects/{name}/describe``: the org's current fields, less those hidden from the user."""
    sobject = org.sobject(name)
    if sobject is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    return ok_json(describe_sobject(sobject, version, org.hidden_fields.get(sobject.name, frozenset())))


def sobject_info(version: str, name: str) -> Response:
    """``GET /sobjects/{name}``: basic information (objectDescribe + recentItems)."""
    sobject = _sobject_or_404(name)
    if sobject is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    info = describe_global(version)["sobjects"]
    entry = next(s for s in info if s["name"] == sobject.name)
    return ok_json({"objectDescribe": entry, "recentItems": []})


def record(org: Org, version: str, name: str, record_id: str, fields: str | None) -> Response:
    """``GET /sobjects/{name}/{id}[?fields=a,b]``: one record (not one in the recycle bin)."""
    sobject = org.sobject(name)
    if sobject is None or not is_valid_id(record_id):
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    hidden = org.hidden_fields.get(sobject.name, frozenset())
    names = [f.name for f in sobject.fields if f.name not in hidden]
    if fields:
        names = [n.strip() for n in fields.split(",") if n.strip()]
    soql = f"SELECT {', '.join(names)} FROM {sobject.name} WHERE Id = '{to_18(record_id)}'"
    try:
        cq, entries = org.run(soql, include_deleted=False)
    except SoqlError as exc:
        return error(400, exc.code, exc.detail)
    if not entries:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    return Response(200, json_renderer(cq, version)(entries[0]).encode())
