"""mmapipc ``SharedMemoryTopic``: publish / recv, publish / recv_view (in place), and
publish_batch / recv_batch (stamped and checked per batch), with one subscriber per consumer
process (one in the two-process rows, N in the fan-out rows)."""

from __future__ import annotations

from typing import Any

from ..common import Params
from .base import BatchReceiver, End, Receiver
from .batch import BatchChecker
from .mmapipc_base import Batched, MmapipcSystem


class Topic(MmapipcSystem):
    key = "topic"
    label = "mmapipc topic"
    method = ("publish(buf) / subscriber.recv() with one subscriber; on full/empty "
              "publish(buf, True, t) / recv(True, t)")
    cls_name, noun, calls = "SharedMemoryTopic", "topic", ("publish", "recv")
    pingpong = False
    fanout = True

    def receiver(self, h: Any, p: Params) -> Receiver:
        t = self.open(h)
        s = t.subscribe()  # before the barrier: the producer starts after it

        def close() -> None:
            s.close()
            t.close()

        return Receiver("topic.recv", s.recv, False, wait=(True, p.stall), close=close)


class TopicView(Topic):
    key = "topic-view"
    label = "mmapipc topic view"
    method = "publish(buf) / subscriber.recv_view() (zero-copy; valid until the next receive)"
    needs = ("subscribe",)

    def receiver(self, h: Any, p: Params) -> Receiver:
        t = self.open(h)
        s = t.subscribe()

        def close() -> None:
            s.close()
            t.close()

        return Receiver("topic.recv_view", s.recv_view, False, wait=(True, p.stall), close=close)


class TopicBatch(Batched, Topic):
    key = "topic-batch"
    label = "mmapipc topic batch"
    method = ("publish_batch(list_of_64, True, t) / subscriber.recv_batch(64, True, t), stamped "
              "and checked per batch")
    needs = ("publish_batch", "subscribe")
    batch_calls = ("publish_batch", "recv_batch")

    def consumer(self, h: Any, p: Params) -> End:
        t = self.open(h)
        s = t.subscribe()  # before the barrier: the producer starts after it

        def close() -> None:
            s.close()
            t.close()

        return BatchReceiver("topic.recv_batch", s.recv_batch, (p.batch, True, p.stall),
                             check=BatchChecker(p).check, close=close)
