"""mmapipc ``SharedMemoryQueue`` (many producers, many consumers): copy, batch, view, into.

Measured with one producer and one consumer, and (``queue`` only) with N of each."""

from __future__ import annotations

from functools import partial
from typing import Any, Optional

from ..common import Params
from .base import BatchReceiver, BatchSender, End, IntoReceiver, Receiver, Sender, numpy_missing
from .batch import BatchChecker, BatchStamper, check_each
from .mmapipc_base import MmapipcSystem


class Queue(MmapipcSystem):
    key = "queue"
    label = "mmapipc queue"
    cls_name = "SharedMemoryQueue"
    method = "put(buf, False) / get(False); on full/empty put(buf, True, t) / get(True, t)"
    pingpong = True
    mpmc = True

    def sender(self, h: Any, p: Params) -> Sender:
        q = self.open(h)
        return Sender("queue.put", q.put, False, wait=(True, p.stall), close=q.close)

    def receiver(self, h: Any, p: Params) -> Receiver:
        q = self.open(h)
        return Receiver("queue.get", q.get, False, wait=(True, p.stall), close=q.close)


class QueueBatch(Queue):
    key = "queue-batch"
    label = "mmapipc queue batch"
    method = ("put_batch(list_of_64, True, t) / get_batch(64, True, t), stamped and checked "
              "per batch with NumPy")
    pingpong = False
    mpmc = False
    batched = True
    needs = ("put_batch", "get_batch")

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or numpy_missing()

    def producer(self, h: Any, p: Params) -> End:
        q = self.open(h)
        block = (True, p.stall)
        return BatchSender("queue.put_batch", q.put_batch, block, BatchStamper(p), wait=block,
                           close=q.close)

    def consumer(self, h: Any, p: Params) -> End:
        q = self.open(h)
        return BatchReceiver("queue.get_batch", q.get_batch, (p.batch, True, p.stall),
                             check=BatchChecker(p).check, close=q.close)


class QueueView(Queue):
    key = "queue-view"
    label = "mmapipc queue view"
    method = "put(buf) / get_view(True, t) + release(views) (zero-copy, checked in place)"
    pingpong = False
    mpmc = False
    needs = ("get_view", "release")

    def consumer(self, h: Any, p: Params) -> End:
        q = self.open(h)
        # Every message available (at least one), checked in place, then released.
        return BatchReceiver("queue.get_view", q.get_view, (True, p.stall),
                             check=partial(check_each, size=p.size, tail=p.tail),
                             release=q.release, close=q.close)


class QueueInto(Queue):
    key = "queue-into"
    label = "mmapipc queue get_into"
    method = "put(buf) / get_into(buffer): one reused buffer, no allocation per message"
    pingpong = False
    mpmc = False
    needs = ("get_into",)

    def consumer(self, h: Any, p: Params) -> End:
        q = self.open(h)
        return IntoReceiver("queue.get_into", q.get_into, False, wait=(True, p.stall),
                            close=q.close)
