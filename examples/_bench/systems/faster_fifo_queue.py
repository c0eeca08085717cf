"""faster-fifo's ``Queue``: raw bytes (no pickle), one message or a batch per call."""

from __future__ import annotations

import importlib
import queue as queue_mod
from typing import Any, Optional

from ..common import Params
from .base import BatchReceiver, BatchSender, End, Receiver, Sender, System, numpy_missing
from .batch import BatchChecker, BatchStamper


class FasterFifo(System):
    key = "faster-fifo"
    label = "faster-fifo"
    method = "put(buf) / get(True, t), raw bytes (dumps=bytes, loads=bytes: no pickle)"
    pingpong = True
    mpmc = True
    requires = ("faster_fifo", "faster-fifo")

    def setup(self, p: Params) -> Any:
        ff = importlib.import_module("faster_fifo")
        # Room for the same number of messages as the other systems, plus framing.
        return ff.Queue(max_size_bytes=p.capacity + 64 * p.depth, loads=bytes, dumps=bytes)

    def teardown(self, h: Any) -> None:
        close = getattr(h, "close", None)
        if close is not None:
            close()

    def sender(self, h: Any, p: Params) -> Sender:
        put, tmo = h.put, p.stall

        def send(m: Any, block: bool) -> None:
            put(m, block, tmo)

        return Sender("faster_fifo.Queue.put", send, True, stalls=(queue_mod.Full,))

    def receiver(self, h: Any, p: Params) -> Receiver:
        get, tmo = h.get, p.stall

        def recv(block: bool) -> Any:
            return get(block, tmo)

        return Receiver("faster_fifo.Queue.get", recv, True, stalls=(queue_mod.Empty,))


class FasterFifoBatch(FasterFifo):
    key = "faster-fifo-batch"
    label = "faster-fifo batch"
    method = ("put_many(list_of_64, True, t) / get_many(True, t, max_messages_to_get=64), "
              "stamped and checked per batch with NumPy")
    pingpong = False
    mpmc = False
    batched = True

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or numpy_missing()

    def producer(self, h: Any, p: Params) -> End:
        return BatchSender("faster_fifo.Queue.put_many", h.put_many, (True, p.stall),
                           BatchStamper(p), stalls=(queue_mod.Full,))

    def consumer(self, h: Any, p: Params) -> End:
        return BatchReceiver("faster_fifo.Queue.get_many", h.get_many, (True, p.stall, p.batch),
                             check=BatchChecker(p).check, stalls=(queue_mod.Empty,))
