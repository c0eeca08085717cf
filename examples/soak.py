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
message, or if the descriptors grew.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import struct
import sys
import tempfile
import time
import zlib
from typing import Any

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


def ring_producer(path: str, stop: Any, counter: Any) -> None:
    rng = random.Random(1)
    with SharedMemoryRing.open(path) as ring:
        seq = 0
        while not stop.is_set():
            if ring.write(make(0, seq, rng, 64 * 1024), block=True, timeout=0.5):
                seq += 1
        counter.value = seq


def ring_consumer(path: str, stop: Any, stats: Any) -> None:
    expect = 0
    with SharedMemoryRing.open(path) as ring:
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


def queue_producer(path: str, pid: int, stop: Any, counter: Any) -> None:
    rng = random.Random(100 + pid)
    with SharedMemoryQueue.open(path) as q:
        seq = 0
        while not stop.is_set():
            batch = [make(pid, seq + i, rng, 4096) for i in range(16)]
            n = q.put_batch(batch, block=True, timeout=0.5)
            seq += n
        counter.value = seq


def queue_consumer(path: str, stop: Any, stats: Any, result: Any) -> None:
    last: dict[int, int] = {}
    count = 0
    with SharedMemoryQueue.open(path) as q:
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


def churn(path: str, stop: Any) -> None:
    i = 0
    while not stop.is_set():
        with SharedMemory.open(path) as shm:
            shm.write_uint(8 * (i % 100), i)
            view = shm.get_view(0, 64)
            view.release()
        i += 1


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between report lines")
    ap.add_argument("--json", help="write the time series and summary here")
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
    results: Any = ctx.Queue()
    procs = [
        ctx.Process(target=ring_producer, args=(ring_path, stop, ring_sent)),
        ctx.Process(target=ring_consumer, args=(ring_path, stop, ring_stats)),
        *[ctx.Process(target=queue_producer, args=(queue_path, i, stop, queue_sent[i])) for i in range(2)],
        *[ctx.Process(target=queue_consumer, args=(queue_path, stop, queue_stats, results)) for _ in range(2)],
        ctx.Process(target=churn, args=(shm_path, stop)),
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every process start before the first resource reading
    pids = [os.getpid()] + [p.pid for p in procs if p.pid is not None]
    start_res = tree_resources(pids)
    series: list[dict[str, float]] = []
    t0 = time.monotonic()
    prev = (0.0, 0.0, 0.0, 0.0, t0)
    print(f"soak: {args.duration:.0f} s; start: RSS {start_res[0] / 1024:.1f} MiB, {start_res[1]} fds", flush=True)
    try:
        while (now := time.monotonic()) - t0 < args.duration:
            time.sleep(min(args.interval, max(0.0, args.duration - (now - t0))))
            now = time.monotonic()
            rm, rb, qm, qb = ring_stats[0], ring_stats[1], queue_stats[0], queue_stats[1]
            dt = now - prev[4]
            rss, fds = tree_resources(pids)
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
        end_res = tree_resources(pids)
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
    }
    print(
        f"soak done: ring {int(summary['ring_messages'])}/{ring_sent.value} received/sent, queue {received}/{sent_q}; "
        f"RSS {summary['start_rss_mib']:.1f} -> {summary['end_rss_mib']:.1f} MiB, fds {start_res[1]} -> {end_res[1]}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"series": series, "summary": summary}, f, indent=1)
    for h in (ring, queue, shm):
        h.unlink()
        h.close()
    ok = not failed and received == sent_q and int(summary["ring_messages"]) == ring_sent.value and end_res[1] <= start_res[1]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
