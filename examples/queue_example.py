"""Worker pool demo (the original README's SharedMemoryQueue example), self-terminating.

A parent creates a queue and fills it with 100 tasks; four worker processes take tasks until
the queue stays empty for a while, then report how many they processed.

    python examples/queue_example.py
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time

from mmapipc import SharedMemoryQueue


def process_task(worker_id: int, task: bytes) -> None:
    # Stand-in for real work (a few milliseconds, so the pool shares the tasks).
    time.sleep(0.005)
    _ = sum(task)


def worker(worker_id: int, path: str, results: "mp.Queue[tuple[int, int]]") -> None:
    done = 0
    with SharedMemoryQueue.open(path) as queue:
        while True:
            task = queue.get(block=True, timeout=0.5)
            if task is None:  # nothing for 0.5 s: the pool is done
                break
            process_task(worker_id, task)
            done += 1
    results.put((worker_id, done))


def main() -> None:
    path = os.path.join(tempfile.gettempdir(), f"mmapipc-queue-example-{os.getpid()}")
    # Create and populate the queue.
    with SharedMemoryQueue.create(path, capacity=1024 * 1024) as queue:
        for i in range(100):
            queue.put(f"Task {i}".encode())
        print(f"created {queue!r} with {queue.qsize()} tasks")
        # Start workers.
        results: mp.Queue[tuple[int, int]] = mp.Queue()
        workers = [mp.Process(target=worker, args=(i, path, results)) for i in range(4)]
        for w in workers:
            w.start()
        counts = dict(results.get(timeout=60) for _ in workers)
        for w in workers:
            w.join()
        for wid in sorted(counts):
            print(f"worker {wid} processed {counts[wid]} tasks")
        print(f"total processed: {sum(counts.values())}, left in queue: {queue.qsize()}")
        assert sum(counts.values()) == 100
        queue.unlink()


if __name__ == "__main__":
    main()
