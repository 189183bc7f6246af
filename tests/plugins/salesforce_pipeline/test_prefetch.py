"""The page prefetcher: same items in order, bounded read-ahead, errors in place, early stop."""

from __future__ import annotations

import threading
import time

import pytest

from salesforce_pipeline.prefetch import prefetched


def test_yields_every_item_in_order_from_another_thread():
    producers: set[str] = set()

    def items():
        for n in range(50):
            producers.add(threading.current_thread().name)
            yield n

    assert list(prefetched(items(), name="test prefetch")) == list(range(50))
    assert producers == {"test prefetch"}


@pytest.mark.parametrize("depth", [1, 2])
def test_reads_at_most_depth_items_ahead(depth):
    produced: list[int] = []

    def items():
        for n in range(10):
            produced.append(n)
            yield n

    stream = prefetched(items(), depth=depth)
    assert next(stream) == 0
    time.sleep(0.3)  # time for the producer to run ahead as far as it may
    assert produced == list(range(depth + 1))  # `depth` items ahead of the one held, no more
    assert next(stream) == 1
    time.sleep(0.3)
    assert produced == list(range(depth + 2))
    stream.close()


def test_an_error_is_raised_where_its_item_would_have_been():
    def items():
        yield 1
        yield 2
        raise LookupError("page 3 failed for good")

    stream = prefetched(items())
    assert next(stream) == 1
    assert next(stream) == 2
    with pytest.raises(LookupError, match="page 3 failed"):
        next(stream)


def test_stopping_early_stops_the_producer_and_closes_the_source():
    produced: list[int] = []
    closed = threading.Event()

    def items():
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    def consume_then_fail():
        for item in prefetched(items()):
            if item == 3:
                raise ValueError("transform failed")

    with pytest.raises(ValueError, match="transform failed"):
        consume_then_fail()
    assert closed.is_set()
    assert len(produced) <= 5  # the producer never got far ahead, and stopped
