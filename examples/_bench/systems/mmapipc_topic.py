"""mmapipc ``SharedMemoryTopic`` with one subscriber (the harness runs one producer and one
consumer process): publish / recv, and publish / recv_view (in place)."""

from __future__ import annotations

from typing import Any

from ..common import Params
from .base import Receiver
from .mmapipc_base import MmapipcSystem


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
