"""asyncio on topics: ``await sub.recv_async()``, ``async for msg in sub``, batches, typed
subscriptions, ``sub.fileno()`` with selectors, and ``publish_async`` on a block-mode topic.
Publishers run in other processes (fork and spawn, through the ``ctx`` fixture)."""

from __future__ import annotations

import asyncio
import os
import random
import selectors
import signal
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from mmapipc import SharedMemoryTopic, _aio
from mmapipc._mmapipc import ready_armed

N = 100_000
TICK_V1 = Path(__file__).resolve().parent.parent / "schemas" / "market/tick.v1.json"
WAIT = 60.0  # generous: a loaded 2-core machine


def _publish_seq(path: str, n: int, start_flag: str) -> None:
    t = SharedMemoryTopic.open(path)
    # Wait until both subscribers are there (a block-mode topic then waits for the slowest).
    while not os.path.exists(start_flag):
        pass
    for i in range(n):
        t.publish(struct.pack("<Q", i))
    t.close()


def _publish_then_hang(path: str, n: int) -> None:
    t = SharedMemoryTopic.open(path)
    for i in range(n):
        t.publish(struct.pack("<Q", i))
    signal.pause()


def test_two_async_subscribers_read_everything_in_order(ctx: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "t")
    flag = str(tmp_path / "go")
    topic = SharedMemoryTopic.create(path, 1 << 16)
    a = topic.subscribe()
    b = topic.subscribe()
    p = ctx.Process(target=_publish_seq, args=(path, N, flag))
    p.start()

    async def reader(sub: Any, batches: bool) -> list[int]:
        got: list[int] = []
        while len(got) < N:
            if batches:
                msgs = await sub.recv_batch_async(64, timeout=WAIT)
                assert msgs, "timed out"
                got.extend(struct.unpack("<Q", m)[0] for m in msgs)
            else:
                m = await sub.recv_async(timeout=WAIT)
                assert m is not None, "timed out"
                got.append(struct.unpack("<Q", m)[0])
        return got

    async def main() -> tuple[list[int], list[int]]:
        open(flag, "w").close()
        ra, rb = await asyncio.gather(reader(a, False), reader(b, True))
        return ra, rb

    ra, rb = asyncio.run(main())
    p.join(WAIT)
    assert p.exitcode == 0
    assert ra == list(range(N))
    assert rb == list(range(N))
    a.close()
    b.close()
    topic.close()


def test_async_for_ends_when_closed(tmp_path: Any) -> None:
    topic = SharedMemoryTopic.create(str(tmp_path / "t"), 1 << 12)
    sub = topic.subscribe()
    for i in range(3):
        topic.publish(bytes([i]))

    async def main() -> list[bytes]:
        got: list[bytes] = []
        async for m in sub:
            got.append(m)
            if len(got) == 3:
                asyncio.get_running_loop().call_later(0.05, sub.close)
        return got

    assert asyncio.run(main()) == [b"\x00", b"\x01", b"\x02"]
    topic.close()


def _publish_until(path: str, pause: float, stop: str, count_file: str) -> None:
    t = SharedMemoryTopic.open(path)
    i = 0
    while not os.path.exists(stop):
        t.publish(struct.pack("<Q", i))
        i += 1
        time.sleep(pause)
    with open(count_file + ".tmp", "w") as f:
        f.write(str(i))
    os.rename(count_file + ".tmp", count_file)
    t.close()


def no_registration(h: Any) -> None:
    assert not ready_armed(h), "a registration was left behind"
    assert not _aio._waiting, f"readers left behind: {_aio._waiting}"


