"""Python strategy: reads ticks in batches as NumPy structured arrays and computes the VWAP
(volume-weighted average price) per symbol.

It opens the channel with the ``market.Tick`` **v1** schema it was written against, so it also
reads a v2 feed (v2 only appended a field), and it is refused, with a field-by-field diff, by a
feed whose layout is incompatible.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mmapipc.typed import TypedRing

ROOT = Path(__file__).resolve().parent.parent.parent
TICK_V1 = ROOT / "schemas" / "market" / "tick.v1.json"


class BatchSource(Protocol):
    """A typed ring or a typed topic's subscription: where the batches come from."""

    def recv_batch(self, max_count: int, block: bool = True, timeout: float | None = None) -> Any: ...


def vwap_of(source: BatchSource, count: int, batch: int, who: str = "strategy") -> tuple[dict[str, float], float]:
    """Consumes `count` ticks from `source`; returns ({symbol: vwap}, M ticks/s)."""
    notional: dict[bytes, float] = {}
    volume: dict[bytes, int] = {}
    seen = 0
    start = None
    while seen < count:
        ticks = source.recv_batch(batch, block=True, timeout=30.0)
        if ticks.size == 0:
            raise SystemExit(f"{who}: no ticks within 30 s after {seen}")
        start = start or time.perf_counter()
        seen += ticks.size
        # Group by symbol (8 raw bytes) without leaving NumPy.
        syms = ticks["symbol"].copy().view("S8").ravel()
        uniq, inverse = np.unique(syms, return_inverse=True)
        px_sz = ticks["price"] * ticks["size"]
        n = np.bincount(inverse, weights=px_sz, minlength=uniq.size)
        v = np.bincount(inverse, weights=ticks["size"], minlength=uniq.size)
        for sym, nn, vv in zip(uniq.tolist(), n.tolist(), v.tolist()):
            notional[sym] = notional.get(sym, 0.0) + nn
            volume[sym] = volume.get(sym, 0) + int(vv)
        del ticks  # the batch is a view of the channel's slots: release them before the next read
    elapsed = time.perf_counter() - (start or time.perf_counter())
    vwap = {s.decode().rstrip("\0"): notional[s] / volume[s] for s in sorted(notional)}
    return vwap, (seen / elapsed / 1e6 if elapsed > 0 else float("inf"))


def run(path: str, count: int, batch: int = 4096, schema: Path = TICK_V1) -> dict[str, float]:
    """Consumes `count` ticks from the ring at `path`; returns {symbol: vwap}."""
    with TypedRing.open(path, schema) as ring:
        vwap, rate = vwap_of(ring, count, batch)
        label = ring.schema.label
    print(f"strategy: {count} ticks from a {label} feed, read as v1 batches ({rate:.1f} M ticks/s)")
    for s, p in vwap.items():
        print(f"  {s:5} VWAP {p:10.4f}")
    return vwap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path")
    ap.add_argument("count", type=int)
    ap.add_argument("--batch", type=int, default=4096)
    args = ap.parse_args()
    run(args.path, args.count, args.batch)


if __name__ == "__main__":
    main()
