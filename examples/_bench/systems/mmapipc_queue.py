"""mmapipc ``SharedMemoryQueue`` (many producers, many consumers): copy, batch, view, into.

Measured with one producer and one consumer, and (``queue`` only) with N of each."""

from __future__ import annotations

from typing import Any, Optional

from ..common import Params, message_buffer
from .base import End, FirstViewReceiver, Sender, numpy_missing
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
    needs: tuple[str, ...] = ("get_view",)

    def consumer(self, h: Any, p: Params) -> End:
        q = self.open(h)
        return FirstViewReceiver("queue.get_view", q.get_view, False, wait=(True, p.stall),
                                 close=q.close)


class QueueLoan(QueueView):
    key = "queue-loan"
    label = "mmapipc queue loan"
    method = ("loan(n) + NumPy copy of the frame into the slot + commit() / get_view(False)[0] "
              "as queue-view (zero-copy both ways)")
    needs = ("loan", "commit", "get_view")

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or numpy_missing()

    def sender(self, h: Any, p: Params) -> Sender:
        import numpy as np

        q = self.open(h)
        buf = message_buffer(p.size)  # the stamped frame, as a producer holds it
        frame = np.frombuffer(buf, np.uint8)
        loan, commit, view, u8, size = q.loan, q.commit, np.frombuffer, np.uint8, p.size

        def put(m: Any, block: bool, timeout: Optional[float] = None) -> bool:
            slot = loan(size, block, timeout)
            if slot is None:
                return False
            view(slot, u8)[:] = frame if m is buf else view(m, u8)
            commit()
            return True

        return Sender("queue.loan", put, False, wait=(True, p.stall), buf=buf, close=q.close)


class QueueInto(Into, Queue):
    key = "queue-into"
    label = "mmapipc queue get_into"
    method = "put(buf) / get_into(buffer): one reused buffer, no allocation per message"
    into_call = "get_into"
    needs = (into_call,)
