"""Fault injection: make chosen future requests fail the way a real Salesforce org fails.

A fault is armed with :meth:`FaultPlan.inject` and fires on matching requests. Matching is by
endpoint kind (``query``, ``query_more``, ``bulk2_results``...) and/or a path substring;
``after`` lets that many matching requests through first and ``count`` is how many requests the
fault then hits (``None``: every one until cleared).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "LOGIN_KINDS", "Fault", "FaultPlan"]

# kind -> what happens
FAULT_KINDS: dict[str, str] = {
    "expire_sessions": "invalidate every session; the request (and later ones) get 401 INVALID_SESSION_ID",
    "server_unavailable": "503 SERVER_UNAVAILABLE",
    "request_limit": "403 REQUEST_LIMIT_EXCEEDED (TotalRequests Limit exceeded.)",
    "concurrent_limit": "403 REQUEST_LIMIT_EXCEEDED (ConcurrentPerOrgLongTxn Limit exceeded.)",
    "http_error": "any status/errorCode/message you choose",
    "delay": "sleep `seconds` before answering (client timeouts -> ReadTimeout)",
    "drop_connection": "send the headers and part of the body, then close the connection",
    "reset_connection": "close the connection without answering",
    "malformed_json": "a 200 JSON response whose body is cut in half (invalid JSON)",
    "truncated_csv": "a 200 Bulk results page whose CSV is cut mid-record (headers unchanged)",
    "bulk_job_failed": "the next Bulk 2.0 query job ends in state Failed with `message`",
}

LOGIN_KINDS = frozenset({"login_soap", "login_oauth"})

# Faults that only make sense on some responses default to those endpoints.
_DEFAULT_ENDPOINTS: dict[str, frozenset[str]] = {
    "truncated_csv": frozenset({"bulk2_results"}),
    "bulk_job_failed": frozenset({"bulk2_create"}),
    "malformed_json": frozenset(
        {
            "query",
            "query_all",
            "query_more",
            "describe",
            "describe_global",
            "limits",
            "sobject",
            "record",
            "bulk2_create",
            "bulk2_poll",
            "bulk2_list",
            "versions",
            "resources",
        }
    ),
}

_ids = itertools.count(1)


@dataclass(slots=True)
class Fault:
    """One armed fault. Counters (``seen``, ``fired``) are updated as requests match."""

    kind: str
    after: int = 0
    count: int | None = 1
    path_contains: str | None = None
    endpoints: frozenset[str] | None = None
    include_login: bool = False
    seconds: float = 0.0
    fraction: float = 0.5
    status: int = 500
    error_code: str = "UNKNOWN_EXCEPTION"
    message: str | None = None
    retry_after: str | None = None
    id: int = field(default_factory=lambda: next(_ids))
    seen: int = 0
    fired: int = 0

    def matches(self, kind: str, path: str) -> bool:
        """Whether a request of endpoint *kind* to *path* is one this fault targets."""
        endpoints = self.endpoints if self.endpoints is not None else _DEFAULT_ENDPOINTS.get(self.kind)
        if endpoints is not None and kind not in endpoints:
            return False
        if kind in LOGIN_KINDS and not (self.include_login or (self.endpoints and kind in self.endpoints)):
            # Logins are left alone unless explicitly targeted: "the next call fails" almost always
            # means the next API call, and a client's login precedes it.
            return False
        if kind == "admin":
            return False
        return self.path_contains is None or self.path_contains in path

    @property
    def exhausted(self) -> bool:
        """True once the fault has fired ``count`` times."""
        return self.count is not None and self.fired >= self.count

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (for the admin API)."""
        out = asdict(self)
        out["endpoints"] = sorted(self.endpoints) if self.endpoints is not None else None
        return out


class FaultPlan:
    """Thread-safe set of armed faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(
        self,
        kind: str,
        *,
        after: int = 0,
        count: int | None = 1,
        path_contains: str | None = None,
        endpoint: str | Iterable[str] | None = None,
        include_login: bool = False,
        seconds: float = 0.0,
        fraction: float = 0.5,
        status: int = 500,
        error_code: str = "UNKNOWN_EXCEPTION",
        message: str | None = None,
        retry_after: str | None = None,
    ) -> Fault:
        """Arm a fault and return it.

        * ``after``: let this many matching requests through before firing.
        * ``count``: fire on this many matching requests (``None`` = until :meth:`clear`).
        * ``path_contains``: only requests whose path (with query string) contains it.
        * ``endpoint``: only these endpoint kinds (see :data:`salesforce_emulator.server.ENDPOINT_KINDS`).
        * ``seconds`` (delay), ``fraction`` (how much of the body drop/truncate faults send),
          ``status``/``error_code``/``message`` (http_error; message also for bulk_job_failed).
        * ``retry_after``: a ``Retry-After`` header (seconds or an HTTP date) on the failures of
          server_unavailable, concurrent_limit and http_error, as gateways and Salesforce send it.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        if after < 0 or (count is not None and count < 1):
            raise ValueError("after must be >= 0 and count >= 1 (or None)")
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        endpoints: frozenset[str] | None
        if endpoint is None:
            endpoints = None
        elif isinstance(endpoint, str):
            endpoints = frozenset({endpoint})
        else:
            endpoints = frozenset(endpoint)
        fault = Fault(
            kind,
            after=after,
            count=count,
            path_contains=path_contains,
            endpoints=endpoints,
            include_login=include_login,
            seconds=seconds,
            fraction=fraction,
            status=status,
            error_code=error_code,
            message=message,
            retry_after=retry_after,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, kind: str, path: str) -> list[Fault]:
        """Return the faults that fire for this request, updating their counters."""
        fired: list[Fault] = []
        with self._lock:
            if not self._faults:
                return fired
            for fault in self._faults:
                if fault.exhausted or not fault.matches(kind, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                fault.fired += 1
                fired.append(fault)
            self._faults = [f for f in self._faults if not f.exhausted]
        return fired

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def remove(self, fault_id: int) -> bool:
        """Disarm one fault by id; False if it was not armed."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    @property
    def active(self) -> list[Fault]:
        """The faults still armed."""
        with self._lock:
            return list(self._faults)

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)
