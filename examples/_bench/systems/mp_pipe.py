"""``multiprocessing.Pipe``: a socket pair, one message per ``send_bytes``."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

from ..common import Params
from .base import Buf, End, IntoReceiver, Receiver, Sender, System


class MpPipe(System):
    key = "mp-pipe"
    label = "multiprocessing.Pipe"
    method = "send_bytes(buf) / recv_bytes_into(preallocated buffer)"
    pingpong = True

    def setup(self, p: Params) -> Any:
        return mp.get_context("fork").Pipe(duplex=False)  # (reader, writer)

    def teardown(self, h: Any) -> None:
        for c in h:
            c.close()

    def sender(self, h: Any, p: Params) -> Sender:
        return Sender("Connection.send_bytes", h[1].send_bytes, 0)

    def consumer(self, h: Any, p: Params) -> End:
        return IntoReceiver("Connection.recv_bytes_into", h[0].recv_bytes_into, 0,
                            buf=bytearray(p.size))

    # Ping-pong: one duplex pipe, an end each.
    def pp_setup(self, p: Params) -> Any:
        return mp.get_context("fork").Pipe(duplex=True)

    def pp_teardown(self, h: Any) -> None:
        self.teardown(h)

    def pp_ends(self, h: Any, p: Params, server: bool) -> tuple[Sender, Receiver]:
        c = h[1] if server else h[0]
        rbuf = bytearray(p.size)
        recv_into = c.recv_bytes_into

        def recv(_arg: Any) -> Buf:
            recv_into(rbuf)
            return rbuf

        return (Sender("Connection.send_bytes", c.send_bytes, 0),
                Receiver("Connection.recv_bytes_into", recv, None))
