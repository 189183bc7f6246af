"""Where a load's page batches are prepared: in the slice's own thread, or in worker processes.

Decoding, transforming and serialising pages (`page_batch.prepare_batch`) is pure Python and
pandas work that holds the GIL: slices in threads would take turns on one core however many the
machine has. A load with more than one slice therefore starts worker processes (one per core
but one, at most one per parallel slice) that each run `prepare_batch` on what a slice thread
sends them, while the threads keep downloading pages, COPYing payloads and committing progress.

The workers get page bodies and the load's format only: no session, connection or secret. One is
started with ``python -m salesforce_pipeline.page_workers`` and speaks pickle over its stdin and
stdout: a ``(PageFormat, PageBatch)`` in; ``("part", payload)`` per chunk, then ``("done", totals)``
or ``("error", type, message)`` out. It ends when its stdin closes, so it cannot outlive its task
(a killed task closes the pipe too). A worker that dies mid-batch fails that slice's attempt as a
transient error (the slice is read again from its checkpoint) and is replaced on next use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from salesforce_pipeline.errors import SalesforcePipelineError, SalesforceTransientError
from salesforce_pipeline.page_batch import (
    BULK_CSV,
    BatchTotals,
    PageBatch,
    PageFormat,
    preload,
    prepare_batch,
)

log = logging.getLogger(__name__)

_PROTOCOL = pickle.HIGHEST_PROTOCOL
# What a worker's environment keeps of the task's (with LC_* and PYTHON*): see worker_environment.
_KEPT_VARIABLES = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "VIRTUAL_ENV"})
_STOP_SECONDS = 10
# The task process's own place in the pool (see page_work).
_HERE = "here"


class PageWorkerError(SalesforcePipelineError):
    """Preparing a batch failed in a worker process for a reason a retry would meet again."""


class PageWork(Protocol):
    """Prepares a batch, calling `emit` with each COPY payload; returns what it found."""

    workers: int

    def run(self, fmt: PageFormat, batch: PageBatch, emit: Callable[[bytes], None]) -> BatchTotals:
        """Prepare `batch`; `emit` is called in the calling thread."""

    def close(self) -> None:
        """Stop what it started."""


class InlinePages:
    """Batches prepared in the calling thread: one slice, or a machine with one core."""

    workers = 0

    def run(self, fmt: PageFormat, batch: PageBatch, emit: Callable[[bytes], None]) -> BatchTotals:
        """Prepare `batch` here."""
        return prepare_batch(fmt, batch, emit)

    def close(self) -> None:
        """Nothing to stop."""


def page_work(parallel: int, slices: int, method: str) -> PageWork:
    """Worker processes for a load of `slices` slices read `parallel` at a time: one per core the
    process may use but one, at most one per parallel slice; none for a single slice or a single
    core, where a process would only add its start-up and copying.

    One core stays with the task process: its threads download pages, send and receive batches
    and drive the COPYs (about a fifth of the load's Python work). With a single worker (2
    cores) that core would be idle most of the time, so the task process prepares batches too,
    one at a time, whenever the worker is busy: on 2 cores, 1,000,000 Contacts staged in 9.9 s
    instead of 12.1 s, for about 30 MB more; a second worker process cost about 100 MB
    (docs/large-loads.md).

    REST pages are prepared in polars (`frame_prepare`), which releases the GIL: the slice threads
    prepare their own batches at once, and no worker process is started.
    """
    count = min(parallel, len(os.sched_getaffinity(0)) - 1)
    if method == "rest" or slices < 2 or count < 1:
        return InlinePages()
    return PageWorkers(count, here=count == 1)


class PageWorkers:
    """A pool of worker processes; a slice thread holds one per batch. With ``here``, the task
    process is one more place a batch can be prepared (one at a time), after the workers.

    The workers start with the pool, so that their imports run while the slices download their
    first pages; a worker that died is replaced on next use.
    """

    def __init__(self, count: int, *, here: bool = False) -> None:
        self.workers = count
        self.here = here
        self._idle: queue.Queue[_Worker | str | None] = queue.Queue()
        self._started: list[_Worker] = []
        try:
            for _ in range(count):
                worker = _Worker()
                self._started.append(worker)
                self._idle.put(worker)
        except BaseException:
            self.close()
            raise
        if here:
            # Last: in the one bench run where it came first, the Bulk 2.0 load's task process,
            # which holds the slices' results pages too, peaked 15 MB higher (281 against 266 MB).
            self._idle.put(_HERE)

    def run(self, fmt: PageFormat, batch: PageBatch, emit: Callable[[bytes], None]) -> BatchTotals:
        """Prepare `batch` in an idle worker (waiting for one), then call `emit` in this thread.

        The worker is given back before the payloads are COPYed: it prepares another slice's
        batch while this one's rows go into Postgres (held meanwhile: one batch's payloads).
        """
        worker = self._idle.get()
        if worker == _HERE:
            try:
                return prepare_batch(_in_chunks(fmt, batch, here=True), batch, emit)
            finally:
                _release_freed_memory()
                self._idle.put(_HERE)
        try:
            if not isinstance(worker, _Worker):
                worker = _Worker()
                self._started.append(worker)
            totals, payloads = worker.run(_in_chunks(fmt, batch, here=False), batch)
        finally:
            if isinstance(worker, _Worker) and not worker.alive:
                worker.stop()
                self._started.remove(worker)
                worker = None  # replaced on next use
            self._idle.put(worker)
        while payloads:
            emit(payloads.pop(0))
        return totals

    def close(self) -> None:
        """Stop every worker: their stdin closes and they exit (killed if they do not)."""
        for worker in self._started:
            worker.stop()
        self._started.clear()


class _Worker:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "salesforce_pipeline.page_workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=worker_environment(os.environ),
            close_fds=True,
        )
        self.alive = True
        log.debug("page worker %d started", self.proc.pid)

    def run(self, fmt: PageFormat, batch: PageBatch) -> tuple[BatchTotals, list[bytes]]:
        """Send `batch`; return the totals and the COPY payloads. Until the worker's last message is
        read it is out of step (``alive`` False): a failure in between (its death, or this thread
        stopped mid-read) leaves it unusable, and the pool replaces it."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.alive = False
        payloads: list[bytes] = []
        try:
            pickle.dump((fmt, batch), self.proc.stdin, protocol=_PROTOCOL)
            self.proc.stdin.flush()
            batch.bodies.clear()  # the worker has them now: this process need not hold them too
            while True:
                message = pickle.load(self.proc.stdout)
                if message[0] == "part":
                    payloads.append(message[1])
                    continue
                self.alive = True
                if message[0] == "done":
                    return message[1], payloads
                raise _worker_error(message[1], message[2])
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            code = self.proc.poll()
            raise SalesforceTransientError(
                f"the page worker process {self.proc.pid} stopped mid-batch "
                f"({'exit code ' + str(code) if code is not None else type(exc).__name__}); "
                "the slice is read again from its checkpoint"
            ) from None

    def stop(self) -> None:
        """Close its stdin and let it exit; kill it if it is mid-batch or does not exit."""
        try:
            if self.alive and self.proc.stdin is not None:
                self.proc.stdin.close()
                self.proc.wait(timeout=_STOP_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.alive = False
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _in_chunks(fmt: PageFormat, batch: PageBatch, *, here: bool) -> PageFormat:
    """The format a pool prepares `batch` with: half a chunk at a time in the task process, which
    holds the slices' pages and payloads too, and for a Bulk 2.0 results page anywhere.

    A results page (25,000 records by default) is a batch of its own, parsed while the task process
    holds the other slice's page. Parsed a whole chunk at a time, the Bulk load's task process and
    worker together peaked at 388, 397 and 412 MB in three runs; at half a chunk, at 368, 371 and
    382 MB, in the same time (20.4-21.1 s against 20.9-21.2 s for 1,100,000 records).
    """
    if here or batch.kind == BULK_CSV:
        return replace(fmt, chunk_size=max(fmt.chunk_size // 2, 1))
    return fmt


def _release_freed_memory() -> None:
    """Give the memory a batch prepared in the task process freed back to the system (glibc's
    malloc_trim): its threads' malloc arenas would otherwise keep it, about 20 MB at 1,000,000
    Contacts, beside everything else the task holds. Nothing elsewhere."""
    global _malloc_trim
    if _malloc_trim is None:
        import ctypes
        import ctypes.util

        try:
            _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """A worker's environment: the locale, paths and Python's own settings, and the plugins folder
    on its path; nothing else. A task's environment can hold secrets (AIRFLOW_CONN_*, cloud
    credentials); a process that only parses pages needs none of them."""
    kept = {
        name: value
        for name, value in environ.items()
        if name in _KEPT_VARIABLES or name.startswith(("LC_", "PYTHON"))
    }
    plugins = str(Path(__file__).resolve().parent.parent)
    path = environ.get("PYTHONPATH")
    kept["PYTHONPATH"] = plugins + (os.pathsep + path if path else "")
    return kept


def _worker_error(kind: str, message: str) -> SalesforcePipelineError:
    if kind == "ValueError":  # a page that is not what it should be: worth reading again
        return SalesforceTransientError(f"a page could not be read ({message}); it is read again")
    return PageWorkerError(f"preparing a page batch failed in a worker process: {kind}: {message}")


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """A worker's loop: prepare each batch read from `requests`, until it closes."""

    def send(message: tuple[Any, ...]) -> None:
        pickle.dump(message, replies, protocol=_PROTOCOL)
        replies.flush()

    while True:
        try:
            fmt, batch = pickle.load(requests)
        except EOFError:
            return
        try:
            totals = prepare_batch(fmt, batch, lambda payload: send(("part", payload)))
        except Exception as exc:  # reported to the slice, which decides; the worker goes on
            del batch
            send(("error", type(exc).__name__, str(exc)))
        else:
            del batch
            send(("done", totals))


def main() -> None:
    """Entry point of a worker process: the protocol on the original stdout, anything else that
    would print there (a library's stray output) sent to stderr, which is the task's log."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    preload()
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
