"""Child-process entry points of tests/test_large_reads.py (importable under spawn)."""

from __future__ import annotations

from mmapipc import SharedMemoryQueue, SharedMemoryRing


def frame(i: int, size: int) -> bytes:
    """A frame whose every byte depends on its index and position."""
    return bytes((i + k) & 0xFF for k in range(256)) * (size // 256)


def produce(kind: str, path: str, count: int, size: int, loan: bool) -> None:
    """Sends frames 0..count-1 (through a loaned slot for the ring if `loan`)."""
    if kind == "ring":
        with SharedMemoryRing.open(path) as ring:
            for i in range(count):
                if loan:
                    view = ring.loan(size, block=True, timeout=60)
                    assert view is not None
                    view[:] = frame(i, size)
                    view.release()
                    ring.commit()
                else:
                    assert ring.write(frame(i, size), block=True, timeout=60)
    else:
        with SharedMemoryQueue.open(path) as q:
            for i in range(count):
                assert q.put(frame(i, size), True, 60)
