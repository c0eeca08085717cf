"""Charts: throughput vs message size per system (log-log) and latency percentiles."""

from __future__ import annotations

import importlib
import math
from typing import Any, Optional, Sequence

from .common import fmt_size
from .report import MEMCPY, MEMCPY_FROM, LatRow, TputRow, ensure_parent


def plot(path: str, tput: Sequence[TputRow], lat: Sequence[LatRow], title: str) -> Optional[str]:
    """Write the chart to ``path``; return None, or why nothing was drawn."""
    try:  # imported by name so the harness type-checks without the bench extra
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt: Any = importlib.import_module("matplotlib.pyplot")
        ticker: Any = importlib.import_module("matplotlib.ticker")
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no chart written"

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    systems = list(dict.fromkeys(r.system for r in tput))
    for key in systems:
        # Below MEMCPY_FROM a NumPy copy measures call overhead, not bandwidth: not drawn.
        pts = sorted(((r.size, r.gb_s, r.min_msg_s * r.size / 1e9, r.max_msg_s * r.size / 1e9, r)
                      for r in tput if r.system == key and r.ok
                      and (r.family != "reference" or r.size >= MEMCPY_FROM)),
                     key=lambda t: t[0])
        if not pts:
            continue
        row: TputRow = pts[0][4]
        xs = [p[0] for p in pts]
        ys = [p[1] for p in pts]
        style: dict[str, Any] = {"marker": "o", "linewidth": 1.6, "markersize": 4}
        if key == MEMCPY:
            style.update(linestyle="--", color="black", marker="")
        elif row.family == "reference":
            style.update(linestyle="-.", color="grey", marker="")
        elif row.family == "peer":
            style.update(linestyle=":", alpha=0.85)
        else:
            style.update(linewidth=2.2)
        label = row.label + (f" (from {fmt_size(MEMCPY_FROM)})" if key == MEMCPY else "")
        ax1.plot(xs, ys, label=label, **style)
        lo = [p[2] for p in pts]
        hi = [p[3] for p in pts]
        if any(not math.isnan(v) for v in lo + hi):
            ax1.fill_between(xs, lo, hi, alpha=0.12)
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    sizes = sorted({r.size for r in tput})
    ax1.set_xticks(sizes)
    ax1.set_xticklabels([fmt_size(s) for s in sizes])
    ax1.set_xlabel("message size")
    ax1.set_ylabel("throughput, GB/s (median; band = min..max)")
    ax1.set_title("Throughput, producer -> consumer process")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7, loc="lower right")

    ok = [r for r in lat if r.ok]
    if ok:
        labels = [r.label for r in ok]
        rows_y = list(range(len(ok)))
        for q, name, mk in (("p50_us", "p50", "o"), ("p99_us", "p99", "s"), ("p999_us", "p99.9", "^")):
            ax2.scatter([getattr(r, q) for r in ok], rows_y, label=name, marker=mk)
        ax2.set_yticks(rows_y)
        ax2.set_yticklabels(labels, fontsize=8)
        ax2.set_xscale("log")
        ax2.xaxis.set_major_formatter(ticker.ScalarFormatter())
        ax2.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax2.set_xlabel("round trip, microseconds (64 B ping-pong)")
        ax2.set_title("Latency percentiles")
        ax2.grid(True, which="both", axis="x", alpha=0.3)
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "no latency measured", ha="center", va="center")
        ax2.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    ensure_parent(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None
