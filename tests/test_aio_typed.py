"""asyncio on the send side of typed channels: ``send_async`` and ``send_batch_async`` on a
TypedRing, a TypedQueue and a TypedTopic.

Real processes on real shared memory, under fork and spawn (the ``ctx`` fixture). Ticks are
numbered (tick i: timestamp i, price i/2, size i, side i % 2), so order and contents are one
comparison; a cancellation storm counts what was sent against what arrived.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from aio_typed_helpers import STOP, drain_paced, send_async_ticks, tick_fields
from mmapipc import Error, _aio
from mmapipc._mmapipc import ready_armed

np = pytest.importorskip("numpy")

from mmapipc.typed import TypedQueue, TypedRing, TypedTopic  # noqa: E402

from typed_helpers import TICK_V1, ticks  # noqa: E402

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
KINDS = ["ring", "queue", "topic"]
WAIT = 60.0  # generous: a loaded 2-core machine


def create(kind: str, path: str, capacity: int = 4096) -> Any:
    cls = {"ring": TypedRing, "queue": TypedQueue, "topic": TypedTopic}[kind]
    return cls.create(path, capacity, TICK_V1)


def start(ctx: mp.context.BaseContext, target: Any, *args: Any) -> Any:
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


def wait_for_file(path: str, p: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not os.path.exists(path):
        assert p.is_alive(), f"the child exited ({p.exitcode}) before creating {path}"
        assert time.monotonic() < deadline, f"no {path} after {WAIT} s"
        time.sleep(0.01)


def no_registration(h: Any) -> None:
    assert not ready_armed(h) and not ready_armed(h, True), "a registration was left behind"
    assert not _aio._waiting, f"readers left behind: {_aio._waiting}"


def content(rec: Any) -> tuple[int, float, int, int, bytes]:
    return (int(rec.timestamp_ns), float(rec.price), int(rec.size), int(rec.side), bytes(rec.symbol))


def expected(n: int) -> list[tuple[int, float, int, int, bytes]]:
    return [(i, i / 2, i, i % 2, b"SYM\0\0\0\0\0") for i in range(n)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_producer_process_awaits_room_in_a_full_channel_that_this_process_drains(
    ctx: mp.context.BaseContext, tmp_path: Path, kind: str
) -> None:
    path, waited = str(tmp_path / "ch"), str(tmp_path / "waited")
    n = 3000
    ch = create(kind, path)
    rx = ch.subscribe() if kind == "topic" else ch
    p = start(ctx, send_async_ticks, path, kind, n, waited)
    # Nothing is taken until the producer has found the channel full and awaits room.
    wait_for_file(waited, p)
    got = []
    while len(got) < n:
        rec = rx.recv(timeout=WAIT)
        assert rec is not None, f"timed out after {len(got)} records"
        got.append(content(rec))
        del rec  # a queue record holds its slot while it lives
    finish(p)
    assert got == expected(n)
    assert rx.recv(timeout=0.1) is None, "nothing more was sent"
    no_registration(ch._bytes)
    rx.close()
    if rx is not ch:
        ch.close()


@pytest.mark.parametrize("kind", KINDS)
def test_cancelled_send_async_sends_each_record_once(ctx: mp.context.BaseContext, tmp_path: Path, kind: str) -> None:
    path, ready, out = str(tmp_path / "ch"), str(tmp_path / "ready"), str(tmp_path / "out.json")
    ch = create(kind, path)
    # The consumer pauses after each record: the channel is full most of the time.
    p = start(ctx, drain_paced, path, kind, ready, out, 0.0003)
    wait_for_file(ready, p)  # (a topic: its subscription exists before the first record)
    recs = ticks(ch.dtype, 0, 100_000)
    rng = random.Random(11)

    async def storm() -> tuple[int, int]:
        sent = cancelled = 0
        # Each tick is sent under tiny timeouts until one send returns True: a cancelled send
        # that had written its record would show up twice, one that lost it not at all.
        while cancelled < 1000 or sent < 1000:
            assert sent < len(recs), f"only {cancelled} cancellations in {sent} sends"
            try:
                ok = await asyncio.wait_for(ch.send_async(recs[sent]), rng.uniform(0, 0.0004))
            except asyncio.TimeoutError:
                cancelled += 1
                continue
            assert ok is True
            sent += 1
        no_registration(ch._bytes)
        stop = dict(tick_fields(0), timestamp_ns=STOP)
        assert await ch.send_async(stop, timeout=WAIT)
        return sent, cancelled

    sent, cancelled = asyncio.run(asyncio.wait_for(storm(), 300))
    finish(p)
    with open(out) as f:
        got = json.load(f)
    assert len(got) == sent, (len(got), sent)
    assert got == list(range(sent)), "lost, duplicated or reordered"
    assert cancelled >= 1000
    ch.close()


def test_a_cancelled_pending_send_async_sends_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        with TypedRing.create(str(tmp_path / "r"), 4096, TICK_V1) as ring:
            recs = ticks(ring.dtype, 0, 1000)
            n = 0
            while ring.send(recs[n], block=False):
                n += 1
            task = asyncio.ensure_future(ring.send_async(recs[n]))
            await asyncio.sleep(0.05)
            assert not task.done(), "the ring is full and nobody reads"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            no_registration(ring._bytes)
            got = []
            while (rec := ring.recv(block=False)) is not None:
                got.append(int(rec.timestamp_ns))
            assert got == list(range(n)), "the cancelled record was not sent"
            assert await ring.send_async(recs[n], timeout=WAIT)
            assert int(ring.recv(block=False).timestamp_ns) == n  # type: ignore[union-attr]

    asyncio.run(asyncio.wait_for(main(), WAIT))


@pytest.mark.parametrize("kind", ["ring", "queue"])
def test_send_batch_async_waits_for_room_and_times_out_with_the_count(tmp_path: Path, kind: str) -> None:
    async def main() -> None:
        ch = create(kind, str(tmp_path / "ch"))
        recs = ticks(ch.dtype, 0, 1000)
        n = 0
        while ch.send(recs[n], block=False):
            n += 1
        assert await ch.send_batch_async(recs[n : n + 10], timeout=0.05) == 0, "full: nothing sent"
        assert await ch.send_async(recs[n], timeout=0.05) is False
        assert await ch.send_batch_async(recs[:0]) == 0
        pending = asyncio.ensure_future(ch.send_batch_async(recs[n : n + 10], timeout=WAIT))
        got: list[int] = []
        while not pending.done() or len(got) < n + 10:
            arr = ch.recv_batch(64, block=False)
            got += [int(t) for t in arr["timestamp_ns"]]
            del arr  # its slots are reused by the next receive
            await asyncio.sleep(0.001)
        assert await pending == 10
        assert got == list(range(n + 10))
        no_registration(ch._bytes)
        ch.close()

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_send_async_follows_the_sync_send(tmp_path: Path) -> None:
    async def main() -> None:
        # Variable-size records: send_async measures them; send_batch_async refuses them, as
        # send_batch does.
        with TypedRing.create(str(tmp_path / "f"), 1 << 16, SCHEMAS / "video" / "frame.v1.json") as frames:
            pixels = np.arange(300, dtype=np.uint8)
            head = {"seq": 7, "timestamp_ns": 1, "width": 10, "height": 10, "stride": 30, "pixel_format": 1}
            assert await frames.send_async(head, pixels=pixels)
            rec = frames.recv(block=False)
            assert rec is not None and int(rec.seq) == 7 and np.array_equal(np.asarray(rec.pixels), pixels)
            del rec
            with pytest.raises(TypeError, match="variable-size"):
                await frames.send_batch_async(np.zeros(2, dtype=frames.dtype))
            with pytest.raises(TypeError, match="no field"):
                await frames.send_async(head, pixels=pixels, colour=1)
        # An older version's handle may read, not write.
        TypedRing.create(str(tmp_path / "v2"), 4096, SCHEMAS / "market" / "tick.v2.json").close()
        with TypedRing.open(str(tmp_path / "v2"), TICK_V1) as old:
            with pytest.raises(Error, match="only a v2 producer"):
                await old.send_async(tick_fields(1))
            with pytest.raises(Error, match="only a v2 producer"):
                await old.send_batch_async(ticks(old.dtype, 0, 2))
        # A subscription receives; the topic sends.
        with TypedTopic.create(str(tmp_path / "t"), 4096, TICK_V1) as topic, topic.subscribe() as sub:
            with pytest.raises(TypeError, match="send on the TypedTopic"):
                await sub.send_async(tick_fields(1))
            assert await topic.send_async(tick_fields(3))
            assert await topic.send_batch_async(ticks(topic.dtype, 4, 2)) == 2
            got = sub.recv_batch(8, block=False)
            assert [int(t) for t in got["timestamp_ns"]] == [3, 4, 5]
            del got

    asyncio.run(asyncio.wait_for(main(), WAIT))
