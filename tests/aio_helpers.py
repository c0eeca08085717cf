"""Child-process entry points for tests/test_aio.py (importable, so they work under spawn)."""

from __future__ import annotations

import asyncio
import os
import struct
import time

from mmapipc import SharedMemoryQueue, SharedMemoryRing

SEQ = struct.Struct("<Q")


def produce_ring(path: str, total: int, batch: int) -> None:
    """Writes sequence numbers 0..total in batches (blocking writes)."""
    with SharedMemoryRing.open(path) as ring:
        for start in range(0, total, batch):
            msgs = [SEQ.pack(i) for i in range(start, min(start + batch, total))]
            assert ring.write_batch(msgs, block=True, timeout=60) == len(msgs)


def produce_paced(path: str, kind: str, total: int, pause: float) -> None:
    """Writes 0..total one at a time, pausing between writes (so readers wait often)."""
    if kind == "ring":
        with SharedMemoryRing.open(path) as ring:
            for i in range(total):
                assert ring.write(SEQ.pack(i), block=True, timeout=60)
                time.sleep(pause)
    else:
        with SharedMemoryQueue.open(path) as q:
            for i in range(total):
                assert q.put(SEQ.pack(i), timeout=60)
                time.sleep(pause)


def produce_until(path: str, kind: str, pause: float, stop: str, count_file: str) -> None:
    """Writes 0, 1, ... one at a time with pauses until the file `stop` exists, then writes how
    many it wrote to `count_file`."""
    h = SharedMemoryRing.open(path) if kind == "ring" else SharedMemoryQueue.open(path)
    n = 0
    with h:
        while not os.path.exists(stop):
            if isinstance(h, SharedMemoryRing):
                assert h.write(SEQ.pack(n), block=True, timeout=60)
            else:
                assert h.put(SEQ.pack(n), timeout=60)
            n += 1
            time.sleep(pause)
    with open(count_file + ".tmp", "w") as f:
        f.write(str(n))
    os.rename(count_file + ".tmp", count_file)


def produce_many(paths: list[str], count: int) -> None:
    """Writes 0..count to each ring of `paths`, round robin, with short pauses."""
    rings = [SharedMemoryRing.open(p) for p in paths]
    for i in range(count):
        for r in rings:
            assert r.write(SEQ.pack(i), block=True, timeout=60)
        if i % 10 == 0:
            time.sleep(0.001)
    for r in rings:
        r.close()


def produce_then_hang(path: str, count: int, ready: str) -> None:
    """Writes `count` messages, creates the file `ready`, then sleeps until killed."""
    with SharedMemoryRing.open(path) as ring:
        for i in range(count):
            assert ring.write(SEQ.pack(i), block=True, timeout=60)
        open(ready, "w").close()
        time.sleep(3600)


def put_async_queue(path: str, total: int) -> None:
    """An asyncio producer: `put_async` of 0..total into a small queue (it fills up often)."""

    async def main() -> None:
        with SharedMemoryQueue.open(path) as q:
            for i in range(total):
                assert await q.put_async(SEQ.pack(i), timeout=60)

    asyncio.run(main())


def consume_async_ring(path: str, total: int) -> None:
    """An asyncio consumer in a child: `async for` over the ring, checking order."""

    async def main() -> None:
        with SharedMemoryRing.open(path) as ring:
            n = 0
            async for m in ring:
                assert SEQ.unpack(m)[0] == n
                n += 1
                if n == total:
                    break

    asyncio.run(asyncio.wait_for(main(), 120))


def fallback_many(paths: list[str], count: int, ready: str) -> None:
    """Awaits every ring of `paths` with the thread-per-watch fallback (no futex_waitv);
    creates the file `ready` once every ring is awaited."""
    os.environ["MMAPIPC_NO_FUTEX_WAITV"] = "1"
    from mmapipc._mmapipc import ready_threads

    async def one(r: SharedMemoryRing) -> None:
        for i in range(count):
            m = await r.read_async(timeout=60)
            assert m is not None and SEQ.unpack(m)[0] == i

    async def main() -> int:
        rings = [SharedMemoryRing.open(p) for p in paths]
        tasks = [asyncio.ensure_future(one(r)) for r in rings]
        await asyncio.sleep(0.2)
        threads = ready_threads()
        open(ready, "w").close()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        return threads

    threads = asyncio.run(main())
    # One thread per channel awaited at once (nothing was written before `ready`).
    assert threads == len(paths), threads


def produce_typed_ticks(path: str, kind: str, n: int) -> None:
    """Sends ticks 0..n, one record at a time, into a typed ring or queue."""
    from mmapipc.typed import TypedQueue, TypedRing

    from typed_helpers import TICK_V1, ticks

    ch = TypedRing.open(path, TICK_V1) if kind == "ring" else TypedQueue.open(path, TICK_V1)
    with ch:
        recs = ticks(ch.dtype, 0, n)
        for r in recs:
            assert ch.send(r, timeout=60)
