"""Process orchestration: one producer and one consumer process per run, a barrier, a watchdog.

Start method: ``fork`` (Linux). The parent sets up the channel (creates the file, the queue, the
socket address), forks two children, and each child reports one result through its own pipe.
Children die with the parent (``PR_SET_PDEATHSIG``), ignore Ctrl-C (the parent handles it), and
are terminated, then killed, when a run ends in any way; shared-memory files are unlinked.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import threading
import traceback
from multiprocessing.process import BaseProcess
from time import monotonic
from typing import Any, Callable, Sequence

from .common import BenchError, Params, die_with_parent
from .systems import Result, Sync, System

START_METHOD = "fork"
CTX = mp.get_context("fork")
#: Extra seconds a run may take beyond its time bound before the watchdog kills it.
STARTUP_SLACK = 20.0

_LIVE: set[BaseProcess] = set()
#: Pin the i-th process of a run to CPU i (modulo the CPUs this process may use): ``--pin``.
PIN = False

Role = Callable[[Any, Params, Sync], Result]


def _kill(procs: list[BaseProcess]) -> None:
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        _LIVE.discard(proc)


def kill_all_children() -> None:
    """Terminate every benchmark child still running (Ctrl-C, error, exit)."""
    _kill(list(_LIVE))


atexit.register(kill_all_children)


def _child(role: Role, h: Any, p: Params, conn: Any, barrier: Any, cpu: int | None) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    def sync() -> None:
        barrier.wait(STARTUP_SLACK + p.stall)

    try:
        res = role(h, p, sync)
        conn.send(("ok", res))
    except BaseException as e:  # report everything, including a broken barrier
        try:
            barrier.abort()
        except Exception:
            pass
        tb = traceback.format_exc(limit=4)
        conn.send(("err", f"{type(e).__name__}: {e}", tb))
    finally:
        conn.close()


def run_group(roles: Sequence[tuple[Role, str]], h: Any, p: Params) -> list[Result]:
    """Run each role in its own process; return their results in order, or raise BenchError."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_group must be called from the main thread")
    names = [name for _, name in roles]
    barrier = CTX.Barrier(len(roles))
    conns: list[Any] = []
    procs: list[BaseProcess] = []
    try:
        cpus = sorted(os.sched_getaffinity(0)) if PIN and hasattr(os, "sched_getaffinity") else []
        for i, (role, _name) in enumerate(roles):
            r, w = CTX.Pipe(duplex=False)
            cpu = cpus[i % len(cpus)] if cpus else None
            proc = CTX.Process(target=_child, args=(role, h, p, w, barrier, cpu), daemon=True)
            proc.start()
            _LIVE.add(proc)
            w.close()
            conns.append(r)
            procs.append(proc)
        results: dict[int, Result] = {}
        limit = p.seconds + p.stall + STARTUP_SLACK
        deadline = monotonic() + limit
        while len(results) < len(roles):
            left = deadline - monotonic()
            if left <= 0:
                hung = [names[i] for i in range(len(roles)) if i not in results]
                raise BenchError(f"no result after {limit:.0f} s: {' and '.join(hung)} hung")
            ready = mpc.wait([c for i, c in enumerate(conns) if i not in results], timeout=left)
            for c in ready:
                i = conns.index(c)
                try:
                    msg: Any = conns[i].recv()
                except EOFError:
                    procs[i].join(1.0)
                    raise BenchError(
                        f"{names[i]} died without a result (exit code {procs[i].exitcode})"
                    ) from None
                if msg[0] != "ok":
                    raise BenchError(f"{names[i]} failed: {msg[1]}")
                results[i] = msg[1]
        for done in procs:
            done.join(5.0)
        return [results[i] for i in range(len(roles))]
    finally:
        _kill(procs)
        for c in conns:
            c.close()


def run_pair(a: Role, b: Role, h: Any, p: Params, names: tuple[str, str]) -> tuple[Result, Result]:
    """Run roles ``a`` and ``b`` in two processes; return their results or raise BenchError."""
    ra, rb = run_group([(a, names[0]), (b, names[1])], h, p)
    return ra, rb


