"""asyncio on rings, queues and typed channels (mmapipc._aio), and readiness descriptors.

Real processes on real shared memory, under fork and spawn. The messages are sequence numbers,
so "nothing lost, nothing duplicated, in order" is one comparison.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import resource
import selectors
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from aio_helpers import (
    SEQ,
    consume_async_ring,
    fallback_many,
    produce_many,
    produce_until,
    produce_ring,
    produce_then_hang,
    put_async_queue,
)
from conftest import run_child
from mmapipc import SharedMemoryQueue, SharedMemoryRing, _aio
from mmapipc._mmapipc import ready_armed, ready_threads

T = TypeVar("T")

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the dev extras
    uvloop = None

LOOPS = ["asyncio"] + (["uvloop"] if uvloop is not None else [])


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[T]], T]:
    """Runs a coroutine to completion on the default loop or uvloop (with a generous guard)."""

    def go(coro: Awaitable[T]) -> T:
        guarded = asyncio.wait_for(coro, 300)
        if request.param == "uvloop":
            assert uvloop is not None
            loop = uvloop.new_event_loop()
            try:
                return loop.run_until_complete(guarded)
            finally:
                loop.close()
        return asyncio.run(guarded)  # type: ignore[arg-type]

    return go


def start(ctx: mp.context.BaseContext, target: Callable[..., Any], *args: Any) -> Any:
    p = ctx.Process(target=target, args=args)  # type: ignore[attr-defined]
    p.start()
    return p


def finish(p: Any, timeout: float = 120) -> None:
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError("child did not finish")
    assert p.exitcode == 0, p.exitcode


def seqs(msgs: list[bytes]) -> list[int]:
    return [SEQ.unpack(m)[0] for m in msgs]


def no_registration(h: SharedMemoryRing | SharedMemoryQueue) -> None:
    assert not ready_armed(h) and not ready_armed(h, True), "a registration was left behind"
    assert not _aio._waiting, f"readers left behind: {_aio._waiting}"


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_a_million_messages_in_order_through_async_for(
    ctx: mp.context.BaseContext, shm_path: str, run: Callable[[Awaitable[Any]], Any]
) -> None:
    total = 1_000_000
    SharedMemoryRing.create(shm_path, 64 * 1024).close()

    async def consume() -> int:
        with SharedMemoryRing.open(shm_path) as ring:
            n = 0
            async for m in ring:
                assert SEQ.unpack(m)[0] == n, (SEQ.unpack(m)[0], n)
                n += 1
                if n == total:
                    break
            no_registration(ring)
            return n

    p = start(ctx, produce_ring, shm_path, total, 256)
    assert run(consume()) == total
    finish(p)


def test_an_asyncio_consumer_process_and_batches(ctx: mp.context.BaseContext, shm_path: str) -> None:
    total = 200_000
    SharedMemoryRing.create(shm_path, 16 * 1024).close()
    c = start(ctx, consume_async_ring, shm_path, total)
    produce_ring(shm_path, total, 64)
    finish(c)

    # read_batch_async: batches in order, never empty unless timed out.
    p = start(ctx, produce_ring, shm_path, total, 100)

    async def batches() -> list[int]:
        got: list[int] = []
        with SharedMemoryRing.open(shm_path) as ring:
            while len(got) < total:
                b = await ring.read_batch_async(512)
                assert b
                got += seqs(b)
            assert await ring.read_batch_async(512, timeout=0.05) == []
        return got

    assert asyncio.run(asyncio.wait_for(batches(), 120)) == list(range(total))
    finish(p)


def test_queue_get_async_and_put_async_between_processes(
    ctx: mp.context.BaseContext, shm_path: str, run: Callable[[Awaitable[Any]], Any]
) -> None:
    total = 50_000
    SharedMemoryQueue.create(shm_path, 4096).close()
    p = start(ctx, put_async_queue, shm_path, total)

    async def consume() -> list[int]:
        got: list[int] = []
        with SharedMemoryQueue.open(shm_path) as q:
            while len(got) < total:
                if len(got) % 2:
                    m = await q.get_async()
                    assert m is not None
                    got.append(SEQ.unpack(m)[0])
                else:
                    got += seqs(await q.get_batch_async(7))
            assert await q.get_async(timeout=0.05) is None
            no_registration(q)
        return got

    assert run(consume()) == list(range(total))
    finish(p)


def test_one_hundred_channels_in_one_loop_without_one_hundred_threads(
    ctx: mp.context.BaseContext, tmp_path: Path, run: Callable[[Awaitable[Any]], Any]
) -> None:
    paths = [str(tmp_path / f"ring{i}") for i in range(100)]
    for p in paths:
        SharedMemoryRing.create(p, 4096).close()
    count = 300
    before = native_threads()

    async def one(ring: SharedMemoryRing) -> None:
        for i in range(count):
            m = await ring.read_async(timeout=60)
            assert m is not None and SEQ.unpack(m)[0] == i

    async def main() -> int:
        rings = [SharedMemoryRing.open(p) for p in paths]
        tasks = [asyncio.ensure_future(one(r)) for r in rings]
        await asyncio.sleep(0.1)  # every task waits now (nothing was written yet)
        # Four producers feed 25 channels each.
        producers = [start(ctx, produce_many, paths[k::4], count) for k in range(4)]
        most = native_threads()
        while not all(t.done() for t in tasks):
            most = max(most, native_threads())
            await asyncio.sleep(0.01)
        for t in tasks:
            t.result()
        for p in producers:
            finish(p)
        for r in rings:
            no_registration(r)
            r.close()
        return most

    most = run(main())
    # One waiter thread for 100 channels (futex_waitv); the loop itself adds none.
    assert most - before <= 2, (before, most)
    assert ready_threads() <= 2


def test_cancellation_storms_lose_and_duplicate_nothing(
    ctx: mp.context.BaseContext, shm_path: str, tmp_path: Path, run: Callable[[Awaitable[Any]], Any]
) -> None:
    for kind in ("ring", "queue"):
        if kind == "ring":
            h: SharedMemoryRing | SharedMemoryQueue = SharedMemoryRing.create(shm_path, 4096)
        else:
            h = SharedMemoryQueue.create(shm_path, 4096)
        stop, count_file = str(tmp_path / f"stop-{kind}"), str(tmp_path / f"count-{kind}")
        p = start(ctx, produce_until, shm_path, kind, 0.0003, stop, count_file)
        rng = random.Random(7)
        recv = h.read_async if isinstance(h, SharedMemoryRing) else h.get_async

        async def storm() -> tuple[list[int], int]:
            got: list[int] = []
            cancelled = 0
            # Thousands of awaits cancelled by tiny timeouts while the producer runs.
            while cancelled < 2000 or len(got) < 1000:
                try:
                    m = await asyncio.wait_for(recv(), rng.uniform(0, 0.0004))
                except asyncio.TimeoutError:
                    cancelled += 1
                    continue
                assert m is not None
                got.append(SEQ.unpack(m)[0])
            open(stop, "w").close()
            while not os.path.exists(count_file):
                await asyncio.sleep(0.01)
            # Then the rest of what was published, and nothing more.
            while (m := await recv(timeout=0.2)) is not None:
                got.append(SEQ.unpack(m)[0])
            return got, cancelled

        got, cancelled = run(storm())
        finish(p)
        with open(count_file) as f:
            written = int(f.read())
        assert got == list(range(written)), kind
        assert cancelled >= 2000
        no_registration(h)
        h.close()
        h.unlink()
        os.unlink(stop)
        os.unlink(count_file)


def test_a_killed_producer_never_hangs_the_await(ctx: mp.context.BaseContext, shm_path: str, tmp_path: Path) -> None:
    SharedMemoryRing.create(shm_path, 4096).close()
    ready = str(tmp_path / "ready")
    p = start(ctx, produce_then_hang, shm_path, 5, ready)

    async def main() -> None:
        with SharedMemoryRing.open(shm_path) as ring:
            got = [await ring.read_async(timeout=60) for _ in range(5)]
            assert seqs([m for m in got if m is not None]) == [0, 1, 2, 3, 4]
            while not os.path.exists(ready):
                await asyncio.sleep(0.01)
            waiting = asyncio.ensure_future(ring.read_async(timeout=2.0))
            await asyncio.sleep(0.2)
            os.kill(p.pid, signal.SIGKILL)
            assert await waiting is None, "timed out: nothing more was published"
            assert await ring.read_async(timeout=0.1) is None
            no_registration(ring)

    asyncio.run(asyncio.wait_for(main(), 60))
    p.join(30)
    assert p.exitcode == -signal.SIGKILL


def test_fileno_with_plain_selectors(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemoryRing.create(shm_path, 4096) as ring, selectors.DefaultSelector() as sel:
        assert ring.fileno() != ring.fileno(writable=True)
        sel.register(ring, selectors.EVENT_READ)
        assert ring.arm() is False, "empty: armed"
        assert sel.select(timeout=0) == []
        p = start(ctx, produce_ring, shm_path, 3, 1)
        got: list[bytes] = []
        while len(got) < 3:
            events = sel.select(timeout=60)
            assert events and events[0][0].fileobj is ring
            while (m := ring.read()) is not None:
                got.append(m)
            ring.arm()
        finish(p)
        assert seqs(got) == [0, 1, 2]
        assert ring.arm() is False and sel.select(timeout=0) == []
        # Data already there: arm says so, and the descriptor is readable too.
        assert ring.write(b"x")
        assert ring.arm() is True
        assert len(sel.select(timeout=0)) == 1
        # The writable side: a full ring becomes writable when read.
        while ring.write(b"y" * 500):
            pass
        assert ring.arm(writable=True, size=500) is False
        wsel = selectors.DefaultSelector()
        wsel.register(ring.fileno(writable=True), selectors.EVENT_READ)
        assert wsel.select(timeout=0) == []
        assert ring.read() == b"x"
        assert wsel.select(timeout=0) == [], "16 bytes freed: still no room for 500"
        assert ring.read() == b"y" * 500
        assert len(wsel.select(timeout=60)) == 1
        wsel.close()


def test_close_wakes_an_await_with_value_error(shm_path: str) -> None:
    async def main() -> None:
        ring = SharedMemoryRing.create(shm_path, 4096)
        task = asyncio.ensure_future(ring.read_async())
        await asyncio.sleep(0.05)
        ring.close()
        with pytest.raises(ValueError, match="closed"):
            await task

    asyncio.run(asyncio.wait_for(main(), 60))


def test_write_async_waits_for_room(shm_path: str, run: Callable[[Awaitable[Any]], Any]) -> None:
    async def main() -> None:
        with SharedMemoryRing.create(shm_path, 4096) as ring:
            n = 0
            while ring.write(SEQ.pack(n)):
                n += 1
            assert await ring.write_async(SEQ.pack(n), timeout=0.05) is False, "full: timed out"
            writer = asyncio.ensure_future(ring.write_async(SEQ.pack(n), timeout=60))
            await asyncio.sleep(0.05)
            assert not writer.done()
            assert ring.read() == SEQ.pack(0)
            assert await writer is True
            no_registration(ring)

    run(main())


def test_an_event_loop_in_a_forked_or_spawned_child(ctx: mp.context.BaseContext, shm_path: str) -> None:
    # The parent's waiter thread exists before the child starts (it does not survive fork).
    SharedMemoryRing.create(shm_path, 4096).close()
    with SharedMemoryRing.open(shm_path) as mine:

        async def arm_once() -> None:
            assert await mine.read_async(timeout=0.05) is None

        asyncio.run(arm_once())
        assert ready_threads() >= 1
        c = start(ctx, consume_async_ring, shm_path, 20_000)
        produce_ring(shm_path, 20_000, 50)
        finish(c)


def test_the_thread_per_channel_fallback(ctx: mp.context.BaseContext, tmp_path: Path) -> None:
    paths = [str(tmp_path / f"ring{i}") for i in range(10)]
    for p in paths:
        SharedMemoryRing.create(p, 4096).close()
    ready = str(tmp_path / "ready")
    c = start(ctx, fallback_many, paths, 1000, ready)
    while not os.path.exists(ready):
        assert c.is_alive()
        time.sleep(0.01)
    produce_many(paths, 1000)
    finish(c)


def test_an_idle_loop_awaiting_one_hundred_channels_uses_no_cpu(tmp_path: Path) -> None:
    rings = [SharedMemoryRing.create(str(tmp_path / f"r{i}"), 4096) for i in range(100)]

    async def main() -> float:
        tasks = [asyncio.ensure_future(r.read_async()) for r in rings]
        await asyncio.sleep(0.2)  # all armed
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        await asyncio.sleep(5)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - t0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        return cpu / wall

    share = asyncio.run(main())
    for r in rings:
        no_registration(r)
        r.close()
    assert share < 0.01, f"{share:.2%} of a CPU while idle"


def test_typed_channels_recv_async_and_batches(ctx: mp.context.BaseContext, shm_path: str) -> None:
    from mmapipc.typed import TypedQueue, TypedRing

    from aio_helpers import produce_typed_ticks
    from typed_helpers import TICK_V1

    n = 3000
    for kind in ("ring", "queue"):
        ch = TypedRing.create(shm_path, 4096, TICK_V1) if kind == "ring" else TypedQueue.create(shm_path, 4096, TICK_V1)
        p = start(ctx, produce_typed_ticks, shm_path, kind, n)

        async def consume() -> list[int]:
            got: list[int] = []
            async for rec in ch:
                got.append(int(rec.timestamp_ns))
                if len(got) == n // 2:
                    break
            del rec  # a queue record holds its slot while it lives
            while len(got) < n:
                batch = await ch.recv_batch_async(64)
                assert len(batch) > 0
                got += [int(t) for t in batch["timestamp_ns"]]
                del batch  # its slots are reused by the next receive
            assert await ch.recv_async(timeout=0.05) is None
            return got

        assert asyncio.run(asyncio.wait_for(consume(), 120)) == list(range(n)), kind
        finish(p)
        no_registration(ch._bytes)
        ch.close()
        os.unlink(shm_path)
