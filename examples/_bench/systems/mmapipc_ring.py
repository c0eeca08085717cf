"""mmapipc ``SharedMemoryRing`` (single producer, single consumer): copy, batch, view, into."""

from __future__ import annotations

from typing import Any

from ..common import Params
from .base import End, Receiver
from .mmapipc_base import Batched, Into, MmapipcSystem


class Ring(MmapipcSystem):
    key = "ring"
    label = "mmapipc ring"
    method = "write(buf) / read(); on full/empty write(buf, True, t) / read(True, t)"
    cls_name, noun, calls = "SharedMemoryRing", "ring", ("write", "read")
    pingpong = True


class RingBatch(Batched, Ring):
    key = "ring-batch"
    label = "mmapipc ring batch"
    method = ("write_batch(list_of_64, True, t) / read_batch(64, True, t), stamped and checked "
              "per batch")
    needs = batch_calls = ("write_batch", "read_batch")


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


class RingInto(Into, Ring):
    key = "ring-into"
    label = "mmapipc ring read_into"
    method = "write(buf) / read_into(buffer): one reused buffer, no allocation per message"
    into_call = "read_into"
    needs = (into_call,)
