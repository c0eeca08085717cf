"""Streaming demo: one producer process, one consumer process, a SharedMemoryRing between them.

This is the original README's example, made runnable: the producer writes 1000 messages, the
consumer reads until no message arrives for one second, then reports what it received.

    python examples/ring_buffer_example.py
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile

from mmapipc import SharedMemoryRing

COUNT = 1000


def producer(path: str) -> None:
    with SharedMemoryRing.open(path) as ring:
        for i in range(COUNT):
            ring.write(f"Message {i}".encode(), block=True)
    print(f"producer: wrote {COUNT} messages")


def consumer(path: str, results: mp.Queue) -> None:  # type: ignore[type-arg]
    received = 0
    first = last = None
    with SharedMemoryRing.open(path) as ring:
        while True:
            data = ring.read(block=True, timeout=1.0)
            if data is None:  # nothing for a second: the producer is done
                break
            if data != f"Message {received}".encode():
                raise RuntimeError(f"out of order: got {data!r} as message {received}")
            if first is None:
                first = data
            last = data
            received += 1
    print(f"consumer: received {received} messages, first={first!r}, last={last!r}")
    results.put(received)


def main() -> None:
    path = os.path.join(tempfile.gettempdir(), f"mmapipc-ring-example-{os.getpid()}")
    # Create the ring; leaving the block closes this handle but keeps the file.
    with SharedMemoryRing.create(path, capacity=1024 * 1024) as ring:
        print(f"created {ring!r}")
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [
        mp.Process(target=consumer, args=(path, results)),
        mp.Process(target=producer, args=(path,)),
    ]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        received = results.get(timeout=5)
        print(f"done: {received}/{COUNT} messages delivered in order through {path}")
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        SharedMemoryRing.open(path).unlink()


if __name__ == "__main__":
    main()
