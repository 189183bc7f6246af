"""The background writer: order, bounded queue, errors carried back, abort skips the rest."""

from __future__ import annotations

import threading

import pytest

from salesforce_pipeline.writer import BackgroundWriter


def test_jobs_run_in_order_on_one_other_thread():
    seen: list[tuple[int, str]] = []
    with BackgroundWriter("test writer") as writer:
        for n in range(20):
            writer.submit(lambda n=n: seen.append((n, threading.current_thread().name)))
    assert [n for n, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"test writer"}


def test_the_queue_holds_at_most_depth_jobs():
    release = threading.Event()
    running = threading.Event()
    submitted: list[int] = []

    def blocker():
        running.set()
        release.wait(10)

    writer = BackgroundWriter(depth=1)
    writer.submit(blocker)
    running.wait(10)
    writer.submit(lambda: None)  # fills the queue while the first job runs

    def third():
        writer.submit(lambda: None)
        submitted.append(3)

    extra = threading.Thread(target=third)
    extra.start()
    extra.join(0.3)
    assert submitted == []  # blocked: one job running, one queued
    release.set()
    extra.join(10)
    assert submitted == [3]
    writer.close()


def test_a_failed_job_is_raised_in_the_submitting_thread_and_later_jobs_are_skipped():
    ran: list[str] = []
    gate = threading.Event()

    def boom():
        gate.wait(10)
        raise LookupError("the COPY failed")

    writer = BackgroundWriter(depth=5)
    writer.submit(boom)
    writer.submit(ran.append, "queued behind the failing job")
    gate.set()
    with pytest.raises(LookupError, match="the COPY failed"):
        writer.close()
    assert ran == []
    with pytest.raises(LookupError):  # and any later submit says so too
        writer.submit(ran.append, "after")


def test_close_raises_the_error_of_the_last_job():
    writer = BackgroundWriter()
    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.close()


def test_an_error_on_the_submitting_side_aborts_and_is_the_one_raised():
    ran: list[int] = []
    gate = threading.Event()
    writer = BackgroundWriter(depth=5)

    def extract_then_fail():
        with writer:
            writer.submit(gate.wait, 10)
            for n in range(3):
                writer.submit(ran.append, n)
            gate.set()
            raise ValueError("extraction failed")

    with pytest.raises(ValueError, match="extraction failed"):
        extract_then_fail()
    # The worker is stopped when the block is left, having run at most what was queued, in order.
    assert not writer._thread.is_alive()
    assert ran == [0, 1, 2][: len(ran)]


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
