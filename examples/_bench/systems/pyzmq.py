"""pyzmq over ``ipc://``: PUSH/PULL for throughput, PAIR for ping-pong."""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..common import Params, unique_name
from .base import Receiver, Sender, System


class Zmq(System):
    key = "zmq"
    label = "pyzmq ipc PUSH/PULL"
    method = "PUSH send(buf) / PULL recv(); recv(copy=False) from 64 KiB up; HWM = depth"
    pingpong = True
    requires = ("zmq", "pyzmq")

    def setup(self, p: Params) -> Any:
        path = os.path.join("/tmp", unique_name("zmq") + ".sock")
        return f"ipc://{path}"

    def teardown(self, h: Any) -> None:
        try:
            os.unlink(h[len("ipc://"):])
        except FileNotFoundError:
            pass

    def _socket(self, kind: str, p: Params, h: str, bind: bool) -> tuple[Any, Any, Any]:
        """(the socket, a close for it and its context, the timeout exception)."""
        zmq = importlib.import_module("zmq")
        ctx = zmq.Context()
        s = ctx.socket(getattr(zmq, kind))
        for opt, value in (("SNDHWM", p.depth), ("RCVHWM", p.depth),
                           ("SNDTIMEO", int(p.stall * 1000)), ("RCVTIMEO", int(p.stall * 1000)),
                           ("LINGER", int(p.stall * 1000))):
            s.setsockopt(getattr(zmq, opt), value)

        def close() -> None:
            s.close()
            ctx.term()

        if bind:
            s.bind(h)
        else:
            s.connect(h)
        return s, close, zmq.Again

    def sender(self, h: Any, p: Params) -> Sender:
        sock, close, again = self._socket("PUSH", p, h, False)
        # send copies now: the buffer is reused for the next message.
        return Sender("zmq send", sock.send, 0, stalls=(again,), close=close)

    def receiver(self, h: Any, p: Params) -> Receiver:
        sock, close, again = self._socket("PULL", p, h, True)
        if p.size < 65536:
            return Receiver("zmq recv", sock.recv, 0, stalls=(again,), close=close)
        recv = sock.recv

        def recv_frame(flags: int) -> Any:  # zero-copy: a view of the frame
            return recv(flags, False).buffer

        return Receiver("zmq recv", recv_frame, 0, stalls=(again,), close=close)

    # Ping-pong: one PAIR socket each side, on one address.
    def pp_setup(self, p: Params) -> Any:
        return self.setup(p)

    def pp_teardown(self, h: Any) -> None:
        self.teardown(h)

    def pp_ends(self, h: Any, p: Params, server: bool) -> tuple[Sender, Receiver]:
        sock, close, again = self._socket("PAIR", p, h, server)
        return (Sender("zmq send", sock.send, 0, stalls=(again,)),
                Receiver("zmq recv", sock.recv, 0, stalls=(again,), close=close))