def test_cancellation_storm_loses_and_duplicates_nothing(ctx: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "t")
    stop, count_file = str(tmp_path / "stop"), str(tmp_path / "count")
    topic = SharedMemoryTopic.create(path, 1 << 14)
    sub = topic.subscribe()
    p = ctx.Process(target=_publish_until, args=(path, 0.0003, stop, count_file))
    p.start()
    rng = random.Random(7)

    async def storm() -> tuple[list[int], int]:
        got: list[int] = []
        cancelled = 0
        # Thousands of awaits cancelled by tiny timeouts while the publisher runs.
        while cancelled < 2000 or len(got) < 1000:
            try:
                m = await asyncio.wait_for(sub.recv_async(), rng.uniform(0, 0.0004))
            except asyncio.TimeoutError:
                cancelled += 1
                continue
            assert m is not None
            got.append(struct.unpack("<Q", m)[0])
        open(stop, "w").close()
        while not os.path.exists(count_file):
            await asyncio.sleep(0.01)
        # Then the rest of what was published, and nothing more.
        while (m := await sub.recv_async(timeout=0.2)) is not None:
            got.append(struct.unpack("<Q", m)[0])
        return got, cancelled

    got, cancelled = asyncio.run(storm())
    p.join(WAIT)
    assert p.exitcode == 0
    with open(count_file) as f:
        written = int(f.read())
    assert got == list(range(written))
    assert cancelled >= 2000
    no_registration(sub)
    sub.close()
    topic.close()


def test_killed_publisher_await_times_out(ctx: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "t")
    topic = SharedMemoryTopic.create(path, 1 << 12)
    sub = topic.subscribe()
    p = ctx.Process(target=_publish_then_hang, args=(path, 5))
    p.start()

    async def main() -> None:
        got = [await sub.recv_async(timeout=WAIT) for _ in range(5)]
        assert [struct.unpack("<Q", m)[0] for m in got if m is not None] == list(range(5))
        waiting = asyncio.ensure_future(sub.recv_async(timeout=2.0))
        await asyncio.sleep(0.2)
        os.kill(p.pid, signal.SIGKILL)
        assert await waiting is None, "timed out: nothing more was published"
        assert await sub.recv_async(timeout=0.1) is None

    asyncio.run(main())
    p.join(WAIT)
    no_registration(sub)
    sub.close()
    topic.close()


def test_selector_on_subscriber_fileno(ctx: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "t")
    topic = SharedMemoryTopic.create(path, 1 << 12)
    sub = topic.subscribe()
    assert sub.recv(block=False) is None
    assert sub.arm() is False  # nothing yet: registered
    sel = selectors.DefaultSelector()
    sel.register(sub.fileno(), selectors.EVENT_READ)
    assert sel.select(timeout=0) == []
    p = ctx.Process(target=_publish_then_hang, args=(path, 1))
    p.start()
    try:
        assert sel.select(timeout=WAIT), "the descriptor never became readable"
        assert sub.recv(block=False) == struct.pack("<Q", 0)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(WAIT)
    sel.close()
    sub.close()
    topic.close()


def _drain_slowly(path: str, n: int, flag: str) -> None:
    t = SharedMemoryTopic.open(path)
    sub = t.subscribe()
    open(flag, "w").close()
    for i in range(n):
        if i < 200:
            time.sleep(0.002)  # slow at first: the 1 KiB topic fills up
        m = sub.recv(timeout=WAIT)
        assert m == struct.pack("<Q", i), (i, m)
    sub.close()


def test_publish_async_waits_for_room(ctx: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "t")
    flag = str(tmp_path / "ready")
    n = 5_000
    topic = SharedMemoryTopic.create(path, 1 << 10, overflow="block")
    p = ctx.Process(target=_drain_slowly, args=(path, n, flag))
    p.start()

    async def main() -> int:
        while not os.path.exists(flag):
            await asyncio.sleep(0.01)
        waited = 0
        for i in range(n):
            data = struct.pack("<Q", i)
            if not topic.publish(data, block=False):
                waited += 1
                assert await topic.publish_async(data, timeout=WAIT), "timed out"
        return waited

    waited = asyncio.run(main())
    p.join(WAIT)
    assert p.exitcode == 0
    assert waited > 0  # the 1 KiB topic filled up: publish_async did wait
    topic.close()


