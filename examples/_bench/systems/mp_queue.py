"""``multiprocessing.Queue``, the baseline every ratio is taken against."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
from typing import Any

from ..common import Params
from .base import Buf, Receiver, Sender, System


class MpQueue(System):
    key = "mp-queue"
    label = "multiprocessing.Queue"
    method = "put(bytes(buf)) / get(True, t); maxsize bounds the buffer like the others"
    pingpong = True
    mpmc = True

    def setup(self, p: Params) -> Any:
        return mp.get_context("fork").Queue(maxsize=p.depth)

    def teardown(self, h: Any) -> None:
        h.close()
        h.cancel_join_thread()

    def sender(self, h: Any, p: Params) -> Sender:
        put, tmo = h.put, p.stall

        def send(m: Buf, block: bool) -> None:
            put(bytes(m), block, tmo)  # the feeder thread pickles later: an immutable copy

        def close() -> None:  # after the last message: let the feeder thread flush it
            h.close()
            h.join_thread()

        return Sender("multiprocessing.Queue.put", send, True,
                      stalls=(queue_mod.Full,), close=close)

    def receiver(self, h: Any, p: Params) -> Receiver:
        get, tmo = h.get, p.stall

        def recv(block: bool) -> Buf:
            return get(block, tmo)

        return Receiver("multiprocessing.Queue.get", recv, True, stalls=(queue_mod.Empty,))
