"""mmapipc ``SharedMemoryQueue`` (many producers, many consumers): copy, batch, view, into.

Measured with one producer and one consumer, and (``queue`` only) with N of each."""

from __future__ import annotations

from typing import Any

from ..common import Params
from .base import End, FirstViewReceiver
from .mmapipc_base import Batched, Into, MmapipcSystem


class Queue(MmapipcSystem):
    key = "queue"
    label = "mmapipc queue"
    method = "put(buf, False) / get(False); on full/empty put(buf, True, t) / get(True, t)"
    cls_name, noun, calls = "SharedMemoryQueue", "queue", ("put", "get")
    pingpong = True
    mpmc = True


class QueueBatch(Batched, Queue):
    key = "queue-batch"
    label = "mmapipc queue batch"
    method = ("put_batch(list_of_64, True, t) / get_batch(64, True, t), stamped and checked "
              "per batch with NumPy")
    needs = batch_calls = ("put_batch", "get_batch")


class QueueView(Queue):
    key = "queue-view"
    label = "mmapipc queue view"
    method = ("put(buf) / get_view(False)[0], checked in place and released when the next "
              "call's result replaces it (zero-copy); on empty get_view(True, t)")
    pingpong = False
    mpmc = False
    needs = ("get_view",)

    def consumer(self, h: Any, p: Params) -> End:
        q = self.open(h)
        return FirstViewReceiver("queue.get_view", q.get_view, False, wait=(True, p.stall),
                                 close=q.close)


class QueueInto(Into, Queue):
    key = "queue-into"
    label = "mmapipc queue get_into"
    method = "put(buf) / get_into(buffer): one reused buffer, no allocation per message"
    into_call = "get_into"
    needs = (into_call,)
