"""Market data: a Rust feed writes ticks into a typed ring; a Python strategy reads them in
batches as structured arrays and computes VWAP per symbol, checked against the feed's own.

    python examples/market_data/run.py                  # v1 feed, v1 strategy
    python examples/market_data/run.py --feed-version 2 # v2 feed (appended `venue`), v1 strategy still reads it
    python examples/market_data/run.py --incompatible   # a consumer with a changed layout is refused, with the diff
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

import strategy  # noqa: E402

import mmapipc  # noqa: E402
from mmapipc.schema import Schema  # noqa: E402
from mmapipc.typed import TypedRing  # noqa: E402


def feed_cmd(path: str, count: int, version: int) -> list[str]:
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "mmapipc", "--example", "market_feed"], cwd=ROOT, check=True)
    exe = ROOT / "target" / "release" / "examples" / "market_feed"
    return [str(exe), path, str(count)] + (["--v2"] if version == 2 else [])


def incompatible(path: str) -> None:
    """A consumer whose Tick has `price` as f32 (same name and version): refused with a diff."""
    v1 = Schema.from_file(str(strategy.TICK_V1))
    changed = tuple(
        dataclasses.replace(f, type={"kind": "scalar", "scalar": "f32"}, size=4) if f.name == "price" else f for f in v1.fields
    )
    bad = dataclasses.replace(v1, fields=changed)
    bad = dataclasses.replace(bad, fingerprint=bad.computed_fingerprint())
    try:
        TypedRing.open(path, bad)
    except mmapipc.SchemaMismatch as e:
        print(f"incompatible consumer refused, as it should be:\n{e}")
        return
    raise SystemExit("an incompatible consumer was NOT refused")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=2_000_000)
    ap.add_argument("--feed-version", type=int, choices=[1, 2], default=1)
    ap.add_argument("--incompatible", action="store_true")
    args = ap.parse_args()
    path = os.path.join(tempfile.mkdtemp(prefix="mmapipc-market-"), "ticks")
    schema = ROOT / "schemas" / "market" / f"tick.v{args.feed_version}.json"
    ring = TypedRing.create(path, capacity=1 << 20, schema=schema)
    try:
        if args.incompatible:
            incompatible(path)
            return
        feed = subprocess.Popen(feed_cmd(path, args.ticks, args.feed_version), stdout=subprocess.PIPE, text=True)
        vwap = strategy.run(path, args.ticks)
        out, _ = feed.communicate(timeout=120)
        if feed.returncode != 0:
            raise SystemExit(f"feed failed with exit code {feed.returncode}")
        expected = json.loads(out)
        worst = max(abs(vwap[s] - p) / p for s, p in expected.items())
        if set(vwap) != set(expected) or worst > 1e-9:
            raise SystemExit(f"VWAP mismatch: strategy {vwap} vs feed {expected}")
        print(f"VWAP of {len(expected)} symbols matches the feed's (max relative difference {worst:.1e})")
    finally:
        ring.close()
        ring.unlink()


if __name__ == "__main__":
    main()
