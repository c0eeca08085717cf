"""Market data fan-out: one Rust feed publishes every tick once on a typed topic; two Python
strategy processes each receive every tick (in batches, as structured arrays over the topic's
slots) and compute the VWAP per symbol, each checked against the feed's own.

    python examples/market_data/fanout.py [--ticks 2000000]

The topic is created here with the ``market.Tick`` v1 schema (block mode: the feed waits for the
slower strategy); both strategies subscribe before the feed starts, so neither misses a tick.
"""

from __future__ import annotations

import argparse
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

from mmapipc.typed import TypedTopic  # noqa: E402

ROLES = (("momentum", 4096), ("risk", 512))


def subscriber(path: str, count: int, role: str, batch: int) -> None:
    """One strategy: VWAP of every tick, printed as one JSON line after its summary."""
    with TypedTopic.open(path, strategy.TICK_V1) as topic, topic.subscribe() as sub:
        print("ready", flush=True)
        vwap, rate = strategy.vwap_of(sub, count, batch, role)
    print(f"{role}: {count} ticks, every one received, batches of {batch} ({rate:.1f} M ticks/s)")
    print(json.dumps(vwap), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=2_000_000)
    ap.add_argument("--role", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role:
        subscriber(args.path, args.ticks, args.role, dict(ROLES)[args.role])
        return
    path = os.path.join(tempfile.mkdtemp(prefix="mmapipc-market-fanout-"), "ticks")
    topic = TypedTopic.create(path, 1 << 20, strategy.TICK_V1, max_subscribers=4)
    subs: list[subprocess.Popen[str]] = []
    try:
        # Built before the strategies start: their receive timeout must not run during a build.
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "mmapipc", "--example", "market_feed"], cwd=ROOT, check=True)
        for role, _ in ROLES:
            p = subprocess.Popen(
                [sys.executable, __file__, "--role", role, "--path", path, "--ticks", str(args.ticks)],
                stdout=subprocess.PIPE,
                text=True,
            )
            subs.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", f"{role} did not start"
        exe = ROOT / "target" / "release" / "examples" / "market_feed"
        print(f"topic {path}: {topic.schema.label}, {len(ROLES)} strategies, {args.ticks} ticks")
        feed = subprocess.run([str(exe), path, str(args.ticks), "--topic"], check=True, timeout=300, capture_output=True, text=True)
        expected = json.loads(feed.stdout)
        print(feed.stderr.strip().replace("\n", " ") + ", published once")
        for p, (role, _) in zip(subs, ROLES):
            out, _ = p.communicate(timeout=120)
            if p.returncode != 0:
                raise SystemExit(f"{role} failed with exit code {p.returncode}")
            summary, line = out.strip().splitlines()[-2:]
            vwap = json.loads(line)
            worst = max(abs(vwap[s] - q) / q for s, q in expected.items())
            if set(vwap) != set(expected) or worst > 1e-9:
                raise SystemExit(f"{role}: VWAP mismatch: {vwap} vs feed {expected}")
            print(f"{summary}; VWAP of {len(expected)} symbols matches the feed's (max relative difference {worst:.1e})")
    finally:
        for p in subs:
            if p.poll() is None:
                p.kill()
                p.wait()
        topic.close()
        topic.unlink()


if __name__ == "__main__":
    main()
