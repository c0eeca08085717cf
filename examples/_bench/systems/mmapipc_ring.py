"""mmapipc ``SharedMemoryRing`` (single producer, single consumer): copy, batch, view, into."""

from __future__ import annotations

from typing import Any, Optional

from ..common import Params
from .base import BatchReceiver, BatchSender, End, IntoReceiver, Receiver, Sender, numpy_missing
from .batch import BatchChecker, BatchStamper
from .mmapipc_base import MmapipcSystem


class Ring(MmapipcSystem):
    key = "ring"
    label = "mmapipc ring"
    cls_name = "SharedMemoryRing"
    method = "write(buf) / read(); on full/empty write(buf, True, t) / read(True, t)"
    pingpong = True

    def sender(self, h: Any, p: Params) -> Sender:
        r = self.open(h)
        return Sender("ring.write", r.write, False, wait=(True, p.stall), close=r.close)

    def receiver(self, h: Any, p: Params) -> Receiver:
        r = self.open(h)
        return Receiver("ring.read", r.read, False, wait=(True, p.stall), close=r.close)


class RingBatch(Ring):
    key = "ring-batch"
    label = "mmapipc ring batch"
    method = ("write_batch(list_of_64, True, t) / read_batch(64, True, t), stamped and checked "
              "per batch")
    pingpong = False
    batched = True
    needs = ("write_batch", "read_batch")

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or numpy_missing()

    def producer(self, h: Any, p: Params) -> End:
        r = self.open(h)
        # Blocking: writes what fits, waits for room, goes on (one call per batch).
        block = (True, p.stall)
        return BatchSender("ring.write_batch", r.write_batch, block, BatchStamper(p), wait=block,
                           close=r.close)

    def consumer(self, h: Any, p: Params) -> End:
        r = self.open(h)
        # Blocking: everything ready (up to a batch), waiting only while there is nothing.
        return BatchReceiver("ring.read_batch", r.read_batch, (p.batch, True, p.stall),
                             check=BatchChecker(p).check, close=r.close)


class RingView(Ring):
    key = "ring-view"
    label = "mmapipc ring view"
    method = "write(buf) / read_view() (zero-copy; checks stamp and tail in place)"
    pingpong = False
    needs = ("read_view",)

    def consumer(self, h: Any, p: Params) -> End:
        r = self.open(h)
        return Receiver("ring.read_view", r.read_view, False, wait=(True, p.stall),
                        close=r.close)


class RingInto(Ring):
    key = "ring-into"
    label = "mmapipc ring read_into"
    method = "write(buf) / read_into(buffer): one reused buffer, no allocation per message"
    pingpong = False
    needs = ("read_into",)

    def consumer(self, h: Any, p: Params) -> End:
        r = self.open(h)
        return IntoReceiver("ring.read_into", r.read_into, False, wait=(True, p.stall),
                            close=r.close)
