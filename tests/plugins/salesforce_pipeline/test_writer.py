"""The background writer: jobs run in order off the submitting thread, an error reaches the
submitter, and a failed load's queued writes never run (the caller then rolls back)."""

from __future__ import annotations

import threading

import pytest

from salesforce_pipeline.writer import BackgroundWriter


def test_jobs_run_in_order_and_close_waits_for_them() -> None:
    ran: list[int] = []
    writer = BackgroundWriter(depth=2)
    for number in range(5):
        writer.submit(ran.append, number)
    writer.close()
    assert ran == [0, 1, 2, 3, 4]


def test_a_jobs_error_reaches_the_submitter_and_later_jobs_do_not_run() -> None:
    ran: list[str] = []

    def fail() -> None:
        raise RuntimeError("COPY failed")

    writer = BackgroundWriter(depth=4)
    writer.submit(fail)
    writer.submit(ran.append, "after the failure")
    with pytest.raises(RuntimeError, match="COPY failed"):
        writer.close()
    assert ran == []


def test_abort_lets_the_running_job_finish_and_skips_the_queued_ones() -> None:
    """The submitting side failed: nothing queued may write after that, or the rollback races it."""
    ran: list[str] = []
    running = threading.Event()
    release = threading.Event()

    def slow_job() -> None:
        running.set()
        release.wait(10)
        ran.append("in progress")

    writer = BackgroundWriter(depth=2)
    writer.submit(slow_job)
    assert running.wait(10)
    writer.submit(ran.append, "queued 1")
    writer.submit(ran.append, "queued 2")
    threading.Timer(0.2, release.set).start()
    writer.abort()
    assert ran == ["in progress"]


def test_leaving_the_block_on_an_error_aborts_and_keeps_that_error() -> None:
    ran: list[str] = []
    release = threading.Event()

    def load() -> None:
        with BackgroundWriter(depth=2) as writer:
            writer.submit(lambda: release.wait(10))
            writer.submit(ran.append, "queued")
            threading.Timer(0.2, release.set).start()
            raise ValueError("transform failed")

    with pytest.raises(ValueError, match="transform failed"):
        load()
    assert ran == []
