#!/usr/bin/env python3
"""mmapipc against its peers: throughput for 8 B to 8 MiB and 64 B ping-pong latency.

Producer and consumer are separate processes; the producer stamps every message, the consumer
checks every stamp. Every row is the median of several runs, each bounded by a message count,
a byte count and a time. See docs/benchmarks.md.

    python examples/benchmark_advanced.py --quick
    python examples/benchmark_advanced.py --json out.json --plot out.png --markdown perf.md
    python examples/benchmark_advanced.py --sizes 64,8M --systems ring,ring-view,mp-queue

Exit status: 0 when every mmapipc row ran or was skipped (a MISS is a result, not a failure;
a peer that failed is reported in its row), 3 when an mmapipc system misbehaved (stalled,
lost, duplicated or corrupted a message), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _bench.common import MiB, fmt_size, parse_size  # noqa: E402
from _bench.driver import SuiteConfig, run_fanout_suite, run_mpmc_suite, run_suite, steps  # noqa: E402
from _bench.idle import CHANNELS, IDLE, IdleRow, idle_table, run_idle_suite  # noqa: E402
from _bench.progress import Progress  # noqa: E402
from _bench.report import (  # noqa: E402
    check_targets,
    command_line,
    ensure_parent,
    fanout_table,
    format_targets,
    latency_table,
    machine_info,
    mpmc_table,
    markdown_report,
    ratio_matrix,
    rows_json,
    throughput_table,
    to_json,
)
from _bench import runner  # noqa: E402
from _bench.runner import START_METHOD, install_sigterm_handler, kill_all_children  # noqa: E402
from _bench.report import TputRow  # noqa: E402
from _bench.summary import (  # noqa: E402
    DOCS_BEGIN,
    DOCS_END,
    README_BEGIN,
    README_END,
    check_markers,
    readme_summary,
    splice,
)
from _bench.systems import (  # noqa: E402
    ALL_SYSTEMS, BY_KEY, FANOUT_SYSTEMS, TICK_SIZE, TYPED_SYSTEMS, System)

DEFAULT_SIZES = "8,64,1K,64K,1M,8M"
#: The page with the methodology, which the generated results link to.
DOCS_PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                         "benchmarks.md")

PRESETS = {
    # repeat, seconds, max_count, max_bytes, lat_seconds, lat_count, stall
    "full": SuiteConfig(repeat=3, seconds=2.0, max_count=2_000_000, max_bytes=8192 * MiB,
                        stall=15.0, batch=64, lat_seconds=2.0, lat_count=50_000),
    "quick": SuiteConfig(repeat=2, seconds=0.3, max_count=200_000, max_bytes=512 * MiB,
                         stall=10.0, batch=64, lat_seconds=0.3, lat_count=5_000),
    "smoke": SuiteConfig(repeat=1, seconds=0.05, max_count=2_000, max_bytes=16 * MiB,
                         stall=5.0, batch=64, lat_seconds=0.05, lat_count=200),
}
IDLE_HEADING = ("Idle: {n} channels awaited by one asyncio loop for {s:g} s, nothing sent (CPU of "
                "the whole process, user + system, resource.getrusage; target: mmapipc < 1 %)")
IDLE_NOTE = ("CPU of the whole waiting process (every thread), user + system time from "
             "`resource.getrusage`, over the wall time; one run per row (issue 18: mmapipc under "
             "1 % of one core).")
#: Seconds of each idle row (100 channels awaited, nothing sent) per preset.
IDLE_SECONDS = {"full": 10.0, "quick": 3.0, "smoke": 0.2}


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="systems: " + ", ".join(s.key for s in ALL_SYSTEMS),
    )
    ap.add_argument("--quick", action="store_true",
                    help="short runs (2 repetitions of 0.3 s): finishes in a few minutes")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default=DEFAULT_SIZES,
                    help=f"comma-separated message sizes (default {DEFAULT_SIZES})")
    ap.add_argument("--systems", default="all",
                    help="comma-separated system keys (default: all; see below)")
    ap.add_argument("--repeat", type=int, help="runs per row (default 3, --quick 2)")
    ap.add_argument("--seconds", type=float, help="time bound of one run (default 2, --quick 0.3)")
    ap.add_argument("--no-latency", action="store_true", help="skip the ping-pong rows")
    ap.add_argument("--no-typed", action="store_true",
                    help="leave out typed rings (market.Tick records, 32 B) vs raw rings")
    ap.add_argument("--mpmc", default="1,2,4", metavar="N,N,...",
                    help="N producers x N consumers on one queue, 64 B (default 1,2,4; '' = off)")
    ap.add_argument("--fanout", type=int, metavar="N",
                    help="fan-out mode: only one producer and N consumer processes of one "
                         "channel, each receiving every message, per --sizes; systems: "
                         + ", ".join(s.key for s in FANOUT_SYSTEMS))
    ap.add_argument("--no-memcpy", action="store_true", help="skip the memcpy reference rows")
    ap.add_argument("--no-idle", action="store_true",
                    help=f"skip the idle rows ({CHANNELS} channels awaited by one asyncio loop, "
                         "nothing sent: CPU used; run for the async systems "
                         + ", ".join(IDLE) + ")")
    ap.add_argument("--idle-seconds", type=float,
                    help="how long an idle row waits (default 10, --quick 3)")
    ap.add_argument("--json", metavar="PATH", help="write every result and the machine info")
    ap.add_argument("--plot", metavar="PATH", help="write a PNG chart (needs matplotlib)")
    ap.add_argument("--markdown", metavar="PATH",
                    help="write the full results (tables, ratios, targets, machine) to PATH")
    ap.add_argument("--docs", metavar="PATH",
                    help="put the full results into PATH (docs/benchmarks.md) between its "
                         "markers <!-- benchmark:begin ... --> and <!-- benchmark:end -->")
    ap.add_argument("--readme", metavar="PATH",
                    help="put the summary table (headline rows, the command, a link to the "
                         "--docs page) into PATH between <!-- benchmark-summary:begin ... --> "
                         "and <!-- benchmark-summary:end -->")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    ap.add_argument("--pin", action="store_true",
                    help="pin the processes of a run to one CPU each (producer or server on "
                         "CPU 0, consumer or client on CPU 1, ...)")
    ap.add_argument("--list", action="store_true",
                    help="list the systems, what their loops call, and whether they can run here")
    return ap.parse_args(argv)


def list_systems() -> None:
    for s in ALL_SYSTEMS + TYPED_SYSTEMS:
        why = s.unavailable()
        extra = [x for x, on in (("ping-pong", s.pingpong), ("mpmc", s.mpmc)) if on]
        print(f"{s.key:18s} {s.label:22s} {'skipped: ' + why if why else 'available'}"
              f"{' (+' + ', '.join(extra) + ')' if extra else ''}")
        print(f"{'':18s} {s.method}")


#: What the typed rings are compared with, at the record's size.
TYPED_VERSUS = ("ring", "ring-batch", "mp-queue")


def select_systems(spec: str) -> list[System]:
    """The throughput systems named (typed ones are measured in their own section)."""
    if spec.strip() in ("", "all"):
        return list(ALL_SYSTEMS)
    out = []
    for key in (k.strip() for k in spec.split(",") if k.strip()):
        if key not in BY_KEY:
            raise SystemExit(f"unknown system {key!r}; choose from {', '.join(BY_KEY)}")
        out.append(BY_KEY[key])
    return out


def fanout_main(args: argparse.Namespace, cfg: SuiteConfig, sizes: list[int]) -> int:
    """``--fanout N``: the fan-out rows only (msg/s per consumer, the slowest consumer's)."""
    if args.systems.strip() in ("", "all"):
        systems = list(FANOUT_SYSTEMS)
    else:
        systems = select_systems(args.systems)
        no = [s.key for s in systems if not s.fanout]
        if no:
            raise SystemExit(f"no fan-out mode in {', '.join(no)}; choose from "
                             + ", ".join(s.key for s in FANOUT_SYSTEMS))
    if args.fanout < 1:
        raise SystemExit("--fanout must be at least 1")
    install_sigterm_handler()
    info = machine_info()
    print(f"mmapipc fan-out benchmark: {info['cpu']}, {info['cores']} cores, Python "
          f"{info['python']}; 1 producer + {args.fanout} consumer processes; {cfg.repeat} run(s) "
          f"per row, each <= {cfg.seconds:g} s / {cfg.max_count:,} msgs", flush=True)
    progress = Progress(len(sizes) * sum(1 if s.unavailable() else cfg.repeat for s in systems),
                        enabled=not args.no_progress)
    try:
        rows = run_fanout_suite(systems, sizes, args.fanout, cfg, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        kill_all_children()
        print("interrupted: children stopped, shared-memory files removed", file=sys.stderr)
        return 130
    finally:
        progress.close()
    print()
    print("Fan-out (msg/s per consumer: median of runs; vs mmapipc: the first mmapipc row of "
          "the size over this row)")
    print(fanout_table(rows))
    if args.json:
        ensure_parent(args.json)
        to_json(args.json, {"machine": info, "command": command_line(),
                            "config": cfg.as_dict(), "fanout": rows_json(rows)})
    return 1 if any(r.status == "error" for r in rows) else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_systems()
        return 0
    preset = "smoke" if args.smoke else "quick" if args.quick else "full"
    runner.PIN = args.pin
    cfg = PRESETS[preset]
    if args.repeat is not None or args.seconds is not None:
        cfg = SuiteConfig(**{**cfg.__dict__,
                             "repeat": args.repeat if args.repeat is not None else cfg.repeat,
                             "seconds": args.seconds if args.seconds is not None else cfg.seconds})
    if cfg.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    try:
        sizes = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if any(s < 8 for s in sizes):
        raise SystemExit("sizes must be at least 8 bytes (the sequence stamp)")
    if args.fanout is not None:
        return fanout_main(args, cfg, sizes)
    systems = select_systems(args.systems)
    lat_systems = [] if args.no_latency else [s for s in systems if s.pingpong]
    try:
        procs = sorted({int(x) for x in args.mpmc.split(",") if x.strip()})
    except ValueError:
        raise SystemExit(f"--mpmc takes numbers like 1,2,4, not {args.mpmc!r}") from None
    mpmc_systems = [s for s in systems if s.mpmc] if procs else []
    idle_keys = [] if args.no_idle else [s.key for s in systems if s.key in IDLE]
    idle_seconds = args.idle_seconds if args.idle_seconds is not None else IDLE_SECONDS[preset]
    typed_systems: list[System] = []
    if not args.no_typed and args.systems.strip() in ("", "all"):
        typed_systems = list(TYPED_SYSTEMS) + [BY_KEY[k] for k in TYPED_VERSUS]
    elif not args.no_typed and any(s.typed for s in systems):
        typed_systems = [s for s in systems if s.typed]
        typed_systems += [s for s in systems if s.key in TYPED_VERSUS]

    for path, begin, end in ((args.docs, DOCS_BEGIN, DOCS_END),
                             (args.readme, README_BEGIN, README_END)):
        if path:  # before the run, not after it
            why = check_markers(path, begin, end)
            if why:
                raise SystemExit(why)
    install_sigterm_handler()
    info = machine_info()
    command = command_line()
    print(f"mmapipc benchmark ({preset}): {info['cpu']}, {info['cores']} cores, "
          f"Python {info['python']}, start method {START_METHOD}, {info['date_utc']}")
    print(f"sizes {', '.join(fmt_size(s) for s in sizes)}; {cfg.repeat} run(s) per row, "
          f"each <= {cfg.seconds:g} s / {cfg.max_count:,} msgs / {cfg.max_bytes // MiB} MiB",
          flush=True)
    main_systems = [s for s in systems if not s.typed]
    progress = Progress(steps(main_systems, sizes, lat_systems, not args.no_memcpy, cfg.repeat,
                              mpmc_systems, procs)
                        + steps(typed_systems, [TICK_SIZE] if typed_systems else [], [], False,
                                cfg.repeat)
                        + len(idle_keys),
                        enabled=not args.no_progress)
    t0 = time.monotonic()
    try:
        tput, lat = run_suite(main_systems, sizes, lat_systems, cfg, memcpy=not args.no_memcpy,
                              progress=progress)
        typed: list[TputRow] = []
        if typed_systems:
            typed, _ = run_suite(typed_systems, [TICK_SIZE], [], cfg, memcpy=False,
                                 progress=progress)
        mpmc = run_mpmc_suite(mpmc_systems, procs, cfg, size=cfg.lat_size, progress=progress)
        idle: list[IdleRow] = run_idle_suite(idle_keys, idle_seconds, cfg.stall,
                                             lambda key: BY_KEY[key].unavailable(), progress)
    except KeyboardInterrupt:
        progress.close()
        kill_all_children()
        print("interrupted: children stopped, shared-memory files removed", file=sys.stderr)
        return 130
    finally:
        progress.close()
    elapsed = time.monotonic() - t0

    targets = check_targets(tput)
    print()
    print("Throughput (msg/s and GB/s: median of runs; spread: ±half the min-max range)")
    print(throughput_table(tput))
    if lat:
        print()
        print(f"Round-trip latency, {fmt_size(cfg.lat_size)} ping-pong (median of runs)")
        print(latency_table(lat))
    if typed:
        print()
        print(f"Typed records (market.Tick v1, {TICK_SIZE} B) against raw bytes of the same size")
        print(throughput_table(typed))
    if mpmc:
        print()
        print(f"Many producers x many consumers, one queue, {fmt_size(cfg.lat_size)} "
              "(aggregate msg/s, median of runs)")
        print(mpmc_table(mpmc))
    if idle:
        print()
        print(IDLE_HEADING.format(n=CHANNELS, s=idle_seconds))
        print(idle_table(idle))
    rm = ratio_matrix(tput)
    if rm:
        print()
        print("mmapipc against each peer (msg/s ratio)")
        print(rm)
    print()
    print("Targets (issues 3 and 4)")
    print(format_targets(targets))
    notes = sorted({(r.system, r.status, r.note)
                    for r in list(tput) + list(lat) + list(mpmc) + list(typed) + list(idle)
                    if not r.ok})
    for key, status, note in notes:
        print(f"{status} {key}: {note}")
    print(f"\nfinished in {elapsed:.0f} s")

    plot_note: Optional[str] = None
    if args.plot:
        from _bench.plot import plot

        plot_note = plot(args.plot, tput, lat,
                         f"{command} | {info['cpu']}, {info['cores']} cores, "
                         f"Python {info['python']}, {info['date_utc']}")
        print(plot_note or f"chart written to {args.plot}")
    if args.json:
        to_json(args.json, {
            "command": command, "preset": preset, "config": cfg.as_dict(),
            "machine": info, "elapsed_s": elapsed,
            "sizes": sizes, "systems": [s.key for s in systems],
            "methods": {s.key: s.method for s in systems},
            "throughput": rows_json(tput), "latency": rows_json(lat), "mpmc": rows_json(mpmc),
            "typed": rows_json(typed), "idle": rows_json(idle),
            "targets": targets,
        })
        print(f"results written to {args.json}")
    for target in (args.markdown, args.docs):
        if not target:
            continue
        where = os.path.dirname(os.path.abspath(target))
        rel_plot = None
        if args.plot and plot_note is None:
            rel_plot = os.path.relpath(args.plot, where)
        methods = os.path.relpath(DOCS_PAGE, where) + "#methodology"
        if os.path.abspath(target) == DOCS_PAGE:
            methods = "#methodology"
        sections = []
        if idle:
            sections.append((f"Idle ({CHANNELS} channels awaited by one asyncio loop, "
                             f"{idle_seconds:g} s, nothing sent)",
                             IDLE_NOTE + "\n\n" + idle_table(idle, markdown=True)))
        md = markdown_report(tput=tput, lat=lat, mpmc=mpmc, typed=typed, targets=targets,
                             sections=sections, notes_from=idle,
                             info=info, command=command, elapsed_s=elapsed, plot_path=rel_plot,
                             config=cfg.as_dict(), methods_link=methods,
                             heading=target != args.docs)  # the page has its own heading
        if target == args.docs:
            splice(target, md, DOCS_BEGIN, DOCS_END)
            print(f"results replaced in {target}")
        else:
            ensure_parent(target)
            with open(target, "w", encoding="utf-8") as f:
                f.write(md + "\n")
            print(f"results written to {target}")
    if args.readme:
        docs = args.docs or DOCS_PAGE
        link = os.path.relpath(docs, os.path.dirname(os.path.abspath(args.readme)))
        splice(args.readme, readme_summary(tput=tput, lat=lat, info=info, command=command,
                                           config=cfg.as_dict(), docs_link=link),
               README_BEGIN, README_END)
        print(f"summary replaced in {args.readme}")
    # An mmapipc row that failed is a bug to look at; a peer that failed is reported above.
    errors = [r for r in list(tput) + list(lat) + list(mpmc) + list(typed) + list(idle)
              if r.status == "error" and r.family == "mmapipc"]
    return 3 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
