"""Process bodies for the typed-queue batch tests in tests/test_typed_ring.py (importable by
spawn children)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmapipc.typed import TypedQueue

TICK_V1 = str(Path(__file__).resolve().parent.parent / "schemas" / "market" / "tick.v1.json")
SENT = 0  # exit code: the record went in
REFUSED = 7  # exit code: no room (the slots are still held)
NOT_DROPPED = 8  # exit code: the inherited batch was still referenced


def ticks(dtype: Any, start: int, n: int) -> Any:
    """Ticks start..start+n as a structured array (tick i: timestamp i, price i/2, size i)."""
    i = np.arange(start, start + n)
    recs = np.zeros(n, dtype=dtype)
    recs["timestamp_ns"] = i
    recs["symbol"] = np.frombuffer(b"SYM\0\0\0\0\0", np.uint8)
    recs["price"] = i / 2
    recs["size"] = i
    recs["side"] = i % 2
    return recs


def produce_ticks(path: str, n: int, chunk: int) -> None:
    """Sends ticks 0..n in send_batch chunks of `chunk` (one publication each)."""
    with TypedQueue.open(path, TICK_V1) as q:
        for start in range(0, n, chunk):
            recs = ticks(q.dtype, start, min(chunk, n - start))
            sent = 0
            while sent < len(recs):
                got = q.send_batch(recs[sent:], timeout=30.0)
                assert got > 0, f"producer: no room for 30 s at tick {start + sent}"
                sent += got


def try_send_tick(path: str, i: int) -> None:
    """Exits SENT if tick i fits within 0.2 s, REFUSED if not."""
    with TypedQueue.open(path, TICK_V1) as q:
        raise SystemExit(SENT if q.send(ticks(q.dtype, i, 1)[0], timeout=0.2) else REFUSED)


def drop_inherited_batch_then_send(holder: list[Any], path: str, i: int) -> None:
    """(fork only) Drops the batch this child inherited (the only reference is `holder[0]`),
    checks it is really gone, then tries to send tick i."""
    import gc
    import weakref

    ref = weakref.ref(holder[0])
    holder.clear()
    gc.collect()
    if ref() is not None:
        raise SystemExit(NOT_DROPPED)
    try_send_tick(path, i)
