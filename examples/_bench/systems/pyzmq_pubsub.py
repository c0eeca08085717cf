"""pyzmq publish-subscribe over ``ipc://``, for the fan-out rows: one XPUB, N SUB sockets.

The publisher waits for every subscription (XPUB_VERBOSE hands each one over) before it sends,
so no subscriber misses the first messages. High-water marks are unlimited: a PUB socket drops
messages at its high-water mark, and the rows count every message at every subscriber.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..common import Params, Stalled, unique_name
from .base import End, Receiver, Sender, System


class ZmqPubSub(System):
    key = "zmq-pubsub"
    label = "pyzmq ipc PUB/SUB"
    method = "XPUB send(buf) / SUB recv(); recv(copy=False) from 64 KiB up; HWM unlimited"
    throughput = False
    fanout = True
    requires = ("zmq", "pyzmq")

    def fanout_setup(self, p: Params, consumers: int) -> Any:
        return (f"ipc://{os.path.join('/tmp', unique_name('zmqps') + '.sock')}", consumers)

    def setup(self, p: Params) -> Any:
        return self.fanout_setup(p, 1)

    def teardown(self, h: Any) -> None:
        try:
            os.unlink(h[0][len("ipc://"):])
        except FileNotFoundError:
            pass

    def _socket(self, kind: str, p: Params) -> tuple[Any, Any, Any]:
        zmq = importlib.import_module("zmq")
        ctx = zmq.Context()
        s = ctx.socket(getattr(zmq, kind))
        for opt, value in (("SNDHWM", 0), ("RCVHWM", 0), ("RCVTIMEO", int(p.stall * 1000)),
                           ("SNDTIMEO", int(p.stall * 1000)), ("LINGER", int(p.stall * 1000))):
            s.setsockopt(getattr(zmq, opt), value)

        def close() -> None:
            s.close()
            ctx.term()

        return zmq, s, close

    def sender(self, h: Any, p: Params) -> Sender:
        zmq, sock, close = self._socket("XPUB", p)
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        sock.bind(h[0])

        def start() -> None:  # every subscriber's subscription has arrived
            for _ in range(h[1]):
                try:
                    sock.recv()
                except zmq.Again:
                    raise Stalled("zmq XPUB: a subscriber never subscribed") from None

        return Sender("zmq send", sock.send, 0, stalls=(zmq.Again,), start=start, close=close)

    def receiver(self, h: Any, p: Params) -> Receiver:
        zmq, sock, close = self._socket("SUB", p)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(h[0])
        if p.size < 65536:
            return Receiver("zmq recv", sock.recv, 0, stalls=(zmq.Again,), close=close)
        recv = sock.recv

        def recv_frame(flags: int) -> Any:  # zero-copy: a view of the frame
            return recv(flags, False).buffer

        return Receiver("zmq recv", recv_frame, 0, stalls=(zmq.Again,), close=close)

    def fanout_consumer(self, h: Any, p: Params, consumer: int) -> End:
        return self.receiver(h, p)
