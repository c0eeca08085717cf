"""Runs a suite: every (size, system) throughput row, the memcpy reference, the ping-pong rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from .common import BenchError, fmt_size, make_params
from .progress import Progress
from .report import MEMCPY, LatRow, TputRow
from .runner import START_METHOD, run_memcpy, run_mpmc, run_pingpong, run_throughput
from .stats import latency_percentiles
from .systems import System


@dataclass(frozen=True)
class SuiteConfig:
    repeat: int
    seconds: float  # time bound of one throughput run
    max_count: int  # message bound of one throughput run
    max_bytes: int  # byte bound of one throughput run
    stall: float  # a blocking call waiting this long fails the run
    batch: int
    lat_seconds: float
    lat_count: int
    lat_size: int = 64

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_bytes_mib"] = self.max_bytes // (1 << 20)
        d["start_method"] = START_METHOD
        return d


def run_suite(
    systems: Sequence[System],
    sizes: Sequence[int],
    lat_systems: Sequence[System],
    cfg: SuiteConfig,
    *,
    memcpy: bool,
    progress: Progress,
) -> tuple[list[TputRow], list[LatRow]]:
    tput: list[TputRow] = []
    lat: list[LatRow] = []
    reasons = {s.key: s.unavailable() for s in list(systems) + list(lat_systems)}
    for key, why in reasons.items():
        if why:
            progress.note(f"skip {key}: {why}")

    for size in sizes:
        p = make_params(size, seconds=cfg.seconds, max_count=cfg.max_count,
                        max_bytes=cfg.max_bytes, stall=cfg.stall, batch=cfg.batch)
        mrow: TputRow | None = None
        if memcpy:
            # Measured before and after this size's systems (half the runs each), so a machine
            # that gets busier or quieter in between moves the reference too.
            mrow = TputRow(MEMCPY, "memcpy (1 core, in-process)", "reference", size,
                           count_bound=p.count, seconds_bound=p.seconds)
            progress.start(f"memcpy {fmt_size(size)}")
            for _ in range((cfg.repeat + 1) // 2):
                mrow.reps_msg_s.append(
                    run_memcpy(size, min(p.seconds, 0.5), cfg.max_bytes)["msg_s"])
            tput.append(mrow)
        for s in systems:
            row = TputRow(s.key, s.label, s.family, size, count_bound=p.count,
                          seconds_bound=p.seconds)
            tput.append(row)
            why = reasons[s.key]
            if why:
                row.status, row.note = "skipped", why
                progress.step(f"{s.key} {fmt_size(size)} skipped")
                continue
            for rep in range(cfg.repeat):
                progress.start(f"{s.key} {fmt_size(size)} run {rep + 1}/{cfg.repeat}")
                try:
                    row.reps_msg_s.append(run_throughput(s, p)["msg_s"])
                except BenchError as e:
                    row.status, row.note = "error", str(e)
                    progress.note(f"error {s.key} {fmt_size(size)}: {e}")
                    break
            row.finish()
            progress.step(f"{s.key} {fmt_size(size)}")
        if mrow is not None:
            progress.start(f"memcpy {fmt_size(size)}")
            for _ in range(max(1, cfg.repeat // 2)):
                mrow.reps_msg_s.append(
                    run_memcpy(size, min(p.seconds, 0.5), cfg.max_bytes)["msg_s"])
            mrow.finish()
            progress.step(f"memcpy {fmt_size(size)}")

    if lat_systems:
        p = make_params(cfg.lat_size, seconds=cfg.lat_seconds, max_count=cfg.lat_count,
                        max_bytes=1 << 62, stall=cfg.stall, batch=1)
        for s in lat_systems:
            lrow = LatRow(s.key, s.label, s.family, cfg.lat_size)
            lat.append(lrow)
            why = reasons[s.key]
            if why:
                lrow.status, lrow.note = "skipped", why
                progress.step(f"ping-pong {s.key} skipped")
                continue
            for rep in range(cfg.repeat):
                progress.start(f"ping-pong {s.key} run {rep + 1}/{cfg.repeat}")
                try:
                    lrow.reps.append(latency_percentiles(run_pingpong(s, p)))
                except BenchError as e:
                    lrow.status, lrow.note = "error", str(e)
                    progress.note(f"error ping-pong {s.key}: {e}")
                    break
            lrow.finish()
            progress.step(f"ping-pong {s.key}")
    return tput, lat


def run_mpmc_suite(
    systems: Sequence[System], procs: Sequence[int], cfg: SuiteConfig, *, size: int,
    progress: Progress,
) -> list[TputRow]:
    """N producers and N consumers on one queue, for each N in ``procs``."""
    rows: list[TputRow] = []
    p = make_params(size, seconds=cfg.seconds, max_count=cfg.max_count,
                    max_bytes=cfg.max_bytes, stall=cfg.stall, batch=1)
    for s in systems:
        why = s.unavailable()
        for n in procs:
            row = TputRow(s.key, s.label, s.family, size, count_bound=p.count,
                          seconds_bound=p.seconds, procs=n)
            rows.append(row)
            if why:
                row.status, row.note = "skipped", why
                progress.step(f"{s.key} {n}P/{n}C skipped")
                continue
            for rep in range(cfg.repeat):
                progress.start(f"{s.key} {n}P/{n}C run {rep + 1}/{cfg.repeat}")
                try:
                    row.reps_msg_s.append(run_mpmc(s, p, n, n)["msg_s"])
                except BenchError as e:
                    row.status, row.note = "error", str(e)
                    progress.note(f"error {s.key} {n}P/{n}C: {e}")
                    break
            row.finish()
            progress.step(f"{s.key} {n}P/{n}C")
    return rows


def steps(systems: Sequence[System], sizes: Sequence[int], lat_systems: Sequence[System],
          memcpy: bool, mpmc_runs: int = 0) -> int:
    return len(sizes) * (len(systems) + (1 if memcpy else 0)) + len(lat_systems) + mpmc_runs
