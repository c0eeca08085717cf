"""asyncio consumers and ping-pong: mmapipc's ring (``async for``, ``read_async``,
``write_async``) against ``zmq.asyncio`` over ``ipc://``.

The producer of a throughput run is the system's ordinary blocking producer (``base``'s
``Sender``); the consumer runs one asyncio loop (the default one) and awaits every message,
checking stamps as ``loops.stream_consumer`` does. Ping-pong runs both sides on asyncio loops.
"""

from __future__ import annotations

import asyncio
import importlib
from time import perf_counter, perf_counter_ns
from typing import Any, Awaitable, Callable

from ..common import STAMP, STOP, Params, Stalled
from . import loops
from .base import End, Result, Sync
from .mmapipc_ring import Ring
from .pyzmq import Zmq

Recv = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[Any]]


async def _consume(recv: Recv, p: Params, sync: Sync) -> Result:
    unpack = STAMP.unpack_from
    last, tail, warm = p.size - 1, p.tail, p.warm
    sync()
    n = 0
    tw = 0.0
    while True:
        m = await recv()
        s = unpack(m)[0]
        if s != n:
            if s == STOP:
                break
            raise loops.bad(n, s)
        if tail and m[last] != n & 0xFF:
            raise loops.torn(n)
        n += 1
        if n == warm:
            tw = perf_counter()
    return {"received": n, "t_warm": tw, "t_end": perf_counter()}


async def _client(send: Send, recv: Recv, p: Params, sync: Sync) -> Result:
    buf = bytearray(p.size)
    pack, unpack = STAMP.pack_into, STAMP.unpack_from
    rtts: list[int] = []
    sync()
    start = perf_counter()
    deadline, warm_until = start + p.seconds, start + p.seconds / 10
    warm = p.warm
    total = warm + p.count
    i = 0
    while i < total:
        pack(buf, 0, i)
        t = perf_counter_ns()
        await send(buf)
        m = await recv()
        dt = perf_counter_ns() - t
        if unpack(m)[0] != i:
            raise loops.bad(i, unpack(m)[0])
        if i >= warm:
            rtts.append(dt)
        elif i & 15 == 0 and perf_counter() >= warm_until:
            warm = i + 1
            total = warm + p.count
        i += 1
        if i & 63 == 0 and perf_counter() >= deadline:
            break
    pack(buf, 0, STOP)
    await send(buf)
    return {"rtt_ns": rtts}


async def _server(send: Send, recv: Recv, p: Params, sync: Sync) -> Result:
    unpack = STAMP.unpack_from
    sync()
    n = 0
    while True:
        m = await recv()
        if unpack(m)[0] == STOP:
            break
        await send(m)
        n += 1
    return {"echoed": n}


def _run(coro: Awaitable[Result], p: Params, what: str) -> Result:
    """Runs one side on a fresh asyncio loop, bounded as a whole (the run's time, plus the
    stall timeout for each of its phases) so that a stalled peer cannot hang it."""

    async def guarded() -> Result:
        try:
            return await asyncio.wait_for(coro, p.seconds + 4 * p.stall + 30)
        except asyncio.TimeoutError:
            raise Stalled(f"{what} timed out: peer stalled") from None

    return asyncio.run(guarded())


class AsyncReceiver(End):
    """An asyncio consumer: ``open()`` (inside the loop) returns the awaitable receive."""

    peer = "producer"

    def __init__(self, name: str, open: Callable[[], Recv], close: Callable[[], None]) -> None:
        super().__init__(name, close=close)
        self.open = open

    def loop(self, p: Params, sync: Sync) -> Result:
        async def main() -> Result:
            return await _consume(self.open(), p, sync)

        return _run(main(), p, self.name)


def _bounded(recv: Callable[[], Awaitable[Any]], stall: float) -> Recv:
    """A receive that raises ``asyncio.TimeoutError`` after ``stall`` seconds."""
    async def go() -> Any:
        return await asyncio.wait_for(recv(), stall)
    return go


class RingAsync(Ring):
    key = "ring-async"
    label = "mmapipc ring asyncio"
    method = ("async for m in ring (read_async) on an asyncio loop; ping-pong read_async / "
              "write_async on both sides")
    needs = ("read_async", "write_async")

    def consumer(self, h: Any, p: Params) -> End:
        r = self.open(h)
        # `async for m in ring` is `await ring.__anext__()` per message: no timer per message
        # (a stalled producer is caught by the bound on the whole run, see `_run`).
        return AsyncReceiver("ring async for", lambda: r.__anext__, r.close)

    def _pingpong(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        ab, ba = h
        rx, tx = self.open(ab if server else ba), self.open(ba if server else ab)
        stall = p.stall

        async def recv() -> Any:
            m = await rx.read_async(stall)
            if m is None:
                raise asyncio.TimeoutError
            return m

        async def send(buf: Any) -> None:
            if not await tx.write_async(buf, stall):
                raise asyncio.TimeoutError

        try:
            role = _server if server else _client
            return _run(role(send, recv, p, sync), p, "ring read_async / write_async")
        finally:
            rx.close()
            tx.close()


class ZmqAsync(Zmq):
    key = "zmq-asyncio"
    label = "zmq.asyncio ipc PUSH/PULL"
    method = ("zmq.asyncio: PULL await recv() on an asyncio loop, RCVHWM 0 (PUSH send() blocking); "
              "PAIR ping-pong, await send / recv")

    def _async_socket(self, kind: str, p: Params, h: str, bind: bool) -> tuple[Any, Callable[[], None]]:
        zmq = importlib.import_module("zmq")
        zaio = importlib.import_module("zmq.asyncio")
        ctx = zaio.Context()
        s = ctx.socket(getattr(zmq, kind))
        # RCVHWM unlimited: with a receive high-water mark, zmq.asyncio (pyzmq 27) misses the
        # edge of its descriptor when the sender resumes, and the receiver waits forever. The
        # sender's SNDHWM still bounds what is queued.
        for opt, value in (("SNDHWM", p.depth), ("RCVHWM", 0), ("LINGER", int(p.stall * 1000))):
            s.setsockopt(getattr(zmq, opt), value)
        if bind:
            s.bind(h)
        else:
            s.connect(h)

        def close() -> None:
            s.close()
            ctx.term()

        return s, close

    def consumer(self, h: Any, p: Params) -> End:
        holder: list[Callable[[], None]] = []

        def open() -> Recv:
            sock, close = self._async_socket("PULL", p, h, True)
            holder.append(close)
            return _bounded(sock.recv, p.stall)

        def close() -> None:
            for c in holder:
                c()

        return AsyncReceiver("zmq.asyncio recv", open, close)

    def _pingpong(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        async def main() -> Result:
            sock, close = self._async_socket("PAIR", p, h, server)
            recv = _bounded(sock.recv, p.stall)

            async def send(buf: Any) -> None:
                await asyncio.wait_for(sock.send(buf), p.stall)

            try:
                role = _server if server else _client
                return await role(send, recv, p, sync)
            finally:
                close()

        return _run(main(), p, "zmq.asyncio send / recv")
