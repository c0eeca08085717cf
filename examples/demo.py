"""The main demo: processes exchanging data through mmapipc, three ways.

1. A ring: a producer process streams 1,000,000 small messages to a consumer process, which
   checks every one (in order, none lost).
2. A queue: a parent hands 2,000 tasks to four worker processes; each task is done exactly once.
3. Typed records: a producer process sends market ticks; the consumer reads them in batches as
   one NumPy structured array over the shared memory (no copy) and computes a VWAP.

Run with ``make demo`` (or ``python examples/demo.py`` once the package is installed).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from mmapipc import SharedMemoryQueue, SharedMemoryRing

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 1_000_000
TASKS = 2_000
TICKS = 200_000


# --- 1. ring -------------------------------------------------------------------------------


def ring_producer(path: str) -> None:
    with SharedMemoryRing.open(path) as ring:
        batch: list[bytes] = []
        for i in range(MESSAGES):
            batch.append(struct.pack("<Q", i) + b"payload-" * 6)
            if len(batch) == 256 or i == MESSAGES - 1:
                sent = 0
                while sent < len(batch):
                    sent += ring.write_batch(batch[sent:], block=True, timeout=5.0)
                batch.clear()


def ring_demo(d: str) -> None:
    path = os.path.join(d, "ring")
    with SharedMemoryRing.create(path, capacity=1 << 20) as ring:
        child = mp.get_context("spawn").Process(target=ring_producer, args=(path,))
        child.start()
        start = time.perf_counter()
        expect = 0
        while expect < MESSAGES:
            for msg in ring.read_batch(4096, block=True, timeout=5.0):
                (seq,) = struct.unpack_from("<Q", msg)
                if seq != expect:
                    raise SystemExit(f"ring: expected message {expect}, got {seq}")
                expect += 1
        elapsed = time.perf_counter() - start
        child.join()
        ring.unlink()
    print(f"1. ring:   {MESSAGES:,} messages of 56 B from pid {child.pid}, all in order, "
          f"in {elapsed:.2f} s ({MESSAGES / elapsed / 1e6:.1f} M msg/s)")


# --- 2. queue ------------------------------------------------------------------------------


def worker(path: str, results: Any) -> None:
    done: list[int] = []
    with SharedMemoryQueue.open(path) as q:
        while True:
            task = q.get(block=True, timeout=1.0)
            if task is None:
                break
            done.append(int(task.decode().split()[1]))
            time.sleep(0.001)  # stand-in for real work, so the workers share the tasks
    results.put((os.getpid(), done))


def queue_demo(d: str) -> None:
    path = os.path.join(d, "queue")
    ctx = mp.get_context("spawn")
    results: Any = ctx.Queue()
    with SharedMemoryQueue.create(path, capacity=1 << 20) as q:
        workers = [ctx.Process(target=worker, args=(path, results)) for _ in range(4)]
        for w in workers:
            w.start()
        q.put_batch([f"task {i}".encode() for i in range(TASKS)])
        per_worker = [results.get(timeout=60) for _ in workers]
        for w in workers:
            w.join()
        q.unlink()
    seen = sorted(t for _, tasks in per_worker for t in tasks)
    if seen != list(range(TASKS)):
        raise SystemExit("queue: a task was lost or done twice")
    counts = ", ".join(str(len(tasks)) for _, tasks in per_worker)
    print(f"2. queue:  {TASKS:,} tasks shared by 4 worker processes ({counts}), each done exactly once")


# --- 3. typed records ----------------------------------------------------------------------


def tick_producer(path: str) -> None:
    import numpy as np

    from mmapipc.typed import TypedRing

    rng = np.random.default_rng(7)
    with TypedRing.open(path) as ring:
        price = 100.0
        for i in range(TICKS):
            price += rng.normal(0, 0.05)
            ring.send(timestamp_ns=i, symbol=np.frombuffer(b"ACME\0\0\0\0", np.uint8), price=price,
                      size=int(rng.integers(1, 100)), side=i % 2, timeout=5.0)


def typed_demo(d: str) -> None:
    try:
        import numpy as np  # noqa: F401
    except ImportError:
        print("3. typed:  skipped (numpy is not installed)")
        return
    from mmapipc.typed import TypedRing

    path = os.path.join(d, "ticks")
    with TypedRing.create(path, 1 << 20, ROOT / "schemas" / "market" / "tick.v1.json") as ring:
        child = mp.get_context("spawn").Process(target=tick_producer, args=(path,))
        child.start()
        notional = volume = 0.0
        n = 0
        while n < TICKS:
            ticks = ring.recv_batch(4096, block=True, timeout=10.0)
            if ticks.size == 0:
                raise SystemExit("typed: no ticks for 10 s")
            notional += float((ticks["price"] * ticks["size"]).sum())
            volume += float(ticks["size"].sum())
            n += ticks.size
            del ticks  # the batch is a view of the ring's slots
        child.join()
        label = ring.schema.label
        ring.unlink()
    print(f"3. typed:  {n:,} {label} records read as NumPy structured arrays in place; VWAP {notional / volume:.4f}")


def main() -> None:
    d = tempfile.mkdtemp(prefix="mmapipc-demo-")
    ring_demo(d)
    queue_demo(d)
    typed_demo(d)


if __name__ == "__main__":
    main()
