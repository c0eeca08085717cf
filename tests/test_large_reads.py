"""Large messages (docs/benchmarks.md, issue 16).

Reads that return large messages as new ``bytes`` keep glibc's heap: freeing a batch of
megabyte messages does not give the memory back to the kernel (which made every later message
fault in and zero fresh pages). Each heap check runs in a fresh interpreter: the allocator's
settings are per process, and a fresh one starts from glibc's defaults, under which the check
fails. Frames in a channel of two keep their order when they reuse the released half."""

from __future__ import annotations

import multiprocessing as mp
import platform
import subprocess
import sys

import frame_helpers as fh
import pytest

from mmapipc import SharedMemoryQueue, SharedMemoryRing

glibc_only = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's heap"
)

CHILD = r"""
import ctypes, sys
import mmapipc

libc = ctypes.CDLL(None)
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_ssize_t]
kind, path = sys.argv[1], sys.argv[2]
MIB = 1 << 20
cls = mmapipc.SharedMemoryRing if kind == "ring" else mmapipc.SharedMemoryQueue
ch = cls.create(path, 8 * (MIB + 4096))
put = ch.write if kind == "ring" else ch.put
batch = ch.read_batch if kind == "ring" else ch.get_batch
shrunk = []
for round in range(4):
    for i in range(4):
        assert put(bytes([round * 4 + i]) * MIB, False)
    got = batch(8, False)
    assert [m[0] for m in got] == [round * 4 + i for i in range(4)], "FIFO"
    assert all(len(m) == MIB for m in got)
    top = libc.sbrk(0)
    del got
    shrunk.append(top - libc.sbrk(0))
ch.close()
print(shrunk)
assert max(shrunk) < MIB, f"the heap gave back {max(shrunk)} bytes after a batch was freed"
"""


@glibc_only
@pytest.mark.parametrize("kind", ["ring", "queue"])
def test_freeing_a_batch_of_large_messages_keeps_the_heap(kind: str, shm_path: str) -> None:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, kind, shm_path], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("kind,loan", [("ring", False), ("ring", True), ("queue", False)])
@pytest.mark.timeout(120)
def test_frames_in_a_two_frame_channel_arrive_in_order_through_views(
    ctx: mp.context.BaseContext, shm_path: str, kind: str, loan: bool
) -> None:
    # Frames (4 MiB or more and over a third of the capacity) go over the half the consumer released last when
    # it can (docs/benchmarks.md, issue 16): order and contents must not change.
    size, count = 4 << 20, 16
    cls = SharedMemoryRing if kind == "ring" else SharedMemoryQueue
    with cls.create(shm_path, 2 * (size + 4096)) as ch:
        p = ctx.Process(target=fh.produce, args=(kind, shm_path, count, size, loan))  # type: ignore[attr-defined]
        p.start()
        try:
            for i in range(count):
                if isinstance(ch, SharedMemoryRing):
                    v = ch.read_view(block=True, timeout=60)
                    assert v is not None
                    assert v == fh.frame(i, size), f"frame {i} differs"
                    v.release()
                else:
                    views = ch.get_view(True, 60)
                    assert views is not None and len(views) == 1
                    assert views[0] == fh.frame(i, size), f"frame {i} differs"
                    ch.release(views)
        finally:
            p.join(60)
        assert p.exitcode == 0
