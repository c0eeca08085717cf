"""Result rows, tables (terminal and Markdown), target checks, JSON and machine information."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

from .common import MiB, fmt_rate, fmt_size
from .stats import median, spread_pct

MEMCPY = "memcpy"
#: memcpy into a rotating set of buffers as large as a transport's capacity (information only).
MEMCPY_RING = "memcpy-ring"
#: Below this size a NumPy copy measures call overhead, not bandwidth: no "% memcpy" there.
MEMCPY_FROM = 64 * 1024
BASELINE = "mp-queue"


@dataclass
class TputRow:
    system: str
    label: str
    family: str  # "mmapipc", "peer" or "reference"
    size: int
    status: str = "ok"  # "ok", "skipped" or "error"
    note: str = ""
    reps_msg_s: list[float] = field(default_factory=list)
    msg_s: float = math.nan  # median over repetitions
    min_msg_s: float = math.nan
    max_msg_s: float = math.nan
    spread_pct: float = math.nan
    gb_s: float = math.nan
    count_bound: int = 0
    seconds_bound: float = 0.0
    procs: int = 1  # producers (= consumers) in a many-to-many row

    def finish(self) -> None:
        if self.reps_msg_s:
            self.msg_s = median(self.reps_msg_s)
            self.min_msg_s = min(self.reps_msg_s)
            self.max_msg_s = max(self.reps_msg_s)
            self.spread_pct = spread_pct(self.reps_msg_s)
            self.gb_s = self.msg_s * self.size / 1e9

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not math.isnan(self.msg_s)


@dataclass
class LatRow:
    system: str
    label: str
    family: str
    size: int
    status: str = "ok"
    note: str = ""
    reps: list[dict[str, float]] = field(default_factory=list)
    p50_us: float = math.nan  # medians over repetitions of each repetition's percentile
    p99_us: float = math.nan
    p999_us: float = math.nan
    p50_min_us: float = math.nan
    p50_max_us: float = math.nan
    samples: int = 0

    def finish(self) -> None:
        if self.reps:
            self.p50_us = median([r["p50_us"] for r in self.reps])
            self.p99_us = median([r["p99_us"] for r in self.reps])
            self.p999_us = median([r["p999_us"] for r in self.reps])
            self.p50_min_us = min(r["p50_us"] for r in self.reps)
            self.p50_max_us = max(r["p50_us"] for r in self.reps)
            self.samples = int(sum(r["samples"] for r in self.reps))

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not math.isnan(self.p50_us)


# ----------------------------------------------------------------------------------------------
# Lookups and ratios


def find(rows: Sequence[TputRow], system: str, size: int) -> Optional[TputRow]:
    for r in rows:
        if r.system == system and r.size == size:
            return r
    return None


def ratio(rows: Sequence[TputRow], system: str, other: str, size: int) -> float:
    a, b = find(rows, system, size), find(rows, other, size)
    if a is None or b is None or not a.ok or not b.ok or b.msg_s <= 0:
        return math.nan
    return a.msg_s / b.msg_s


def best_peer(rows: Sequence[TputRow], size: int) -> Optional[TputRow]:
    peers = [r for r in rows if r.family == "peer" and r.size == size and r.ok]
    return max(peers, key=lambda r: r.msg_s) if peers else None


# ----------------------------------------------------------------------------------------------
# Targets from issues 3 and 4


@dataclass(frozen=True)
class Target:
    name: str
    system: str
    size: int
    versus: tuple[str, ...]  # the best of these is the reference
    threshold: float  # ratio system/versus that passes
    issue: int

    def describe_threshold(self) -> str:
        if self.versus == (MEMCPY,):
            return f">= {self.threshold * 100:.0f}% of memcpy"
        return f">= {self.threshold:g}x"


TARGETS: tuple[Target, ...] = (
    Target("ring 64 B write/read vs multiprocessing.Queue", "ring", 64, (BASELINE,), 30, 3),
    Target("ring 64 B write_batch/read_batch vs multiprocessing.Queue", "ring-batch", 64,
           (BASELINE,), 100, 3),
    Target("ring 8 MiB write + read_view vs single-core memcpy", "ring-view", 8 * MiB,
           (MEMCPY,), 0.8, 3),
    Target("queue 64 B put/get vs multiprocessing.Queue", "queue", 64, (BASELINE,), 20, 4),
    Target("queue 64 B put_batch/get_batch(64) vs multiprocessing.Queue", "queue-batch", 64,
           (BASELINE,), 100, 4),
    Target("queue 8 MiB get_view vs single-core memcpy", "queue-view", 8 * MiB, (MEMCPY,), 0.7, 4),
    Target("queue 8 MiB get_view vs faster-fifo (best of single and batch)", "queue-view",
           8 * MiB, ("faster-fifo", "faster-fifo-batch"), 2, 4),
)


def check_targets(rows: Sequence[TputRow]) -> list[dict[str, Any]]:
    """PASS/MISS per target from the measured rows; SKIP (with why) when a row is missing."""
    out: list[dict[str, Any]] = []
    for t in TARGETS:
        entry: dict[str, Any] = {
            "name": t.name, "issue": t.issue, "system": t.system, "size": t.size,
            "versus": list(t.versus), "threshold": t.threshold,
            "required": t.describe_threshold(),
        }
        mine = find(rows, t.system, t.size)
        refs = [r for r in (find(rows, v, t.size) for v in t.versus) if r is not None and r.ok]
        if mine is None or not mine.ok:
            why = "not measured" if mine is None else (mine.note or mine.status)
            entry.update(status="SKIP", value=None, detail=f"{t.system} @ {fmt_size(t.size)}: {why}")
        elif not refs:
            entry.update(status="SKIP", value=None,
                         detail=f"reference {'/'.join(t.versus)} @ {fmt_size(t.size)} not measured")
        else:
            ref = max(refs, key=lambda r: r.msg_s)
            value = mine.msg_s / ref.msg_s
            detail = f"{t.system} {_q(mine)} vs {ref.system} {_q(ref)}"
            ring_ref = find(rows, MEMCPY_RING, t.size)
            if t.versus == (MEMCPY,) and ring_ref is not None and ring_ref.ok:
                entry["value_vs_memcpy_ring"] = mine.msg_s / ring_ref.msg_s
                detail += (f"; {100 * mine.msg_s / ring_ref.msg_s:.0f}% of memcpy into "
                           f"ring-sized buffers {_q(ring_ref)}")
            entry.update(status="PASS" if value >= t.threshold else "MISS", value=value,
                         detail=detail)
        out.append(entry)
    return out


def _q(r: TputRow) -> str:
    if r.size >= 64 * 1024:
        return f"{r.gb_s:.2f} GB/s"
    return f"{fmt_rate(r.msg_s)}msg/s"


def format_targets(results: Sequence[dict[str, Any]]) -> str:
    lines = []
    for e in results:
        if e["value"] is None:
            val = "n/a"
        elif e["versus"] == [MEMCPY]:
            val = f"{e['value'] * 100:.0f}%"
        else:
            val = f"{e['value']:.1f}x"
        lines.append(
            f"{e['status']:4s}  {e['name']}: {val} (required {e['required']}; issue {e['issue']})"
            f"  [{e['detail']}]"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Tables


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool],
           markdown: bool = False) -> str:
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---:" if r else "---" for r in right) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(out)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(row) for row in rows])


def fmt_x(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.2f}x" if v < 10 else f"{v:.0f}x"


def throughput_table(rows: Sequence[TputRow], *, markdown: bool = False,
                     mb: bool = False) -> str:
    """One line per (size, system); skipped and failed rows say why."""
    headers = ["size", "system", "msg/s", "MB/s" if mb else "GB/s", "spread",
               "% memcpy", "x mp.Queue", "x best peer"]
    right = [True, False, True, True, True, True, True, True]
    body: list[list[str]] = []
    for size in sorted({r.size for r in rows}):
        for r in [r for r in rows if r.size == size]:
            if not r.ok:
                # The reason is listed once per system under the table.
                body.append([fmt_size(size), r.label, r.status, "", "", "", "", ""])
                continue
            mem = find(rows, MEMCPY, size)
            pct = (f"{100 * r.msg_s / mem.msg_s:.0f}%"
                   if mem is not None and mem.ok and r.system != MEMCPY and size >= MEMCPY_FROM
                   else "-")
            if r.system == MEMCPY_RING:
                pct = f"({pct})"
            bp = best_peer(rows, size)
            xbp = "-"
            if r.family == "mmapipc" and bp is not None:
                xbp = f"{fmt_x(r.msg_s / bp.msg_s)} {bp.system}"
            xq = fmt_x(ratio(rows, r.system, BASELINE, size)) if r.family != "reference" else "-"
            bw = f"{r.msg_s * size / 1e6:,.1f}" if mb else f"{r.gb_s:.3g}"
            spread = f"±{r.spread_pct / 2:.0f}%" if len(r.reps_msg_s) > 1 else "-"
            body.append([fmt_size(size), r.label, fmt_rate(r.msg_s), bw, spread, pct, xq, xbp])
    return render(headers, body, right, markdown)


def latency_table(rows: Sequence[LatRow], *, markdown: bool = False) -> str:
    headers = ["system", "size", "p50 us", "p99 us", "p99.9 us", "p50 range", "round trips"]
    right = [False, True, True, True, True, True, True]
    body: list[list[str]] = []
    for r in rows:
        if not r.ok:
            body.append([r.label, fmt_size(r.size), r.status, "", "", "", ""])
            continue
        body.append([
            r.label, fmt_size(r.size), f"{r.p50_us:.1f}", f"{r.p99_us:.1f}", f"{r.p999_us:.1f}",
            f"{r.p50_min_us:.1f}-{r.p50_max_us:.1f}", f"{r.samples:,}",
        ])
    return render(headers, body, right, markdown)


def mpmc_table(rows: Sequence[TputRow], *, markdown: bool = False) -> str:
    """Aggregate msg/s of N producers and N consumers on one queue, per system."""
    ns = sorted({r.procs for r in rows})
    headers = ["system", "size"] + [f"{n}P/{n}C msg/s" for n in ns]
    right = [False, True] + [True] * len(ns)
    body = []
    for key in dict.fromkeys(r.system for r in rows):
        mine = {r.procs: r for r in rows if r.system == key}
        first = next(iter(mine.values()))
        cells = []
        for n in ns:
            r = mine.get(n)
            if r is None:
                cells.append("-")
            elif not r.ok:
                cells.append(r.status)
            else:
                sp = f" ±{r.spread_pct / 2:.0f}%" if len(r.reps_msg_s) > 1 else ""
                cells.append(f"{fmt_rate(r.msg_s)}{sp}")
        body.append([first.label, fmt_size(first.size)] + cells)
    return render(headers, body, right, markdown)


def fanout_table(rows: Sequence[TputRow], *, markdown: bool = False) -> str:
    """One producer, N consumers: msg/s per consumer (median, min-max of runs), and each row
    against the first mmapipc row of its size."""
    headers = ["system", "size", "consumers", "msg/s per consumer", "min-max", "vs mmapipc"]
    right = [False, True, True, True, True, True]
    body = []
    for r in rows:
        ref = next((x for x in rows if x.size == r.size and x.family == "mmapipc" and x.ok), None)
        if not r.ok:
            body.append([r.label, fmt_size(r.size), str(r.procs), r.status, r.note[:40], "-"])
            continue
        vs = f"{ref.msg_s / r.msg_s:.1f}x" if ref is not None and ref is not r else "-"
        body.append([r.label, fmt_size(r.size), str(r.procs), fmt_rate(r.msg_s),
                     f"{fmt_rate(r.min_msg_s)}-{fmt_rate(r.max_msg_s)}", vs])
    return render(headers, body, right, markdown)


def ratio_matrix(rows: Sequence[TputRow], *, markdown: bool = False) -> str:
    """Each mmapipc system against each peer, per size: msg/s ratio (>1 means mmapipc is faster)."""
    peers = [k for k in dict.fromkeys(r.system for r in rows if r.family == "peer")
             if any(r.ok for r in rows if r.system == k)]
    mine = [k for k in dict.fromkeys(r.system for r in rows if r.family == "mmapipc")
            if any(r.ok for r in rows if r.system == k)]
    if not peers or not mine:
        return ""
    headers = ["system", "size"] + [f"vs {p}" for p in peers]
    right = [False, True] + [True] * len(peers)
    body = []
    for k in mine:
        for size in sorted({r.size for r in rows}):
            cells = [fmt_x(ratio(rows, k, p, size)) for p in peers]
            if all(c == "-" for c in cells):
                continue
            body.append([k, fmt_size(size)] + cells)
    return render(headers, body, right, markdown)


# ----------------------------------------------------------------------------------------------
# Machine information, JSON, Markdown


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> Optional[str]:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu": cpu_model(),
        "pid": os.getpid(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_avg_at_start": load,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": _git_commit(),
        "versions": {d: _version(d) for d in
                     ("mmapipc", "numpy", "pyzmq", "faster-fifo", "iceoryx2", "matplotlib")},
    }


def command_line() -> str:
    args = [os.path.relpath(sys.argv[0]) if os.path.exists(sys.argv[0]) else sys.argv[0]]
    args += sys.argv[1:]
    return "python " + " ".join(args)


def ensure_parent(path: str) -> None:
    """Create the directory an output file goes into (e.g. ``bench-results/``)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)


