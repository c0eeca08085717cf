"""mmapipc.typed.TypedTopic: records fanned out to typed subscriptions, batches as one NumPy
array, overwrite mode and groups (copies), a Rust-written record read in Python, and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")

import mmapipc
from mmapipc.typed import TypedSubscription, TypedTopic

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
TICK_V1 = SCHEMAS / "market/tick.v1.json"


def tick(i: int) -> dict[str, Any]:
    return {"timestamp_ns": i, "symbol": np.frombuffer(b"SYM\0\0\0\0\0", np.uint8), "price": i / 2, "size": i, "side": i % 2}


def test_every_subscription_gets_every_record_in_place(shm_path: str) -> None:
    with TypedTopic.create(shm_path, 1 << 14, TICK_V1) as t:
        with t.subscribe() as a, TypedTopic.open(shm_path, TICK_V1).subscribe() as b:
            assert isinstance(a, TypedSubscription)
            for i in range(10):
                assert t.send(tick(i))
            rec = a.recv()
            assert rec is not None and rec.size == 0 and rec.price == 0.0
            nxt = a.recv()
            assert nxt is not None and nxt.size == 1
            with pytest.raises(ValueError):
                rec.size  # released by the next receive
            batch = a.recv_batch(100)
            assert batch.dtype == a.dtype and list(batch["size"]) == list(range(2, 10))
            assert not batch.flags.owndata and not batch.flags.writeable, "over the slots"
            t.send(tick(10))
            with pytest.raises(BufferError):
                a.recv()  # the batch is alive: its slots stay held
            del batch
            late = a.recv()
            assert late is not None and late.size == 10
            whole = b.recv_batch(100)
            assert list(whole["timestamp_ns"]) == list(range(11)) and b.lag == 0


def test_send_batch_and_overwrite_and_groups(shm_path: str) -> None:
    with TypedTopic.create(shm_path, 4096, TICK_V1, overflow="overwrite", max_subscribers=4) as t:
        with t.subscribe() as s, t.subscribe(group="g") as g:
            arr = np.zeros(500, dtype=t.dtype)
            arr["size"] = np.arange(500)
            assert t.send_batch(arr) == 500
            got = s.recv_batch(1000)
            assert got["size"][-1] == 499 and len(got) + s.dropped == 500
            rec = g.recv()
            assert rec is not None and rec.size > 0


def test_refusals(shm_path: str) -> None:
    with TypedTopic.create(shm_path, 4096, TICK_V1) as t:
        with pytest.raises(TypeError):
            t.recv()
        with t.subscribe() as s:
            with pytest.raises(TypeError):
                s.send(tick(0))
        with pytest.raises(mmapipc.Error, match="untyped"):
            plain = shm_path + "-plain"
            mmapipc.SharedMemoryTopic.create(plain, 4096).close()
            try:
                TypedTopic.open(plain)
            finally:
                mmapipc.SharedMemoryTopic.open(plain).unlink()
