"""Runs a suite: every (size, system) throughput row, the memcpy reference, the ping-pong rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from .common import BenchError, fmt_size, make_params
from .progress import Progress
from .report import MEMCPY, MEMCPY_FROM, MEMCPY_RING, LatRow, TputRow
from .runner import START_METHOD, run_fanout, run_mpmc, run_pingpong, run_throughput
from .stats import latency_percentiles
from .systems import System
from .systems.memcpy import run_memcpy_apart


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


def _repeat(row: TputRow | LatRow, reps: list[Any], run: Callable[[], Any], what: str, repeat: int,
            progress: Progress) -> None:
    """``repeat`` runs of one row, their results into ``reps``; the first failed run fails the
    row (status ``error``, its reason, no results)."""
    for rep in range(repeat):
        label = f"{what} run {rep + 1}/{repeat}"
        progress.start(label)
        try:
            reps.append(run())
        except BenchError as e:
            row.status, row.note = "error", str(e)
            progress.note(f"error {what}: {e}")
            reps.clear()
            progress.done += repeat - rep - 1
            progress.step(label)
            break
        progress.step(label)
    row.finish()


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
        rows: list[tuple[System | None, TputRow]] = []
        if memcpy:
            rows.append((None, TputRow(MEMCPY, "memcpy (1 core, in-process)", "reference", size,
                                       count_bound=p.count, seconds_bound=p.seconds)))
            if size >= MEMCPY_FROM:
                rows.append((None, TputRow(MEMCPY_RING, "memcpy into ring-sized buffers",
                                           "reference", size, count_bound=p.count,
                                           seconds_bound=p.seconds)))
        for s in systems:
            row = TputRow(s.key, s.label, s.family, size, count_bound=p.count,
                          seconds_bound=p.seconds)
            rows.append((s, row))
            why = reasons[s.key] or s.too_small(size)
            if why:
                row.status, row.note = "skipped", why
                progress.step(f"{s.key} {fmt_size(size)} skipped")
        # Rounds: every system once per round, so each repetition of the systems being compared
        # (and of the memcpy reference) runs close together in time on a machine whose load moves.
        for rep in range(cfg.repeat):
            for sysm, row in rows:
                if row.status != "ok":
                    continue
                label = f"{row.system} {fmt_size(size)} run {rep + 1}/{cfg.repeat}"
                progress.start(label)
                if sysm is None:
                    footprint = p.capacity if row.system == MEMCPY_RING else 0
                    row.reps_msg_s.append(run_memcpy_apart(size, min(p.seconds, 0.5), cfg.max_bytes,
                                                     footprint)["msg_s"])
                else:
                    try:
                        row.reps_msg_s.append(run_throughput(sysm, p)["msg_s"])
                    except BenchError as e:
                        row.status, row.note = "error", str(e)
                        progress.note(f"error {sysm.key} {fmt_size(size)}: {e}")
                        row.reps_msg_s.clear()
                        progress.step(label)
                        progress.done += cfg.repeat - rep - 1  # its remaining runs
                        continue
                progress.step(label)
        for _, row in rows:
            row.finish()
            tput.append(row)

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
            _repeat(lrow, lrow.reps, lambda: latency_percentiles(run_pingpong(s, p)),
                    f"ping-pong {s.key}", cfg.repeat, progress)
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
            _repeat(row, row.reps_msg_s, lambda: run_mpmc(s, p, n, n)["msg_s"],
                    f"{s.key} {n}P/{n}C", cfg.repeat, progress)
    return rows


def run_fanout_suite(
    systems: Sequence[System], sizes: Sequence[int], consumers: int, cfg: SuiteConfig, *,
    progress: Progress,
) -> list[TputRow]:
    """One producer, ``consumers`` consumer processes of one channel, per size: msg/s per
    consumer. Rounds as in ``run_suite``: each system once per round."""
    rows: list[TputRow] = []
    for size in sizes:
        single, batched = (make_params(size, seconds=cfg.seconds, max_count=cfg.max_count,
                                       max_bytes=cfg.max_bytes, stall=cfg.stall, batch=b)
                           for b in (1, cfg.batch))
        mine: list[tuple[System, TputRow]] = []
        for s in systems:
            p = batched if s.batched else single
            row = TputRow(s.key, s.label, s.family, size, count_bound=p.count,
                          seconds_bound=p.seconds, procs=consumers)
            rows.append(row)
            why = s.unavailable()
            if why:
                row.status, row.note = "skipped", why
                progress.step(f"fan-out {s.key} {fmt_size(size)} skipped")
            else:
                mine.append((s, row))
        for rep in range(cfg.repeat):
            for s, row in mine:
                if row.status != "ok":
                    continue
                label = f"fan-out {s.key} {fmt_size(size)} x{consumers} run {rep + 1}/{cfg.repeat}"
                progress.start(label)
                try:
                    p = batched if s.batched else single
                    row.reps_msg_s.append(run_fanout(s, p, consumers)["msg_s"])
                except BenchError as e:
                    row.status, row.note = "error", str(e)
                    progress.note(f"error {label}: {e}")
                    row.reps_msg_s.clear()
                    progress.done += cfg.repeat - rep - 1
                progress.step(label)
        for _, row in mine:
            row.finish()
    return rows


def steps(systems: Sequence[System], sizes: Sequence[int], lat_systems: Sequence[System],
          memcpy: bool, repeat: int, mpmc_systems: Sequence[System] = (),
          procs: Sequence[int] = ()) -> int:
    """Progress steps: one per run, one per skipped row."""

    def per_row(s: System, size: int = 0) -> int:
        return 1 if s.unavailable() or s.too_small(size) else repeat

    refs = sum((2 if size >= MEMCPY_FROM else 1) for size in sizes) if memcpy else 0
    return (sum(per_row(s, size) for size in sizes for s in systems) + refs * repeat
            + sum(per_row(s) for s in lat_systems)
            + len(procs) * sum(per_row(s) for s in mpmc_systems))