def to_json(path: str, doc: dict[str, Any]) -> None:
    def clean(o: Any) -> Any:
        if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    ensure_parent(path)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(clean(doc), f, indent=2)
        f.write("\n")


def rows_json(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def markdown_report(
    *, tput: Sequence[TputRow], lat: Sequence[LatRow], targets: Sequence[dict[str, Any]],
    mpmc: Sequence[TputRow] = (), typed: Sequence[TputRow] = (),
    info: dict[str, Any], command: str, elapsed_s: float, plot_path: Optional[str],
    config: dict[str, Any], heading: bool = True, methods_link: str = "docs/benchmarks.md",
    sections: Sequence[tuple[str, str]] = (), notes_from: Sequence[Any] = (),
) -> str:
    """The full results of a run. ``heading``: start with a title of its own (a file alone);
    ``methods_link``: where the methodology is, relative to the file this goes into;
    ``sections``: more (title, Markdown) sections, before the ratios; ``notes_from``: more rows
    (with ``label``, ``status``, ``note``, ``ok``) whose failures are listed at the end."""
    m = info
    parts = ["## Benchmark results", ""] if heading else []
    parts += [
        f"Generated by `{command}` on {m['date_utc']} in {elapsed_s:.0f} s "
        f"(git `{m.get('git_commit') or 'unknown'}`).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['os']}, {m['implementation']} {m['python']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['load_avg_at_start']) or 'n/a'}.",
        "",
        "Producer and consumer are separate processes (multiprocessing start method "
        f"`{config.get('start_method', 'fork')}`). The producer writes a sequence number into "
        "every message, the consumer checks it (and a tail byte) on every message. "
        f"Each row is the median of {config.get('repeat')} run(s); a run is bounded by "
        f"{config.get('max_count'):,} messages, {config.get('max_bytes_mib')} MiB and "
        f"{config.get('seconds')} s, whichever comes first. Spread is ±half the min-max range "
        "of the runs. `% memcpy` compares with a single-core NumPy copy of the same size "
        "in one process (same buffers every time: cache-hot where they fit); "
        "`memcpy into ring-sized buffers` copies into as many buffers as a ring of the "
        "benchmark's capacity holds (information only). Methodology, columns and how to rerun: "
        f"[{methods_link.split('#')[0] or 'above'}]({methods_link}).",
        "",
        "### Throughput",
        "",
        throughput_table(tput, markdown=True),
        "",
    ]
    if plot_path:
        parts += [f"![throughput and latency]({plot_path})", ""]
    if lat:
        parts += ["### Round-trip latency (ping-pong, 64 B)", "", latency_table(lat, markdown=True), ""]
    if typed:
        size = typed[0].size
        parts += [f"### Typed records (market.Tick v1, {size} B) against raw bytes", "",
                  throughput_table(typed, markdown=True), ""]
    if mpmc:
        parts += ["### Many producers, many consumers (one queue, aggregate)", "",
                  mpmc_table(mpmc, markdown=True), ""]
    for title, body in sections:
        parts += [f"### {title}", "", body, ""]
    rm = ratio_matrix(tput, markdown=True)
    if rm:
        parts += ["### mmapipc against each peer (msg/s ratio, same run)", "", rm, ""]
    parts += ["### Targets (issues 3 and 4)", "", "```", format_targets(targets), "```", ""]
    notes = sorted({(r.label, r.status, r.note)
                    for r in list(tput) + list(lat) + list(mpmc) + list(typed) + list(notes_from)
                    if not r.ok})
    if notes:
        parts += ["Not measured in this run:", ""]
        parts += [f"- {label}: {status}, {note}" for label, status, note in notes]
        parts.append("")
    return "\n".join(parts)



