"""The raw memcpy references: a single-core copy of each size, in one process (no channel)."""

from __future__ import annotations

from time import perf_counter
from typing import Any, Callable


def run_memcpy(size: int, seconds: float, max_bytes: int, footprint: int = 0) -> dict[str, Any]:
    """Single-core memcpy reference, in this process: NumPy ``copyto`` of ``size`` bytes.

    With ``footprint`` 0 it copies one source into one destination again and again (what the
    targets compare with: for sizes that fit the CPU's caches this is a cache-hot copy). With a
    footprint (a transport's capacity), it copies into a rotating set of destinations of that
    total size, the memory a ring of that capacity touches. Falls back to a memoryview slice
    assignment (also one memcpy) when NumPy is missing.
    """
    copy: Callable[[], Any]
    nbuf = max(1, footprint // size) if footprint else 1
    slot = [0]
    try:
        import numpy as np

        src = np.full(size, 0x5A, dtype=np.uint8)
        dsts = [np.empty(size, dtype=np.uint8) for _ in range(nbuf)]
        for d in dsts:
            d.fill(0)  # fault the pages in before timing

        def copy() -> Any:
            i = slot[0] = (slot[0] + 1) % nbuf
            return np.copyto(dsts[i], src)

        how = "numpy.copyto"
    except ImportError:
        msrc = memoryview(bytearray(b"\x5a") * size)
        mdsts = [memoryview(bytearray(size)) for _ in range(nbuf)]

        def copy() -> Any:
            i = slot[0] = (slot[0] + 1) % nbuf
            mdsts[i][:] = msrc
            return None

        how = "memoryview slice assignment"
    for _ in range(3):
        copy()
    max_n = max(16, max_bytes // size)
    chunk = max(1, min(1024, (1 << 22) // size))
    n = 0
    t0 = perf_counter()
    deadline = t0 + seconds
    while n < max_n:
        for _ in range(chunk):
            copy()
        n += chunk
        if perf_counter() >= deadline:
            break
    secs = perf_counter() - t0
    rate = n / secs
    return {"msgs": n, "seconds": secs, "msg_s": rate, "gb_s": rate * size / 1e9, "how": how}


def _memcpy_child(conn: Any, size: int, seconds: float, max_bytes: int, footprint: int) -> None:
    try:
        conn.send(run_memcpy(size, seconds, max_bytes, footprint))
    finally:
        conn.close()


def run_memcpy_apart(size: int, seconds: float, max_bytes: int, footprint: int = 0) -> dict[str, Any]:
    """:func:`run_memcpy` in a short-lived child process: its buffers (tens of MiB of huge pages
    for frames) leave with it, so the parent, from which every other row's processes fork,
    keeps the same small heap whichever row ran before."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_memcpy_child, args=(send, size, seconds, max_bytes, footprint))
    proc.start()
    send.close()
    try:
        result: dict[str, Any] = recv.recv()
    finally:
        proc.join()
    return result

