"""Process bodies for tests/test_queue_loan.py (importable by spawn children)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from mmapipc import SharedMemoryQueue

WORDS = 1024  # a message: 1024 little-endian u32, all equal to its sequence number


def expected(seq: int) -> bytes:
    return np.full(WORDS, seq, dtype="<u4").tobytes()


def loan_producer(path: str, start: int, n: int) -> None:
    """Puts messages start .. start+n-1 through loans filled from NumPy."""
    with SharedMemoryQueue.open(path) as q:
        for seq in range(start, start + n):
            buf = q.loan(WORDS * 4, timeout=60.0)
            assert buf is not None, "no room within 60 s"
            np.frombuffer(buf, dtype="<u4")[:] = seq
            q.commit()


def hold_loan_and_hang(path: str, ready: Any) -> None:
    """Loans a slot, fills half of it, tells the parent (`ready.set()`), and waits to be killed."""
    q = SharedMemoryQueue.open(path)
    buf = q.loan(WORDS * 4)
    assert buf is not None
    np.frombuffer(buf, dtype="<u4")[: WORDS // 2] = 0xDEAD
    ready.set()
    while True:
        time.sleep(1)


def commit_inherited_loan(path: str) -> None:
    """In a forked child holding a copy of the parent's loan: its commit must be refused."""
    # The parent left its handle and loan in the module globals before forking.
    import loan_helpers

    q = loan_helpers.INHERITED
    assert q is not None
    try:
        q.commit()
    except ValueError as e:
        assert "forked child" in str(e), e
        os._exit(0)
    os._exit(3)


INHERITED: SharedMemoryQueue | None = None
