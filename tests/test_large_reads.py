"""Reads that return large messages as new ``bytes`` keep glibc's heap: freeing a batch of
megabyte messages does not give the memory back to the kernel (which made every later message
fault in and zero fresh pages, docs/benchmarks.md, issue 16).

Each check runs in a fresh interpreter: the allocator's settings are per process, and a fresh
one starts from glibc's defaults, under which these checks fail."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
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


@pytest.mark.parametrize("kind", ["ring", "queue"])
def test_freeing_a_batch_of_large_messages_keeps_the_heap(kind: str, shm_path: str) -> None:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, kind, shm_path], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr
