#!/usr/bin/env python3
"""Quick comparison: mmapipc ring and queue against multiprocessing.Queue (under a minute).

Producer and consumer are separate processes; the producer stamps a sequence number into every
message and the consumer checks it, so every payload is written by one process and read by the
other. For all sizes, peers, batches, views and latency: examples/benchmark_advanced.py.

    python examples/benchmark.py
    python examples/benchmark.py --json quick.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench.common import MiB, fmt_rate, fmt_size  # noqa: E402
from _bench.driver import SuiteConfig, run_suite, steps  # noqa: E402
from _bench.progress import Progress  # noqa: E402
from _bench.report import (  # noqa: E402
    BASELINE,
    command_line,
    machine_info,
    ratio,
    render,
    rows_json,
    to_json,
)
from _bench.runner import START_METHOD, install_sigterm_handler, kill_all_children  # noqa: E402
from _bench.systems import BY_KEY  # noqa: E402

SIZES = (64, 1024, MiB)
SYSTEMS = ("ring", "queue", BASELINE)
CONFIGS = {
    "default": SuiteConfig(repeat=3, seconds=0.5, max_count=300_000, max_bytes=1024 * MiB,
                           stall=10.0, batch=64, lat_seconds=0.0, lat_count=0),
    "smoke": SuiteConfig(repeat=1, seconds=0.05, max_count=2_000, max_bytes=16 * MiB,
                         stall=5.0, batch=64, lat_seconds=0.0, lat_count=0),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cfg = CONFIGS["smoke" if args.smoke else "default"]
    systems = [BY_KEY[k] for k in SYSTEMS]

    install_sigterm_handler()
    info = machine_info()
    print(f"mmapipc quick benchmark: {info['cpu']}, {info['cores']} cores, "
          f"Python {info['python']}, start method {START_METHOD}; "
          f"median of {cfg.repeat} runs of <= {cfg.seconds:g} s each", flush=True)
    progress = Progress(steps(systems, SIZES, [], False, cfg.repeat),
                        enabled=not args.no_progress)
    t0 = time.monotonic()
    try:
        tput, _ = run_suite(systems, SIZES, [], cfg, memcpy=False, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        kill_all_children()
        print("interrupted: children stopped, shared-memory files removed", file=sys.stderr)
        return 130
    finally:
        progress.close()
    elapsed = time.monotonic() - t0

    body = []
    for r in tput:
        if not r.ok:
            body.append([fmt_size(r.size), r.label, r.status, "", ""])
            continue
        x = ratio(tput, r.system, BASELINE, r.size)
        body.append([fmt_size(r.size), r.label, fmt_rate(r.msg_s), f"{r.msg_s * r.size / 1e6:,.1f}",
                     "-" if x != x else f"{x:.1f}x"])
    print()
    print(render(["size", "system", "msg/s", "MB/s", "vs mp.Queue"], body,
                 [True, False, True, True, True]))
    for key, status, note in sorted({(r.system, r.status, r.note) for r in tput if not r.ok}):
        print(f"{status} {key}: {note}")
    print(f"\nfinished in {elapsed:.0f} s; more systems and sizes: "
          "python examples/benchmark_advanced.py --quick")
    if args.json:
        to_json(args.json, {"command": command_line(), "config": cfg.as_dict(), "machine": info,
                            "elapsed_s": elapsed, "throughput": rows_json(tput)})
        print(f"results written to {args.json}")
    return 3 if any(r.status == "error" and r.family == "mmapipc" for r in tput) else 0


if __name__ == "__main__":
    sys.exit(main())
