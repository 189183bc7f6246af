"""Read ahead of an iterator in a background thread: the next REST page downloads while this one
is transformed and loaded.

A real org takes hundreds of milliseconds to produce a query page; fetched one after another,
that time adds to all the rest. The fetching thread mostly waits on the network, with the GIL
released, so it costs the transforming thread little. It runs at most `depth` items ahead, so memory stays bounded: with depth 1, the
item being consumed and the one being produced.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_ITEM, _DONE, _ERROR = "item", "done", "error"
_POLL_SECONDS = 0.1


def prefetched(items: Iterator[T], *, depth: int = 1, name: str = "prefetch") -> Iterator[T]:
    """Yield what `items` yields, produced by a background thread at most `depth` items ahead.

    The producer starts on an item only when fewer than `depth` items are ahead of the one the
    consumer holds. An exception raised by `items` is raised here, where its item would have been.
    When the consumer stops early (an error, or `close()`), the producer stops before its next
    item; an item already being produced (an HTTP request in flight) is finished first.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue()
    slots = threading.Semaphore(depth)
    stopping = threading.Event()

    def wait_for_slot() -> bool:
        while not stopping.is_set():
            if slots.acquire(timeout=_POLL_SECONDS):
                return True
        return False

    def produce() -> None:
        try:
            while wait_for_slot():
                try:
                    item = next(items)
                except StopIteration:
                    handoff.put((_DONE, None))
                    return
                handoff.put((_ITEM, item))
                del item
        except BaseException as exc:  # raised again in the consuming thread
            handoff.put((_ERROR, exc))

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == _ITEM:
                slots.release()  # the producer may start on the next item now
                yield value
                del value
            elif kind == _DONE:
                return
            else:
                raise value
    finally:
        stopping.set()
        thread.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()
