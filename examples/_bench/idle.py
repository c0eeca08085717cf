"""The idle rows: one process awaits 100 channels on one asyncio loop for a while and nothing is
sent; how much CPU does the process use meanwhile? (Issue 18: under 1 % of one core, that is,
no busy polling.)

mmapipc: 100 rings, a ``read_async()`` task on each. zmq.asyncio: 100 PULL sockets bound on
``ipc://``, an ``await recv()`` task on each. The measuring process is a child of its own (as
every run of the harness); the CPU is its user + system time over the measured interval, from
``resource.getrusage(RUSAGE_SELF)`` (every thread of the process: the waiter thread of mmapipc,
the I/O thread of zmq), divided by the wall time. The first 0.2 s after the tasks start are not
measured (registration, thread start).
"""

from __future__ import annotations

import asyncio
import importlib
import math
import os
import resource
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .common import BenchError, make_params, shm_dir, unique_name
from .progress import Progress
from .report import render
from .runner import run_group

#: Channels awaited at once in an idle row.
CHANNELS = 100
#: The issue's bound for mmapipc: CPU share of one core while idle.
TARGET_PCT = 1.0
#: Not measured: the tasks arm their descriptors (and mmapipc starts its waiter thread).
SETTLE_S = 0.2


@dataclass
class IdleRow:
    system: str
    label: str
    family: str  # "mmapipc" or "peer"
    channels: int
    seconds: float
    status: str = "ok"  # "ok", "skipped" or "error"
    note: str = ""
    cpu_pct: float = math.nan  # of one core, over `seconds`
    cpu_s: float = math.nan
    threads: int = 0  # of the measuring process, while it waited

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not math.isnan(self.cpu_pct)


async def _measure(seconds: float, tasks: Sequence["asyncio.Future[Any]"]) -> dict[str, Any]:
    """Sleeps `seconds` on the loop while `tasks` wait; the process's CPU time meanwhile."""
    await asyncio.sleep(SETTLE_S)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    await asyncio.sleep(seconds)
    r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - t0
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0
    done = [t for t in tasks if t.done()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if done:
        raise BenchError(f"{len(done)} of {len(tasks)} idle waits returned: nothing was sent")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"cpu_s": cpu, "wall_s": wall, "threads": threads}


class _Idle:
    """One idle row: the channels made in the parent (`setup`), awaited in a child (`role`)."""

    key = ""
    label = ""
    family = "peer"

    def setup(self, n: int) -> Any:
        raise NotImplementedError

    def teardown(self, h: Any) -> None:
        raise NotImplementedError

    def role(self, h: Any, p: Any, sync: Callable[[], None]) -> dict[str, Any]:
        raise NotImplementedError


class _MmapipcIdle(_Idle):
    key = "ring-async"
    label = "mmapipc ring asyncio"
    family = "mmapipc"

    def setup(self, n: int) -> Any:
        ring = importlib.import_module("mmapipc").SharedMemoryRing
        paths = [os.path.join(shm_dir(), unique_name(f"idle{i}")) for i in range(n)]
        for path in paths:
            ring.create(path, 4096).close()
        return paths

    def teardown(self, h: Any) -> None:
        for path in h:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def role(self, h: Any, p: Any, sync: Callable[[], None]) -> dict[str, Any]:
        ring = importlib.import_module("mmapipc").SharedMemoryRing
        sync()

        async def main() -> dict[str, Any]:
            rings = [ring.open(path) for path in h]
            try:
                return await _measure(p.seconds, [asyncio.ensure_future(r.read_async()) for r in rings])
            finally:
                for r in rings:
                    r.close()

        return asyncio.run(main())


class _ZmqIdle(_Idle):
    key = "zmq-asyncio"
    label = "zmq.asyncio ipc PULL"

    def setup(self, n: int) -> Any:
        return [os.path.join("/tmp", unique_name(f"zmq-idle{i}") + ".sock") for i in range(n)]

    def teardown(self, h: Any) -> None:
        for path in h:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def role(self, h: Any, p: Any, sync: Callable[[], None]) -> dict[str, Any]:
        zmq = importlib.import_module("zmq")
        zaio = importlib.import_module("zmq.asyncio")
        sync()

        async def main() -> dict[str, Any]:
            ctx = zaio.Context()
            socks = []
            try:
                for path in h:
                    s = ctx.socket(zmq.PULL)
                    s.setsockopt(zmq.LINGER, 0)
                    s.bind(f"ipc://{path}")
                    socks.append(s)
                return await _measure(p.seconds, [asyncio.ensure_future(s.recv()) for s in socks])
            finally:
                for s in socks:
                    s.close()
                ctx.term()

        return asyncio.run(main())


IDLE: dict[str, _Idle] = {s.key: s for s in (_MmapipcIdle(), _ZmqIdle())}


def run_idle_suite(keys: Sequence[str], seconds: float, stall: float, unavailable: Callable[[str], Optional[str]],
                   progress: Progress, channels: int = CHANNELS) -> list[IdleRow]:
    """One run per row, in its own process: `channels` channels awaited for `seconds`."""
    rows: list[IdleRow] = []
    # (The runner allows a run its seconds, the stall time and a start-up slack.)
    p = make_params(64, seconds=seconds, max_count=16, max_bytes=1 << 20, stall=stall)
    for key in keys:
        idle = IDLE[key]
        row = IdleRow(key, idle.label, idle.family, channels, seconds)
        rows.append(row)
        what = f"idle {key}, {channels} channels, {seconds:g} s"
        why = unavailable(key)
        if why:
            row.status, row.note = "skipped", why
            progress.step(what)
            continue
        progress.start(what)
        h = idle.setup(channels)
        try:
            (res,) = run_group([(idle.role, what)], h, p)
            row.cpu_s = float(res["cpu_s"])
            row.cpu_pct = 100.0 * row.cpu_s / float(res["wall_s"])
            row.threads = int(res["threads"])
        except BenchError as e:
            row.status, row.note = "error", str(e)
            progress.note(f"error {what}: {e}")
        finally:
            idle.teardown(h)
        progress.step(what)
    return rows


def idle_table(rows: Sequence[IdleRow], *, markdown: bool = False) -> str:
    """system | channels | seconds | CPU time | CPU of one core | threads | target (mmapipc)."""
    out = []
    for r in rows:
        if r.ok:
            cells = [f"{r.cpu_s * 1e3:.1f} ms", f"{r.cpu_pct:.3f} %", str(r.threads)]
        else:
            cells = [r.status, "", ""]
        target = ""
        if r.family == "mmapipc" and r.ok:
            target = f"{'PASS' if r.cpu_pct < TARGET_PCT else 'MISS'} (< {TARGET_PCT:g} %)"
        out.append([r.label, str(r.channels), f"{r.seconds:g}", *cells, target])
    return render(["system", "channels", "seconds", "CPU time", "CPU of one core", "threads", "target"],
                  out, [False, True, True, True, True, True, False], markdown=markdown)


__all__ = ["CHANNELS", "IDLE", "IdleRow", "idle_table", "run_idle_suite"]
