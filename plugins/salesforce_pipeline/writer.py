"""Run a load's database work in a second thread, so Postgres and Python work at the same time.

Without it, one thread does everything in turn: while Python parses and transforms a chunk,
Postgres waits, and while Postgres COPYs and upserts it, Python waits. psycopg2 releases the GIL
while it waits for the server, so a writer thread that only sends ready-made COPY payloads and
statements costs the extracting thread almost nothing, and the server's work on chunk n overlaps
Python's work on chunk n+1.

Jobs run in the order submitted, on the one connection the load's transaction lives on; the
caller must not touch that connection until `close()` returns. At most `depth` jobs wait in the
queue, so memory stays bounded: the chunk being prepared, the ones queued, the one being written.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

_STOP = object()


class BackgroundWriter:
    """A single worker thread executing submitted calls in order; its first error is re-raised in
    the submitting thread (at the next `submit()` or at `close()`), and later jobs are skipped."""

    def __init__(self, name: str = "warehouse-writer", *, depth: int = 1) -> None:
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self.busy_seconds = 0.0  # time the worker spent running jobs
        self.waited_seconds = 0.0  # time the submitter spent blocked on a full queue or at close
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            if self._error is not None:
                continue  # drain what was queued after a failure, without running it
            function, args = job
            started = time.perf_counter()
            try:
                function(*args)
            except BaseException as exc:  # re-raised in the submitting thread
                self._error = exc
            finally:
                self.busy_seconds += time.perf_counter() - started

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        """Queue ``function(*args)``; blocks while the queue is full. Raises the worker's error."""
        self._raise_if_failed()
        started = time.perf_counter()
        self._jobs.put((function, args))
        self.waited_seconds += time.perf_counter() - started

    def close(self) -> None:
        """Wait for every queued job to finish; raise the first error one of them had."""
        started = time.perf_counter()
        self._jobs.put(_STOP)
        self._thread.join()
        self.waited_seconds += time.perf_counter() - started
        self._raise_if_failed()

    def abort(self) -> None:
        """Let the job in progress finish, skip the queued ones, and stop.

        Called when the submitting side failed: the caller rolls the transaction back afterwards,
        which it may only do once the worker no longer uses the connection. (The job in progress
        is one chunk's statements; it is not cancelled, so no cancel request can race the rollback.)
        """
        if self._error is None:
            self._error = _Aborted()
        self._jobs.put(_STOP)  # the worker drains without running, so this never blocks for long
        self._thread.join()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _Aborted(Exception):
    """Marks a writer stopped because the submitting side failed; never raised to callers."""
