"""Child-process entry points for tests/test_takeover.py (importable, so they work under spawn)."""

from __future__ import annotations

import time
from typing import Any

from mmapipc import SharedMemoryQueue, SharedMemoryRing


def produce_then_hang(path: str, ready: Any) -> None:
    """Becomes the ring's producer, says so, then waits to be killed (holding the role)."""
    ring = SharedMemoryRing.open(path)
    assert ring.write(b"from the child")
    ready.set()
    while True:
        time.sleep(60)


def create_queue(path: str, capacity: int) -> None:
    """Creates a large queue (reserving its pages takes a while: it is stopped and killed then)."""
    SharedMemoryQueue.create(path, capacity).close()


def hold_views(path: str, expected: int, holding: Any, done: Any) -> None:
    """Takes every waiting message as views and holds them until `done` is set."""
    with SharedMemoryQueue.open(path) as q:
        views = q.get_view(timeout=60, max_count=expected)
        assert views is not None and len(views) == expected
        holding.set()
        assert done.wait(60)
        q.release(views)
