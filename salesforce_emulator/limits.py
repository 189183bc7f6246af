"""Per-org limits that answer like Salesforce when exceeded, and the knobs of the latency model.

* ``max_concurrent_requests`` (None: unlimited) and ``long_running_seconds`` (20): Salesforce
  caps an org's concurrent long-running API requests (25 in production; a request counts once
  it has run 20 s). A request arriving while that many of the org's requests have been in flight
  for ``long_running_seconds`` or more gets 403 REQUEST_LIMIT_EXCEEDED "ConcurrentRequests
  (Concurrent API Requests) Limit exceeded." at once. Tests set ``long_running_seconds=0`` so
  every in-flight API request counts. (The older ``concurrent_limit`` org option is the same
  rule with every in-flight request counting.)
* ``max_concurrent_bulk_jobs`` (None: unlimited): Bulk 2.0 query jobs in UploadComplete or
  InProgress; creating one more answers 400 LIMIT_EXCEEDED (a model: Salesforce documents no
  such cap for query jobs).
* ``max_cursors_per_user`` (10): open query cursors per user (rest.CursorStore).

:func:`configure` sets these and the :class:`~salesforce_emulator.latency.LatencyModel` fields
on one org; :func:`settings` reports them.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from salesforce_emulator.latency import LATENCY_OPTIONS
from salesforce_emulator.rest import Response, error

if TYPE_CHECKING:
    from salesforce_emulator.store import Org

__all__ = [
    "CONCURRENT_MESSAGE",
    "LIMIT_OPTIONS",
    "MODEL_OPTIONS",
    "InflightRequests",
    "OrgLimits",
    "configure",
    "settings",
    "too_many_bulk_jobs",
]

LIMIT_OPTIONS = (
    "max_concurrent_requests",
    "long_running_seconds",
    "max_concurrent_bulk_jobs",
    "max_cursors_per_user",
)
MODEL_OPTIONS = LATENCY_OPTIONS + LIMIT_OPTIONS
CONCURRENT_MESSAGE = "ConcurrentRequests (Concurrent API Requests) Limit exceeded."


@dataclass(slots=True)
class OrgLimits:
    """An org's concurrency limits (the cursor limit lives on its CursorStore)."""

    max_concurrent_requests: int | None = None
    long_running_seconds: float = 20.0
    max_concurrent_bulk_jobs: int | None = None


class InflightRequests:
    """The API requests of one org being answered now, with the time each arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}
        self._tokens = itertools.count(1)

    def enter(self, org: Org) -> int | None:
        """Count a request in; None (not counted) when the org's concurrency limit refuses it."""
        limits: OrgLimits = org.limits
        now = time.monotonic()
        with self._lock:
            if org.concurrent_limit is not None and len(self._started) >= org.concurrent_limit:
                return None
            cap = limits.max_concurrent_requests
            if cap is not None:
                threshold = limits.long_running_seconds
                long_running = sum(1 for t in self._started.values() if now - t >= threshold)
                if long_running >= cap:
                    return None
            token = next(self._tokens)
            self._started[token] = now
            return token

    def leave(self, token: int) -> None:
        """Count a request out (the token :meth:`enter` gave)."""
        with self._lock:
            self._started.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._started)


def too_many_bulk_jobs(org: Org) -> Response:
    """The answer to a Bulk 2.0 query job created past ``max_concurrent_bulk_jobs`` (a model)."""
    cap = org.limits.max_concurrent_bulk_jobs
    return error(
        400,
        "LIMIT_EXCEEDED",
        f"Max concurrent Bulk API 2.0 query jobs ({cap}) exceeded for this org: "
        "wait for a running job to complete or abort one",
    )


def _check(name: str, value: Any) -> Any:
    if name in LATENCY_OPTIONS:
        return value  # LatencyModel.update checks these
    if name == "long_running_seconds":
        if value is None or float(value) < 0:
            raise ValueError("long_running_seconds must be >= 0")
        return float(value)
    if name == "max_cursors_per_user":
        if value is None or int(value) < 1:
            raise ValueError("max_cursors_per_user must be >= 1")
        return int(value)
    if value is not None and int(value) < 0:
        raise ValueError(f"{name} must be >= 0 (or null: unlimited)")
    return None if value is None else int(value)


def configure(org: Org, **changes: Any) -> dict[str, Any]:
    """Change latency and limit settings of *org* (only those named; all checked before any
    changes); returns :func:`settings`."""
    unknown = sorted(set(changes) - set(MODEL_OPTIONS))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(MODEL_OPTIONS)}")
    checked = {name: _check(name, value) for name, value in changes.items()}
    latency = {k: v for k, v in checked.items() if k in LATENCY_OPTIONS}
    org.latency.update(**latency)  # checks every value before it changes one
    for name in ("max_concurrent_requests", "long_running_seconds", "max_concurrent_bulk_jobs"):
        if name in checked:
            setattr(org.limits, name, checked[name])
    if "max_cursors_per_user" in checked:
        org.cursors.max_per_user = org.max_open_cursors = checked["max_cursors_per_user"]
    return settings(org)


def settings(org: Org) -> dict[str, Any]:
    """Latency and limit settings of *org*, plus what is in flight now."""
    limits: OrgLimits = org.limits
    return {
        **org.latency.as_dict(),
        "max_concurrent_requests": limits.max_concurrent_requests,
        "long_running_seconds": limits.long_running_seconds,
        "max_concurrent_bulk_jobs": limits.max_concurrent_bulk_jobs,
        "max_cursors_per_user": org.cursors.max_per_user,
        "concurrent_limit": org.concurrent_limit,
        "in_flight": len(org.inflight),
        "running_bulk_jobs": org.bulk_jobs.running(),
    }
