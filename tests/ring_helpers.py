"""Child-process entry points for tests/test_ring.py (importable, so they work under spawn)."""

from __future__ import annotations

import os
import random
import struct
import zlib

from mmapipc import SharedMemoryRing

SEQ = struct.Struct("<Q")


def small_messages(start: int, count: int) -> list[bytes]:
    """Messages start..start+count, each its 8-byte little-endian sequence number."""
    return [SEQ.pack(i) for i in range(start, start + count)]


def produce_small(path: str, total: int, batch: int) -> None:
    with SharedMemoryRing.open(path) as ring:
        for start in range(0, total, batch):
            msgs = small_messages(start, min(batch, total - start))
            assert ring.write_batch(msgs, block=True, timeout=60) == len(msgs)


def random_payload(rng: random.Random, max_size: int) -> bytes:
    return rng.randbytes(rng.randrange(0, max_size + 1))


def produce_random(path: str, seed: int, count: int, max_size: int) -> None:
    rng = random.Random(seed)
    with SharedMemoryRing.open(path) as ring:
        for _ in range(count):
            assert ring.write(random_payload(rng, max_size), block=True, timeout=60)


def frame(i: int, size: int) -> bytes:
    """A frame whose every byte depends on its index and position (cheap to make and check)."""
    import numpy as np

    return ((np.arange(size, dtype=np.uint32) * 7 + i) & 0xFF).astype(np.uint8).tobytes()


def produce_frames(path: str, count: int, size: int) -> None:
    with SharedMemoryRing.open(path) as ring:
        for i in range(count):
            assert ring.write(frame(i, size), block=True, timeout=60)


def checked_message(seq: int, size: int) -> bytes:
    """seq (8 bytes) + pattern + crc32 of everything before it (4 bytes)."""
    body = SEQ.pack(seq) + bytes((seq + k) & 0xFF for k in range(min(size, 64))) * (size // 64 + 1)
    body = body[: 8 + size]
    return body + struct.pack("<I", zlib.crc32(body))


def verify_checked(msg: bytes) -> int:
    body, crc = msg[:-4], struct.unpack("<I", msg[-4:])[0]
    assert zlib.crc32(body) == crc, "torn message"
    return int(SEQ.unpack(body[:8])[0])


def produce_forever(path: str, size: int) -> None:
    """Writes checked messages until killed."""
    ring = SharedMemoryRing.open(path)
    seq = 0
    cache = [checked_message(s, size) for s in range(64)]
    while True:
        m = bytearray(cache[seq % 64])
        m[:8] = SEQ.pack(seq)
        body = bytes(m[:-4])
        m[-4:] = struct.pack("<I", zlib.crc32(body))
        ring.write(m, block=True)
        seq += 1


def hold_producer_then_exit(path: str, held: object, done: object, clean: bool) -> None:
    """Holds the producer role (a loan keeps it), sets `held`, waits for `done`, then exits
    (cleanly, or without any cleanup)."""
    ring = SharedMemoryRing.open(path)
    assert ring.loan(8) is not None
    held.set()  # type: ignore[attr-defined]
    assert done.wait(60)  # type: ignore[attr-defined]
    if clean:
        ring.close()
    else:
        os._exit(0)  # no destructor runs: the claim stays in the file, held by a dead pid


def read_one_and_report(path: str, q: object) -> None:
    with SharedMemoryRing.open(path) as ring:
        q.put(ring.read(block=True, timeout=30))  # type: ignore[attr-defined]


def write_messages(path: str, messages: list[bytes]) -> None:
    """Opens the ring and writes `messages`, waiting for room."""
    with SharedMemoryRing.open(path) as ring:
        for m in messages:
            assert ring.write(m, block=True, timeout=60)


def blocking_write_and_report(path: str, q: object, timeout: float) -> None:
    """Opens the ring, makes one blocking write of 8 bytes and reports its result."""
    with SharedMemoryRing.open(path) as ring:
        q.put(ring.write(b"from kid", block=True, timeout=timeout))  # type: ignore[attr-defined]
