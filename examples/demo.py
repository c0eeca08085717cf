"""The main demo: two processes exchange data through shared memory.

Run with `make demo` (or `python examples/demo.py` once the package is installed).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time

from mmapipc import SharedMemory

ROUNDS = 100_000
SEQ = 0  # offset of the sequence word (aligned: an atomic Release/Acquire uint64)
ACK = 8  # offset of the consumer's acknowledgement word
PAYLOAD = 64


def consumer(path: str) -> None:
    total = 0
    with SharedMemory.open(path) as shm:
        for i in range(1, ROUNDS + 1):
            while shm.read_uint(SEQ) != i:  # wait for the producer's publish
                pass
            total += int.from_bytes(shm.read(PAYLOAD, 8), "little")
            shm.write_uint(ACK, i)
    print(f"consumer  pid {os.getpid()}: received {ROUNDS} values, sum {total}")


def main() -> None:
    path = os.path.join(tempfile.mkdtemp(prefix="mmapipc-demo-"), "region")
    with SharedMemory.create(path, size=4096) as shm:
        print(f"created {shm!r}")
        child = mp.get_context("spawn").Process(target=consumer, args=(path,))
        child.start()
        start = time.perf_counter()
        for i in range(1, ROUNDS + 1):
            shm.write(PAYLOAD, i.to_bytes(8, "little"))
            shm.write_uint(SEQ, i)  # publishes the payload write
            while shm.read_uint(ACK) != i:
                pass
        elapsed = time.perf_counter() - start
        child.join()
        print(f"producer  pid {os.getpid()}: sent {ROUNDS} values, expected sum {ROUNDS * (ROUNDS + 1) // 2}")
        print(f"{ROUNDS} round trips in {elapsed:.2f} s ({ROUNDS / elapsed:,.0f} per second)")
        shm.unlink()
    if child.exitcode != 0:
        raise SystemExit(f"consumer failed with exit code {child.exitcode}")


if __name__ == "__main__":
    main()
