"""Process bodies for tests/test_queue.py (importable by spawn children)."""

from __future__ import annotations

import os
import struct
import time

from mmapipc import SharedMemoryQueue

HDR = struct.Struct("<IQ")  # producer id, sequence number


PATTERN = bytes(range(256)) * 300  # payloads are slices of it: cheap to make and to check


def make(pid: int, seq: int, size: int = 0) -> bytes:
    body = HDR.pack(pid, seq)
    if size:
        body += PATTERN[seq % 256 : seq % 256 + size]
    return body


def parse(m: bytes) -> tuple[int, int]:
    p, s = HDR.unpack_from(m)
    size = len(m) - HDR.size
    if size:
        assert m[HDR.size :] == PATTERN[s % 256 : s % 256 + size], "torn message"
    return p, s


def producer(path: str, pid: int, n: int, batch: int = 0) -> None:
    with SharedMemoryQueue.open(path) as q:
        if batch:
            for start in range(0, n, batch):
                msgs = [make(pid, s) for s in range(start, min(n, start + batch))]
                assert q.put_batch(msgs) == len(msgs)
        else:
            for s in range(n):
                q.put(make(pid, s))


STOP = b"STOP"


def consumer(path: str, out, mode: str) -> None:
    """Consumes until it receives STOP; reports (producer, seq) pairs in arrival order."""
    got: list[tuple[int, int]] = []
    with SharedMemoryQueue.open(path) as q:
        while True:
            if mode == "batch":
                msgs = q.get_batch(64, timeout=0.5)
            elif mode == "view":
                views = q.get_view(timeout=0.5, max_count=32)
                msgs = [bytes(v) for v in views] if views else []
                if views:
                    q.release(views)
            else:
                m = q.get(timeout=0.5)
                msgs = [m] if m is not None else []
            stops = 0
            for m in msgs:
                if m == STOP:
                    stops += 1  # STOPs come after every producer message
                else:
                    got.append(parse(m))
            if stops:
                if stops > 1:  # a batch took another consumer's STOP: hand it back
                    q.put_batch([STOP] * (stops - 1))
                break
    out.put(got)


def victim_putter(path: str, batch: int, size: int) -> None:
    with SharedMemoryQueue.open(path) as q:
        s = 0
        while True:
            if batch:
                q.put_batch([make(99, s + i, size) for i in range(batch)])
                s += batch
            else:
                q.put(make(99, s, size))
                s += 1


def victim_viewer(path: str, wfd: int) -> None:
    with SharedMemoryQueue.open(path) as q:
        held = []
        while True:
            views = q.get_view(timeout=0.05, max_count=8)
            if not views:
                continue
            seqs = [parse(bytes(v))[1] for v in views]
            os.write(wfd, struct.pack(f"<{len(seqs)}Q", *seqs))
            held.append(views)
            if len(held) > 3:
                q.release(held.pop(0))


def blocked_getter(path: str) -> None:
    with SharedMemoryQueue.open(path) as q:
        try:
            q.get(block=True)
        except KeyboardInterrupt:
            os._exit(42)
        os._exit(1)


def sleeper(seconds: float) -> None:
    time.sleep(seconds)


def hold_lock_and_hang(path: str, file_offset: int) -> None:
    """Takes a queue lock the way the library does (the owner word: pid << 32 | start time | 1),
    writing it straight into the mapping (the test keeps the queue quiescent), then hangs."""
    import mmap

    with open(f"/proc/{os.getpid()}/stat", "rb") as f:
        stat = f.read()
    start = int(stat[stat.rindex(b")") + 2 :].split()[19])
    word = (os.getpid() << 32) | ((start & 0xFFFFFFFF) | 1)
    with open(path, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        assert struct.unpack_from("<Q", m, file_offset)[0] == 0
        struct.pack_into("<Q", m, file_offset, word)
    os.write(1, b"held\n")
    while True:
        time.sleep(1)


def produce_frames(path: str, count: int, size: int) -> None:
    """Puts ``count`` frames of ``size`` bytes whose bytes depend on index and position."""
    import numpy as np

    base = (np.arange(size, dtype=np.uint32) * 7) & 0xFF
    with SharedMemoryQueue.open(path) as q:
        for i in range(count):
            assert q.put(((base + i) & 0xFF).astype(np.uint8), timeout=60)
