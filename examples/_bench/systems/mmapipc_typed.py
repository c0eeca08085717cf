"""mmapipc typed rings (``mmapipc.typed.TypedRing``): records of a schema, here market.Tick v1
(32 B, ``timestamp_ns`` u64 at offset 0 carries the stamp). Measured at the record's size only."""

from __future__ import annotations

import importlib
import os
from typing import Any, Optional

from ..common import STOP, BenchError, Params, Stalled, shm_dir, unique_name
from .base import (BatchReceiver, BatchSender, End, NumberedReceiver, NumberedSender, Stamper,
                   numpy_missing, optional)
from .loops import bad
from .mmapipc_base import MmapipcSystem

TICK_SCHEMA = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "schemas", "market", "tick.v1.json",
)
TICK_SIZE = 32


def _record() -> dict[str, Any]:
    return {"timestamp_ns": 0, "symbol": list(b"MMAPIPC\0"), "price": 101.25, "size": 100,
            "side": 1}


class TypedRing(MmapipcSystem):
    key = "typed"
    label = "mmapipc typed ring"
    method = "TypedRing.send(dict) (encode per record) / recv() (record in place, field read)"
    typed = True

    def typed_ring(self) -> Any:
        mod = optional("mmapipc.typed")
        return None if mod is None else getattr(mod, "TypedRing", None)

    def unavailable(self) -> Optional[str]:
        if optional("mmapipc") is None:
            return "mmapipc is not installed (pip install -e .)"
        if self.typed_ring() is None:
            return "mmapipc.typed.TypedRing is not available in this build"
        if not os.path.exists(TICK_SCHEMA):
            return f"schema file {TICK_SCHEMA} not found"
        return numpy_missing()

    def setup(self, p: Params) -> Any:
        if p.size != TICK_SIZE:
            raise BenchError(f"typed rings are measured with {TICK_SIZE}-byte market.Tick records")
        path = os.path.join(shm_dir(), unique_name("typed"))
        self.typed_ring().create(path, p.capacity, TICK_SCHEMA).close()
        return path

    def producer(self, h: Any, p: Params) -> End:
        tr = self.typed_ring().open(h)
        send, tmo = tr.send, p.stall
        rec = _record()

        def send_n(n: int) -> None:
            rec["timestamp_ns"] = n
            if not send(rec, block=False) and not send(rec, block=True, timeout=tmo):
                raise Stalled("TypedRing.send timed out: consumer stalled")

        return NumberedSender("TypedRing.send", send_n, close=tr.close)

    def consumer(self, h: Any, p: Params) -> End:
        tr = self.typed_ring().open(h, TICK_SCHEMA)
        recv, tmo = tr.recv, p.stall

        def recv_n() -> int:
            r = recv(False)
            if r is None:
                r = recv(True, tmo)
                if r is None:
                    raise Stalled("TypedRing.recv timed out: producer stalled")
            return int(r.timestamp_ns)  # r, a view of the slot, goes: the next receive reuses it

        return NumberedReceiver("TypedRing.recv", recv_n, close=tr.close)


class RecordStamper(Stamper):
    """A batch of Tick records in one NumPy structured array, stamped with one vector store."""

    def __init__(self, np: Any, dtype: Any, batch: int) -> None:
        self.np = np
        recs = np.zeros(batch, dtype=dtype)
        recs["symbol"] = np.frombuffer(b"MMAPIPC\0", dtype=np.uint8)
        recs["price"], recs["size"], recs["side"] = 101.25, 100, 1
        self.stamps = recs["timestamp_ns"]
        rows = recs.view(np.uint8).reshape(batch, -1)
        self.views = [memoryview(rows[j]) for j in range(batch)]
        self.base = np.arange(batch, dtype=np.uint64)
        self.batch = batch

    def stamp(self, n: int, k: int) -> list[memoryview]:
        self.np.add(self.base[:k], n, out=self.stamps[:k], casting="unsafe")
        return self.views if k == self.batch else self.views[:k]

    def stop(self) -> memoryview:
        self.stamps[0] = STOP
        return self.views[0]


class TypedRingBatch(TypedRing):
    key = "typed-batch"
    label = "mmapipc typed ring batch"
    method = ("records filled in a NumPy structured array, ring.write_batch(rows) / "
              "recv_batch(64) -> structured array, fields checked vectorised")
    batched = True

    def producer(self, h: Any, p: Params) -> End:
        np = importlib.import_module("numpy")
        tr = self.typed_ring().open(h)
        ring = tr.ring
        return BatchSender("ring.write_batch", ring.write_batch, (False, None),
                           RecordStamper(np, tr.dtype, p.batch), wait=(True, p.stall),
                           close=tr.close)

    def consumer(self, h: Any, p: Params) -> End:
        np = importlib.import_module("numpy")
        tr = self.typed_ring().open(h, TICK_SCHEMA)
        recv, recv_batch = tr.recv, tr.recv_batch
        bsz = p.batch
        base = np.arange(bsz, dtype=np.uint64)
        stop_val = np.uint64(STOP)
        tmo = p.stall

        def take(n: int) -> tuple[int, bool]:
            arr = recv_batch(bsz, False)
            if len(arr) == 0:  # nothing ready: wait for one record
                r = recv(True, tmo)
                if r is None:
                    raise Stalled("TypedRing.recv timed out: producer stalled")
                s = int(r.timestamp_ns)
                del r  # the record is a view of the slot: let the next receive reuse it
                if s == STOP:
                    return 0, True
                if s != n:
                    raise bad(n, s)
                return 1, False
            ts = arr["timestamp_ns"]
            k = len(ts)
            stop = bool(ts[k - 1] == stop_val)
            if stop:
                k -= 1
            if k and not bool((ts[:k] - np.uint64(n) == base[:k]).all()):
                i = int(np.flatnonzero(ts[:k] != base[:k] + np.uint64(n))[0])
                raise bad(n + i, int(ts[i]))
            # The array may be a view of the ring's slots: it goes before the next receive.
            return k, stop

        return BatchReceiver("TypedRing.recv_batch", take=take, close=tr.close)
