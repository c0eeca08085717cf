"""The Python consumer of the bridge tests (`mmapipc-zenoh/tests/bridge.rs` runs it on host B).

`bridge_consumer.py bytes PATH N`: reads N messages of the imported byte ring, checking that
message i starts with i (little-endian u64). `bridge_consumer.py ticks PATH N`: reads N ticks
of the imported typed ring as NumPy batches, checking every field. Prints `ok N` and exits 0,
or raises.
"""

from __future__ import annotations

import sys

import numpy as np

from mmapipc import SharedMemoryRing
from mmapipc.typed import TypedRing


def read_bytes(path: str, n: int) -> None:
    with SharedMemoryRing.open(path) as ring:
        for i in range(n):
            m = ring.read(block=True, timeout=120.0)
            assert m is not None, f"message {i}: nothing within 120 s"
            got = int.from_bytes(m[:8], "little")
            assert got == i, f"message {i}: got {got} (out of order or lost)"


def read_ticks(path: str, n: int) -> None:
    with TypedRing.open(path) as ticks:
        assert ticks.schema.name == "market.Tick" and ticks.schema.version == 1, ticks.schema
        seen = 0
        while seen < n:
            batch = ticks.recv_batch(4096, timeout=120.0)
            k = len(batch)
            assert k > 0, f"no ticks after {seen}"
            i = np.arange(seen, seen + k, dtype=np.uint64)
            assert (batch["timestamp_ns"] == i).all(), "timestamps out of order"
            assert (batch["price"] == 100.0 + i.astype(np.float64) / 4.0).all(), "prices"
            assert (batch["size"] == i.astype(np.uint32)).all(), "sizes"
            assert (batch["side"] == (i % 2).astype(np.uint8)).all(), "sides"
            seen += k
            del batch, i


def main() -> None:
    mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "bytes":
        read_bytes(path, n)
    elif mode == "ticks":
        read_ticks(path, n)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(f"ok {n}")


if __name__ == "__main__":
    main()
