"""Fan-out without a topic: the producer writes every message into one ``SharedMemoryRing`` per
consumer, and consumer ``i`` reads ring ``i`` in place (``read_view``). The baseline the topic's
fan-out rows are compared with."""

from __future__ import annotations

from typing import Any

from ..common import Params, Stalled
from .base import Buf, End, Receiver, Sender
from .mmapipc_ring import Ring


class RingsFanout(Ring):
    key = "rings-fanout"
    label = "mmapipc one ring per consumer"
    method = "write(buf, True, t) into each consumer's ring / read_view(True, t) of its own ring"
    pingpong = False
    fanout = True
    needs = ("read_view",)

    def fanout_setup(self, p: Params, consumers: int) -> Any:
        paths: list[str] = []
        try:
            for _ in range(consumers):
                paths.append(self.setup(p))
        except BaseException:
            self.teardown(tuple(paths))
            raise
        return tuple(paths)

    def teardown(self, h: Any) -> None:
        if isinstance(h, tuple):
            for one in h:
                super().teardown(one)
        else:
            super().teardown(h)

    def sender(self, h: Any, p: Params) -> Sender:
        rings = [self.open(x) for x in h]
        writes = [r.write for r in rings]
        stall = p.stall

        def write_each(m: Buf, _arg: Any) -> bool:
            for w in writes:
                if not w(m, True, stall):
                    raise Stalled("ring write timed out: a consumer stalled")
            return True

        def close() -> None:
            for r in rings:
                r.close()

        return Sender("ring.write x N", write_each, None, close=close)

    def fanout_consumer(self, h: Any, p: Params, consumer: int) -> End:
        r = self.open(h[consumer])
        return Receiver("ring.read_view", r.read_view, False, wait=(True, p.stall),
                        close=r.close)
