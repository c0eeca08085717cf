"""How fast Python takes in ticks as structured arrays, in place.

The Rust feed first fills a large typed ring (so the producer's speed does not limit the
measurement); then this process reads everything with ``recv_batch`` (one structured array over
the ring's slots per batch) and computes sum(price * size). The same computation over an
in-process NumPy array of the same dtype is the reference.

    python examples/market_data/ingest_bench.py [--ticks 3000000] [--batch 65536]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from mmapipc.typed import TypedRing

ROOT = Path(__file__).resolve().parent.parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=3_000_000)
    ap.add_argument("--batch", type=int, default=65536)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "mmapipc", "--example", "market_feed"], cwd=ROOT, check=True)
    feed = ROOT / "target" / "release" / "examples" / "market_feed"
    path = os.path.join(tempfile.mkdtemp(prefix="mmapipc-ingest-"), "ticks")
    capacity = args.ticks * 40 + (1 << 20)  # 32-byte records + 8-byte headers
    with TypedRing.create(path, capacity, ROOT / "schemas" / "market" / "tick.v1.json") as ring:
        subprocess.run([str(feed), path, str(args.ticks)], check=True, stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        n, total = 0, 0.0
        while n < args.ticks:
            batch = ring.recv_batch(args.batch, block=False)
            if batch.size == 0:
                raise SystemExit(f"only {n} of {args.ticks} ticks arrived")
            total += float((batch["price"] * batch["size"]).sum())
            n += batch.size
            del batch
        shared = n / (time.perf_counter() - start)
        ring.unlink()
    local = np.zeros(args.ticks, dtype=ring.dtype)
    start = time.perf_counter()
    for i in range(0, args.ticks, args.batch):
        b = local[i : i + args.batch]
        float((b["price"] * b["size"]).sum())
    reference = args.ticks / (time.perf_counter() - start)
    print(f"ticks into Python in place: {shared / 1e6:.1f} M records/s; "
          f"in-process NumPy on the same dtype: {reference / 1e6:.1f} M records/s")


if __name__ == "__main__":
    main()
