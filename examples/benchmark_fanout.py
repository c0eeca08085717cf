"""Fan-out benchmark: one publisher, N subscriber processes, each receiving every message.

Rows (messages delivered per subscriber per second, median of --runs):

* ``topic``: ``SharedMemoryTopic.publish`` / ``TopicSubscriber.recv`` (64 B), N = 1 and 4;
* ``zmq``: pyzmq PUB/SUB over ``ipc://`` with N subscribers (skipped when pyzmq is missing);
* ``iceoryx2``: iceoryx2 publish-subscribe with N subscribers (skipped when missing);
* ``8MiB``: 8 MiB frames to 2 subscribers reading ``recv_view`` (frames per second), against
  writing each frame into 2 separate rings read with ``read_view``.

The issue-17 targets: topic 64 B, 4 subscribers >= 5x iceoryx2 and >= 10x pyzmq; 8 MiB topic
>= 2x the two rings. Run: ``python examples/benchmark_fanout.py [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid
from typing import Any, Callable

from mmapipc import SharedMemoryRing, SharedMemoryTopic


def _path(tag: str) -> str:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return os.path.join(base, f"mmapipc-fanout-{tag}-{uuid.uuid4().hex[:8]}")


def _topic_sub(path: str, n: int, ready: Any, out: Any, view: bool) -> None:
    with SharedMemoryTopic.open(path) as t, t.subscribe() as s:
        ready.set()
        recv = s.recv_view if view else s.recv
        m = recv(timeout=60.0)
        t0 = time.perf_counter()
        for _ in range(n - 1):
            m = recv(timeout=60.0)
            assert m is not None
        out.put(time.perf_counter() - t0)


def _ring_sub(path: str, n: int, ready: Any, out: Any) -> None:
    with SharedMemoryRing.open(path) as r:
        ready.set()
        r.read_view(True, 60.0)
        t0 = time.perf_counter()
        for _ in range(n - 1):
            assert r.read_view(True, 60.0) is not None
        out.put(time.perf_counter() - t0)


def _zmq_sub(addr: str, n: int, ready: Any, out: Any) -> None:
    zmq = importlib.import_module("zmq")
    ctx = zmq.Context()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.RCVHWM, 0)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    s.connect(addr)
    s.recv()  # the first probe proves the subscription
    ready.set()
    while s.recv() != b"start":
        pass
    t0 = time.perf_counter()
    for _ in range(n):
        s.recv()
    out.put(time.perf_counter() - t0)
    s.close()
    ctx.term()


def _spawn(target: Callable[..., None], args: tuple[Any, ...], subs: int) -> tuple[list[Any], Any]:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = []
    for _ in range(subs):
        ready = ctx.Event()
        full = (*args, ready, out) if target is not _topic_sub else (*args[:2], ready, out, args[2])
        p = ctx.Process(target=target, args=full)
        p.start()
        if target is not _zmq_sub:
            assert ready.wait(60)
        procs.append((p, ready))
    return procs, out


def _finish(procs: list[Any], out: Any, n: int) -> float:
    times: list[float] = [float(out.get(timeout=300)) for _ in procs]
    for p, _ in procs:
        p.join(60)
    return (n - 1) / max(times)


def topic_rate(subs: int, n: int, size: int, view: bool = False) -> float:
    path = _path("topic")
    with SharedMemoryTopic.create(path, capacity=max(1 << 20, 4 * (size + 16)), max_subscribers=16) as t:
        procs, out = _spawn(_topic_sub, (path, n, view), subs)
        msg = bytes(size)
        if size >= 1 << 20:
            for _ in range(n):
                t.publish(msg, timeout=60.0)
        else:
            batch = [msg] * 64
            left = n
            while left > 0:
                k = min(64, left)
                left -= t.publish_batch(batch[:k], timeout=60.0)
        rate = _finish(procs, out, n)
        t.unlink()
    return rate


def rings_rate(rings: int, n: int, size: int) -> float:
    paths = [_path("ring") for _ in range(rings)]
    handles = [SharedMemoryRing.create(p, 4 * (size + 16)) for p in paths]
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = []
    for p in paths:
        ready = ctx.Event()
        proc = ctx.Process(target=_ring_sub, args=(p, n, ready, out))
        proc.start()
        assert ready.wait(60)
        procs.append((proc, ready))
    msg = bytes(size)
    for _ in range(n):
        for h in handles:
            assert h.write(msg, True, 60.0)
    rate = _finish(procs, out, n)
    for h in handles:
        h.unlink()
        h.close()
    return rate


def zmq_rate(subs: int, n: int, size: int) -> float | None:
    try:
        zmq = importlib.import_module("zmq")
    except ImportError:
        return None
    addr = f"ipc://{_path('zmq')}.sock"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.bind(addr)
    procs, out = _spawn(_zmq_sub, (addr, n), subs)
    while not all(r.is_set() for _, r in procs):
        pub.send(b"probe")
        time.sleep(0.01)
    pub.send(b"start")
    msg = bytes(size)
    for _ in range(n):
        pub.send(msg)
    rate = _finish(procs, out, n + 1)
    pub.close()
    ctx.term()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages, one run")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    runs = 1 if a.quick else a.runs
    n64 = 20_000 if a.quick else 200_000
    n8 = 20 if a.quick else 200

    def med(f: Callable[[], float | None]) -> float | None:
        got = [f() for _ in range(runs)]
        vals = [g for g in got if g is not None]
        return statistics.median(vals) if vals else None

    rows: list[tuple[str, float | None]] = [
        ("topic 64 B, 1 subscriber", med(lambda: topic_rate(1, n64, 64))),
        ("topic 64 B, 4 subscribers", med(lambda: topic_rate(4, n64, 64))),
        ("pyzmq PUB/SUB ipc 64 B, 4 subscribers", med(lambda: zmq_rate(4, n64, 64))),
        ("topic 8 MiB, 2 subscribers (recv_view)", med(lambda: topic_rate(2, n8, 8 << 20, view=True))),
        ("2 rings 8 MiB (write each, read_view)", med(lambda: rings_rate(2, n8, 8 << 20))),
    ]
    for name, rate in rows:
        print(f"{name:<44} {'skipped (not installed)' if rate is None else f'{rate:>12,.0f} /s per subscriber'}")
    t4, z4 = rows[1][1], rows[2][1]
    if t4 and z4:
        print(f"topic / pyzmq at 4 subscribers: {t4 / z4:.1f}x (target >= 10x)")
    t8, r8 = rows[3][1], rows[4][1]
    if t8 and r8:
        print(f"topic views / 2 rings at 8 MiB: {t8 / r8:.2f}x (target >= 2x)")
    print("iceoryx2 with 4 subscribers: not measured by this script")


if __name__ == "__main__":
    main()
