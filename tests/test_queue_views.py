"""Queue views through pooled exporters: what holds a view's slot, and what does not."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator

import pytest

from mmapipc import SharedMemoryQueue

np = pytest.importorskip("numpy")


@pytest.fixture
def q() -> Iterator[SharedMemoryQueue]:
    path = f"/dev/shm/mmapipc-test-qviews-{uuid.uuid4().hex}"
    with SharedMemoryQueue.create(path, 4096) as q:
        yield q
    os.unlink(path)


def used(q: SharedMemoryQueue) -> int:
    return q.stats()["used_bytes"]


def test_views_come_from_the_queues_exporter(q: SharedMemoryQueue) -> None:
    q.put(b"abc")
    views = q.get_view()
    assert views is not None
    assert type(views[0].obj).__name__ == "QueueViewBuffer"
    assert bytes(views[0]) == b"abc" and views[0].readonly


def test_a_reference_to_the_exporter_holds_the_slot(q: SharedMemoryQueue) -> None:
    q.put(b"held")
    q.put(b"next")
    views = q.get_view()
    assert views is not None
    exporter = views[0].obj
    q.release(views)
    with pytest.raises(BufferError):
        memoryview(exporter)  # disarmed: never a view of recycled bytes
    assert q.get(timeout=1) == b"next"
    assert used(q) > 0, "the slot must stay held while its exporter is referenced"
    del exporter
    assert used(q) == 0


def test_numpy_array_on_the_view_base_holds_the_slot(q: SharedMemoryQueue) -> None:
    # ndarray(buffer=view) keeps the view's exporter as its base without holding a buffer.
    q.put(b"12345678")
    views = q.get_view()
    assert views is not None
    arr = np.ndarray(shape=(8,), dtype=np.uint8, buffer=views[0])
    q.release(views)
    del views
    assert used(q) > 0
    assert arr.tobytes() == b"12345678"
    del arr
    assert used(q) == 0


def test_every_export_holds_the_slot_until_it_goes(q: SharedMemoryQueue) -> None:
    q.put(b"abcdef")
    views = q.get_view()
    assert views is not None
    view = views[0]
    part = view[2:]  # shares the view's buffer
    again = memoryview(view.obj)  # a second buffer of the same record
    q.release(views)
    del views, view
    assert used(q) > 0
    del part
    assert used(q) > 0  # `again` still exports the record
    assert bytes(again) == b"abcdef"
    arr = np.frombuffer(again, dtype=np.uint8)
    again.release()  # not yet: the array holds its own export
    assert used(q) > 0
    assert arr.tobytes() == b"abcdef"
    del arr  # the last export: the slot is released
    assert used(q) == 0


def test_many_views_released_in_any_order(q: SharedMemoryQueue) -> None:
    rng = random.Random(7)
    for rnd in range(3):
        msgs = [bytes([rnd, i]) * 4 for i in range(100)]  # more views than the pool keeps
        assert q.put_batch(msgs) == 100
        views = q.get_view(max_count=None)
        assert views is not None and [bytes(v) for v in views] == msgs
        order = list(views)
        del views
        rng.shuffle(order)
        while order:
            order.pop().release()
        assert used(q) == 0
        # Exporters back in the pool serve the next views.
        q.put(b"again")
        with q.get_view() as again:
            assert bytes(again[0]) == b"again"
        assert used(q) == 0
