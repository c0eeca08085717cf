"""Soak test: a mixed workload on every primitive for a set time, reporting throughput over time
and the resources of every process at start and end.

    python examples/soak.py --duration 600          # ten minutes
    python examples/soak.py --duration 20 --json soak.json

Workload (all at once, each pair in its own processes):
* a ring: one producer writing messages of random size (0..64 KiB) with a sequence number and a
  checksum, one consumer verifying both;
* a queue: two producers and two consumers, messages of random size (0..4 KiB), every message
  checked and counted exactly once at the end;
* a raw region: handles opened, written, read and closed in a loop (open/close churn).

Every `--interval` seconds it prints one line: messages/s and MB/s for the ring and the queue in
that interval, and RSS and open file descriptors of the whole process tree. At the end it prints
the start and end RSS and fd counts, and fails (exit 1) on any lost, duplicated or corrupt
message, or on a leak of descriptors or memory.

Leak check. A leak grows with the work done; noise does not. The resources of the process tree
are sampled many times (about every 0.2 s, at most 200 samples a run), each sample the lowest of a
few readings taken back to back (a descriptor that one operation holds for an instant is not
counted), against the number of operations done so far (ring and queue messages and region
open/close cycles). A resource leaks if:

* its growth over the run, at the Theil-Sen slope (the median of the slopes between every pair of
  samples, which a minority of odd samples cannot move), exceeds an allowance (4 descriptors,
  16 MiB), and
* it grows in both halves of the run: a one-time step (a buffer allocated once, a file opened
  lazily, the shared pages of a channel touched for the first time) grows in one.

`--inject-leak` makes the region churn leak a descriptor and 1 MiB every 10 cycles (and pace
itself to at most 500 cycles a second): the check must then fail (the suite runs it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import struct
import sys
import tempfile
import time
import zlib
from typing import Any, Sequence

from mmapipc import SharedMemory, SharedMemoryQueue, SharedMemoryRing

HEADER = struct.Struct("<QQI")  # producer id, sequence, crc32 of the payload


def make(pid: int, seq: int, rng: random.Random, max_size: int) -> bytes:
    body = rng.randbytes(rng.randrange(0, max_size))
    return HEADER.pack(pid, seq, zlib.crc32(body)) + body


def check(msg: bytes | memoryview) -> tuple[int, int]:
    pid, seq, crc = HEADER.unpack_from(msg, 0)
    if zlib.crc32(bytes(msg[HEADER.size :])) != crc:
        raise SystemExit(f"corrupt message from producer {pid}, seq {seq}")
    return pid, seq


def started(ready: Any) -> None:
    """Counts this worker in: the resources are measured once every worker is at work."""
    with ready.get_lock():
        ready.value += 1


def ring_producer(path: str, ready: Any, stop: Any, counter: Any) -> None:
    rng = random.Random(1)
    with SharedMemoryRing.open(path) as ring:
        started(ready)
        seq = 0
        while not stop.is_set():
            if ring.write(make(0, seq, rng, 64 * 1024), block=True, timeout=0.5):
                seq += 1
        counter.value = seq


def ring_consumer(path: str, ready: Any, stop: Any, stats: Any) -> None:
    expect = 0
    with SharedMemoryRing.open(path) as ring:
        started(ready)
        while True:
            msg = ring.read(block=True, timeout=0.5)
            if msg is None:
                if stop.is_set():
                    break
                continue
            _, seq = check(msg)
            if seq != expect:
                raise SystemExit(f"ring: expected seq {expect}, got {seq}")
            expect += 1
            with stats.get_lock():
                stats[0] += 1
                stats[1] += len(msg)


def queue_producer(path: str, ready: Any, pid: int, stop: Any, counter: Any) -> None:
    rng = random.Random(100 + pid)
    with SharedMemoryQueue.open(path) as q:
        started(ready)
        seq = 0
        while not stop.is_set():
            batch = [make(pid, seq + i, rng, 4096) for i in range(16)]
            n = q.put_batch(batch, block=True, timeout=0.5)
            seq += n
        counter.value = seq


def queue_consumer(path: str, ready: Any, stop: Any, stats: Any, result: Any) -> None:
    last: dict[int, int] = {}
    count = 0
    with SharedMemoryQueue.open(path) as q:
        started(ready)
        while True:
            msgs = q.get_batch(64, block=True, timeout=0.5)
            if not msgs:
                if stop.is_set():
                    break
                continue
            for m in msgs:
                pid, seq = check(m)
                if seq <= last.get(pid, -1):
                    raise SystemExit(f"queue: producer {pid} seq {seq} out of order or duplicated")
                last[pid] = seq
            count += len(msgs)
            with stats.get_lock():
                stats[0] += len(msgs)
                stats[1] += sum(len(m) for m in msgs)
    result.put(count)


def churn(path: str, ready: Any, stop: Any, cycles: Any, inject_leak: bool) -> None:
    leaked: list[Any] = []
    i = 0
    started(ready)
    while not stop.is_set():
        with SharedMemory.open(path) as shm:
            shm.write_uint(8 * (i % 100), i)
            view = shm.get_view(0, 64)
            view.release()
        i += 1
        if i % 64 == 0:
            cycles.value = i
        if inject_leak:
            if i % 10 == 0:
                leaked.append(os.open(path, os.O_RDONLY))  # never closed
                leaked.append(b"\x01" * (1 << 20))  # never freed, every page touched
            time.sleep(0.002)


def tree_resources(pids: list[int]) -> tuple[int, int]:
    """(RSS in KiB, open fds) summed over `pids`."""
    rss = fds = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return rss, fds


def floor_resources(pids: list[int], readings: int = 3) -> tuple[int, int]:
    """The lowest RSS and fd counts of a few readings taken back to back."""
    got = [tree_resources(pids) for _ in range(readings)]
    return min(r for r, _ in got), min(f for _, f in got)


def theil_sen(points: Sequence[tuple[float, float]]) -> float:
    """The median of the slopes between every pair of points with distinct x (0 if none)."""
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for (x2, y2) in points[i + 1 :] if x2 != x1]
    return statistics.median(slopes) if slopes else 0.0


def leak(points: Sequence[tuple[float, float]], allowance: float) -> float | None:
    """The growth of a resource over the run if it is a leak, else None.

    `points` are (operations done so far, resource) samples in time order. A leak grows in
    proportion to the operations: its Theil-Sen growth over the run exceeds `allowance`, and it
    grows in the first half of the samples and in the second (a one-time step grows in one).
    Fewer than 6 samples never count as a leak (too few to tell).
    """
    if len(points) < 6:
        return None
    span = points[-1][0] - points[0][0]
    growth = theil_sen(points) * span
    half = len(points) // 2
    steady = theil_sen(points[:half]) > 0 and theil_sen(points[half:]) > 0
    return growth if growth > allowance and steady else None


# What the leak check allows, per resource: (index in a sample, allowance, unit, scale to unit).
LEAK_CHECKS = {"fds": (2, 4.0, "descriptors", 1.0), "RSS": (1, 16 * 1024.0, "MiB", 1 / 1024)}


def leak_report(samples: Sequence[tuple[float, int, int]]) -> list[str]:
    """One line per resource; a line starting with LEAK for each leak."""
    lines = []
    ops = samples[-1][0] - samples[0][0] if samples else 0
    for name, (idx, allowance, unit, scale) in LEAK_CHECKS.items():
        grew = leak([(s[0], float(s[idx])) for s in samples], allowance)
        if grew is None:
            lines.append(f"leak check: {name}: no leak ({len(samples)} samples over {ops:,.0f} operations)")
        else:
            lines.append(
                f"LEAK: {name} grew by {grew * scale:.1f} {unit} over {ops:,.0f} operations, steadily "
                f"(allowance {allowance * scale:.0f} {unit})"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between report lines")
    ap.add_argument("--json", help="write the time series and summary here")
    ap.add_argument("--inject-leak", action="store_true", help="leak in the region churn (tests the leak check)")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    d = tempfile.mkdtemp(prefix="mmapipc-soak-")
    ring_path, queue_path, shm_path = (os.path.join(d, n) for n in ("ring", "queue", "shm"))
    ring = SharedMemoryRing.create(ring_path, 1 << 20)
    queue = SharedMemoryQueue.create(queue_path, 1 << 20)
    shm = SharedMemory.create(shm_path, 4096)
    stop = ctx.Event()
    ring_stats = ctx.Array("d", 2)
    queue_stats = ctx.Array("d", 2)
    ring_sent = ctx.Value("q", 0)
    queue_sent = [ctx.Value("q", 0) for _ in range(2)]
    churn_cycles = ctx.RawValue("q", 0)  # one writer
    ready = ctx.Value("i", 0)
    results: Any = ctx.Queue()
    procs = [
        ctx.Process(target=ring_producer, args=(ring_path, ready, stop, ring_sent)),
        ctx.Process(target=ring_consumer, args=(ring_path, ready, stop, ring_stats)),
        *[ctx.Process(target=queue_producer, args=(queue_path, ready, i, stop, queue_sent[i])) for i in range(2)],
        *[ctx.Process(target=queue_consumer, args=(queue_path, ready, stop, queue_stats, results)) for _ in range(2)],
        ctx.Process(target=churn, args=(shm_path, ready, stop, churn_cycles, args.inject_leak)),
    ]
    for p in procs:
        p.start()
    # The first resource reading waits for every worker to be at work (a process still starting
    # grows, which is no leak); a worker that fails to start ends the run.
    deadline = time.monotonic() + 120
    while ready.value < len(procs):
        if any(p.exitcode is not None for p in procs) or time.monotonic() > deadline:
            stop.set()
            raise SystemExit(f"only {ready.value} of {len(procs)} workers started")
        time.sleep(0.05)
    pids = [os.getpid()] + [p.pid for p in procs if p.pid is not None]

    def sample() -> tuple[float, int, int]:
        ops = ring_stats[0] + queue_stats[0] + churn_cycles.value
        rss, fds = floor_resources(pids)
        return ops, rss, fds

    samples = [sample()]
    start_res = samples[0][1:]
    sample_every = max(0.2, args.duration / 200)
    series: list[dict[str, float]] = []
    t0 = time.monotonic()
    prev = (0.0, 0.0, 0.0, 0.0, t0)
    print(f"soak: {args.duration:.0f} s; start: RSS {start_res[0] / 1024:.1f} MiB, {start_res[1]} fds", flush=True)
    try:
        while (now := time.monotonic()) - t0 < args.duration:
            report_at = min(now + args.interval, t0 + args.duration)
            while (now := time.monotonic()) < report_at:
                time.sleep(min(sample_every, report_at - now))
                samples.append(sample())
            now = time.monotonic()
            rm, rb, qm, qb = ring_stats[0], ring_stats[1], queue_stats[0], queue_stats[1]
            dt = now - prev[4]
            _, rss, fds = samples[-1]
            row = {
                "t": now - t0,
                "ring_msgs_per_s": (rm - prev[0]) / dt,
                "ring_mb_per_s": (rb - prev[1]) / dt / 1e6,
                "queue_msgs_per_s": (qm - prev[2]) / dt,
                "queue_mb_per_s": (qb - prev[3]) / dt / 1e6,
                "rss_mib": rss / 1024,
                "fds": fds,
            }
            series.append(row)
            prev = (rm, rb, qm, qb, now)
            print(
                f"t={row['t']:6.1f}s ring {row['ring_msgs_per_s']:9,.0f} msg/s {row['ring_mb_per_s']:8.1f} MB/s | "
                f"queue {row['queue_msgs_per_s']:9,.0f} msg/s {row['queue_mb_per_s']:7.1f} MB/s | "
                f"RSS {row['rss_mib']:7.1f} MiB fds {fds}",
                flush=True,
            )
            if any(p.exitcode not in (None, 0) for p in procs):
                raise SystemExit("a worker failed")
        end_res = samples[-1][1:]
    finally:
        stop.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    received = sum(results.get(timeout=10) for _ in range(2))
    sent_q = sum(v.value for v in queue_sent)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    summary = {
        "duration_s": args.duration,
        "ring_messages": ring_stats[0],
        "ring_sent": ring_sent.value,
        "queue_sent": sent_q,
        "queue_received": received,
        "start_rss_mib": start_res[0] / 1024,
        "end_rss_mib": end_res[0] / 1024,
        "start_fds": start_res[1],
        "end_fds": end_res[1],
        "worker_failures": len(failed),
        "operations": samples[-1][0] - samples[0][0],
    }
    leaks = leak_report(samples)
    summary["leaks"] = [line for line in leaks if line.startswith("LEAK")]
    print(
        f"soak done: ring {int(summary['ring_messages'])}/{ring_sent.value} received/sent, queue {received}/{sent_q}; "
        f"RSS {summary['start_rss_mib']:.1f} -> {summary['end_rss_mib']:.1f} MiB, fds {start_res[1]} -> {end_res[1]}"
    )
    print("\n".join(leaks))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"series": series, "summary": summary, "samples": samples}, f, indent=1)
    for h in (ring, queue, shm):
        h.unlink()
        h.close()
    ok = not failed and received == sent_q and int(summary["ring_messages"]) == ring_sent.value and not summary["leaks"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
