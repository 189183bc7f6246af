"""Latency model: how long Salesforce takes to answer a page, a Bulk poll and to run a Bulk job.

Off by default (every field 0 or None), so tests keep their speed and Bulk jobs keep the
poll-count rule of ``bulk_in_progress_polls``. The waits sleep in the request's own handler
thread (the server is threaded), so a slow page never holds up another request.

* ``page_latency_ms``: added before answering each REST ``query``/``queryAll`` page (the first
  and every ``nextRecordsUrl`` page) and each Bulk 2.0 results page.
* ``poll_latency_ms``: added before answering each Bulk 2.0 job status GET.
* ``job_base_seconds`` + records / ``job_records_per_second``: a Bulk 2.0 job's processing time;
  it reports ``InProgress`` until that much wall-clock time has passed since its creation. When
  both are None the job follows ``bulk_in_progress_polls`` (done after one poll) as before.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LATENCY_OPTIONS", "PAGE_KINDS", "LatencyModel"]

# Endpoint kinds (see server.ENDPOINT_KINDS) that serve a page of records.
PAGE_KINDS = frozenset({"query", "query_all", "query_more", "bulk2_results"})
LATENCY_OPTIONS = ("page_latency_ms", "poll_latency_ms", "job_base_seconds", "job_records_per_second")


@dataclass(slots=True)
class LatencyModel:
    """One org's latency model (see the module docstring). Change it with :meth:`update`."""

    page_latency_ms: float = 0.0
    poll_latency_ms: float = 0.0
    job_base_seconds: float | None = None
    job_records_per_second: float | None = None

    def update(self, **changes: float | None) -> LatencyModel:
        """Change the named fields (checked first: nothing changes if one is wrong); returns self."""
        checked: dict[str, float | None] = {}
        for name, value in changes.items():
            if name not in LATENCY_OPTIONS:
                raise ValueError(f"unknown latency setting {name!r}; known: {', '.join(LATENCY_OPTIONS)}")
            if value is None and name.endswith("_ms"):
                value = 0.0
            if value is not None:
                value = float(value)
                if value < 0 or (name == "job_records_per_second" and value == 0):
                    raise ValueError(f"{name} must be >= 0 (job_records_per_second > 0, or null)")
            checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)
        return self

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-able values."""
        return asdict(self)

    def job_seconds(self, records: int) -> float | None:
        """Processing time of a Bulk job over *records* records; None: the poll-count rule."""
        if self.job_base_seconds is None and self.job_records_per_second is None:
            return None
        seconds = self.job_base_seconds or 0.0
        if self.job_records_per_second:
            seconds += records / self.job_records_per_second
        return seconds

    def wait(self, kind: str) -> None:
        """Sleep as long as a request of endpoint *kind* takes to answer (in its own thread)."""
        if kind in PAGE_KINDS:
            ms = self.page_latency_ms
        elif kind == "bulk2_poll":
            ms = self.poll_latency_ms
        else:
            return
        if ms > 0:
            time.sleep(ms / 1000)