def test_publish_async_times_out_with_a_stuck_subscriber(tmp_path: Any) -> None:
    topic = SharedMemoryTopic.create(str(tmp_path / "t"), 1 << 10, overflow="block")
    sub = topic.subscribe()
    while topic.publish(b"x" * 64, block=False):
        pass

    async def main() -> bool:
        return await topic.publish_async(b"x" * 64, timeout=0.2)

    assert asyncio.run(main()) is False
    assert sub.recv_batch(100, block=False)  # the subscriber catches up: room again
    assert asyncio.run(main()) is True
    sub.close()
    topic.close()


def test_typed_subscription_async(tmp_path: Any) -> None:
    np = pytest.importorskip("numpy")
    from mmapipc.typed import TypedTopic

    def tick(i: int) -> dict[str, Any]:
        return {"timestamp_ns": i, "symbol": np.frombuffer(b"SYM\0\0\0\0\0", np.uint8), "price": i / 2, "size": i, "side": i % 2}

    topic = TypedTopic.create(str(tmp_path / "t"), 1 << 14, TICK_V1)
    sub = topic.subscribe()

    async def main() -> list[int]:
        async def later() -> None:
            await asyncio.sleep(0.05)
            for i in range(10):
                assert topic.send(tick(i))

        task = asyncio.ensure_future(later())
        rec = await sub.recv_async(timeout=WAIT)
        assert rec is not None
        got = [int(rec.size)]
        while len(got) < 10:
            arr = await sub.recv_batch_async(16, timeout=WAIT)
            assert len(arr) > 0, "timed out"
            got.extend(int(x) for x in arr["size"])
            del arr  # its slots stay held while it lives
        await task
        return got

    assert asyncio.run(main()) == list(range(10))
    sub.close()
    topic.close()


def test_close_wakes_awaits_on_both_sides(tmp_path: Any) -> None:
    topic = SharedMemoryTopic.create(str(tmp_path / "t"), 1 << 10, overflow="block")
    sub = topic.subscribe()
    other = SharedMemoryTopic.open(str(tmp_path / "t")).subscribe()
    while topic.publish(b"x" * 64, block=False):
        pass
    while other.recv(block=False) is not None:
        pass

    async def main() -> None:
        pub = asyncio.ensure_future(topic.publish_async(b"x" * 64))
        rec = asyncio.ensure_future(other.recv_async())
        await asyncio.sleep(0.1)
        assert not pub.done() and not rec.done()
        topic.close()
        other.close()
        with pytest.raises(ValueError):
            await asyncio.wait_for(pub, WAIT)
        with pytest.raises(ValueError):
            await asyncio.wait_for(rec, WAIT)

    asyncio.run(main())
    sub.close()


_BUSY_SIDE = """
import asyncio, threading, time
from mmapipc import SharedMemoryTopic
topic = SharedMemoryTopic.create({path!r}, 1 << 16)
sub = topic.subscribe()
def hold() -> None:
    try:
        sub.recv(block=True, timeout=3.0)
    except ValueError:
        pass  # closed below
blocked = threading.Thread(target=hold)
blocked.start()
time.sleep(0.2)  # the thread is inside its blocking recv, holding the subscriber

async def main() -> None:
    ticks = 0
    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)
    t = asyncio.ensure_future(ticker())
    got = await sub.recv_async(timeout=0.5)
    t.cancel()
    assert got is None, got
    assert ticks >= 5, ticks
    print("ok", ticks)

asyncio.run(main())
sub.close()
blocked.join()
"""


def test_an_await_on_a_subscriber_busy_in_another_thread_keeps_the_loop_running(tmp_path: Any) -> None:
    # Another thread is inside a blocking recv on the same subscriber: the await must neither
    # stall the event loop nor ignore its timeout (it runs in a child so that a stall fails it).
    import subprocess
    import sys

    code = _BUSY_SIDE.format(path=str(tmp_path / "t"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.stdout, r.stderr)
