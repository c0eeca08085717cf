"""Child-process entry points for test_topic.py (module level, so `spawn` can import them)."""

from __future__ import annotations

import hashlib
import struct
import time
from typing import Any

from mmapipc import SharedMemoryTopic

END = 2**64 - 1


def message(seq: int, size: int = 48) -> bytes:
    body = struct.pack("<Q", seq) + bytes((seq + i * 7) & 0xFF for i in range(size))
    return body + hashlib.blake2b(body, digest_size=8).digest()


def verify(m: bytes) -> int:
    body, digest = m[:-8], m[-8:]
    assert hashlib.blake2b(body, digest_size=8).digest() == digest, "torn message"
    seq: int = struct.unpack_from("<Q", body)[0]
    return seq


def subscriber(path: str, start: str, ready: Any, results: Any) -> None:
    """Receives until END; reports (first, count) after checking order and contents."""
    with SharedMemoryTopic.open(path) as t, t.subscribe(start=start) as s:
        ready.set()
        first, nxt, n = None, 0, 0
        for m in s:
            seq = verify(m)
            if seq == END:
                break
            if first is None:
                first = seq
            else:
                assert seq == nxt, f"gap or duplicate: {seq} after {nxt - 1}"
            nxt, n = seq + 1, n + 1
        results.put((first, n))


def member(path: str, group: str, ready: Any, results: Any) -> None:
    """A group member: reports every sequence number it received, after END."""
    with SharedMemoryTopic.open(path) as t, t.subscribe(group=group) as s:
        ready.set()
        got = []
        while True:
            m = s.recv(timeout=60.0)
            assert m is not None, "publisher went quiet"
            seq = verify(m)
            if seq == END:
                break
            got.append(seq)
        results.put((group, got))


def holder(path: str, ready: Any) -> None:
    """Subscribes and never reads (killed by the test)."""
    t = SharedMemoryTopic.open(path)
    _s = t.subscribe()
    ready.set()
    time.sleep(600)


def publisher(path: str, count: int) -> None:
    with SharedMemoryTopic.open(path) as t:
        for i in range(count):
            assert t.publish(message(i), timeout=60.0)


def second_publisher(path: str, results: Any) -> None:
    """Reports the exception class name of a publish while the parent publishes."""
    with SharedMemoryTopic.open(path) as t:
        try:
            t.publish(b"x", timeout=1.0)
            results.put("published")
        except Exception as e:  # noqa: BLE001 - reported to the parent
            results.put(type(e).__name__)


FRAME = 4 << 20  # frames start at 4 MiB (`mem::reuse::MIN_FRAME`)


def frame(seq: int) -> bytearray:
    """A FRAME-byte message: its sequence number, then one byte value derived from it."""
    buf = bytearray(bytes([(seq * 37 + 11) & 0xFF])) * FRAME
    struct.pack_into("<Q", buf, 0, seq)
    return buf


def frame_subscriber(path: str, view: bool, ready: Any, results: Any) -> None:
    """Receives frames until END (views or copies), checking order and every byte of each; every
    tenth view is checked again after a pause, while the publisher goes on (a frame written
    over one still held would show). Reports (count, payload addresses seen)."""
    import numpy as np

    with SharedMemoryTopic.open(path) as t, t.subscribe() as s:
        ready.set()
        n, addresses = 0, set()
        while True:
            m = s.recv_view(timeout=60.0) if view else s.recv(timeout=60.0)
            assert m is not None, "publisher went quiet"
            seq = struct.unpack_from("<Q", m)[0]
            if seq == END:
                break
            assert seq == n, f"frame {seq} after {n - 1}"
            a = np.frombuffer(m, np.uint8)
            expect = (seq * 37 + 11) & 0xFF
            assert len(a) == FRAME and bool((a[8:] == expect).all()), f"frame {seq} torn"
            if view:
                addresses.add(a.__array_interface__["data"][0])
                if n % 10 == 0:
                    time.sleep(0.002)
                    assert bool((a[8:] == expect).all()), f"frame {seq} overwritten while held"
            del a
            n += 1
        results.put((n, len(addresses)))