def run_mpmc(system: System, p: Params, producers: int, consumers: int) -> dict[str, Any]:
    """Aggregate throughput of ``producers`` x ``consumers`` processes on one queue."""
    h = system.setup(p)
    roles: list[tuple[Role, str]] = [
        (functools.partial(system.mp_produce, producer=i), f"producer {i}") for i in range(producers)
    ]
    roles += [(system.mp_consume, f"consumer {i}") for i in range(consumers)]
    try:
        res = run_group(roles, h, p)
    finally:
        system.teardown(h)
    sent = sum(int(r["sent"]) for r in res[:producers])
    received = sum(int(r["received"]) for r in res[producers:])
    if sent != received:
        raise BenchError(f"producers sent {sent} messages, consumers received {received}")
    secs = max(float(r["t_end"]) for r in res[producers:]) - min(
        float(r["t0"]) for r in res[:producers])
    rate = received / secs
    return {"msgs": received, "seconds": secs, "msg_s": rate, "gb_s": rate * p.size / 1e9}


def run_fanout(system: System, p: Params, consumers: int) -> dict[str, Any]:
    """One producer and ``consumers`` consumer processes of one channel, each receiving every
    message: messages per second per consumer (the slowest one's, after its warm-up)."""
    h = system.fanout_setup(p, consumers)
    roles: list[tuple[Role, str]] = [(system.produce, "producer")]
    roles += [(functools.partial(system.fan_consume, consumer=i), f"consumer {i}")
              for i in range(consumers)]
    try:
        res = run_group(roles, h, p)
    finally:
        system.teardown(h)
    sent = int(res[0]["sent"])
    rates = []
    for i, cons in enumerate(res[1:]):
        received = int(cons["received"])
        if received != sent:
            raise BenchError(f"producer sent {sent} messages, consumer {i} received {received}")
        n_warm = int(cons.get("n_warm", p.warm))
        if received > n_warm and cons["t_warm"] > 0:
            msgs, secs = received - n_warm, float(cons["t_end"]) - float(cons["t_warm"])
        else:
            msgs, secs = received, float(cons["t_end"]) - float(res[0]["t0"])
        if secs <= 0 or msgs <= 0:
            raise BenchError(f"consumer {i} timed no messages")
        rates.append(msgs / secs)
    rate = min(rates)
    return {"msgs": sent, "msg_s": rate, "gb_s": rate * p.size / 1e9}


def run_throughput(system: System, p: Params) -> dict[str, Any]:
    """One throughput run: messages per second from the consumer's view, after the warm-up."""
    h = system.setup(p)
    try:
        prod, cons = run_pair(system.produce, system.consume, h, p, ("producer", "consumer"))
    finally:
        system.teardown(h)
    sent, received = int(prod["sent"]), int(cons["received"])
    if sent != received:
        raise BenchError(f"producer sent {sent} messages, consumer received {received}")
    n_warm = int(cons.get("n_warm", p.warm))
    if received > n_warm and cons["t_warm"] > 0:
        msgs = received - n_warm
        secs = float(cons["t_end"]) - float(cons["t_warm"])
    else:  # too few messages for a warm-up: time from the producer's start
        msgs = received
        secs = float(cons["t_end"]) - float(prod["t0"])
    if secs <= 0 or msgs <= 0:
        raise BenchError("no messages were timed")
    rate = msgs / secs
    return {"msgs": msgs, "seconds": secs, "msg_s": rate, "gb_s": rate * p.size / 1e9}


def run_pingpong(system: System, p: Params) -> list[int]:
    """One ping-pong run: the client's round-trip times in nanoseconds (after the warm-up)."""
    h = system.pp_setup(p)
    try:
        _srv, cli = run_pair(system.pp_server, system.pp_client, h, p, ("server", "client"))
    finally:
        system.pp_teardown(h)
    rtts: list[int] = cli["rtt_ns"]
    if not rtts:
        raise BenchError("no round trips were timed")
    return rtts


def install_sigterm_handler() -> None:
    """Turn SIGTERM into KeyboardInterrupt in the parent so ``finally`` blocks clean up."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if os.name == "posix":
        signal.signal(signal.SIGTERM, handler)
