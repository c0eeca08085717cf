"""SharedMemoryTopic: fan-out, late joiners, overwrite drops, groups, views, kills, pickling."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import struct
from collections import Counter

import pytest

import mmapipc
from mmapipc import SharedMemoryTopic

from topic_helpers import (
    END,
    FRAME,
    frame,
    frame_subscriber,
    holder,
    member,
    message,
    publisher,
    second_publisher,
    subscriber,
    verify,
)


def test_every_subscriber_gets_every_message(shm_path: str) -> None:
    with SharedMemoryTopic.create(shm_path, capacity=1 << 16, max_subscribers=4) as t:
        with t.subscribe() as a, t.subscribe(start="latest") as b:
            assert t.publish(b"one")
            assert t.publish_batch([b"two", bytearray(b"three"), memoryview(b"four")]) == 3
            assert a.lag == 4
            assert a.recv() == b"one"
            assert a.recv_batch(64) == [b"two", b"three", b"four"]
            assert a.recv(block=False) is None and a.recv(timeout=0.01) is None
            buf = bytearray(8)
            assert b.recv_into(buf) == 3 and buf[:3] == b"one"
            v = b.recv_view()
            assert v is not None and bytes(v) == b"two" and v.readonly
            assert b.recv() == b"three"
            with pytest.raises(ValueError):
                bytes(v)  # released by the next receive
            assert (a.lag, a.dropped, a.messages) == (0, 0, 4)
            assert t.stats()["subscribers"] == 2
            assert len(t.subscribers()) == 2
        assert t.stats()["subscribers"] == 0


def test_start_oldest_reads_history_then_live(shm_path: str) -> None:
    with SharedMemoryTopic.create(shm_path, capacity=4096) as t:
        for i in range(500):  # no subscriber: the oldest are overwritten
            t.publish(message(i))
        with t.subscribe(start="oldest") as old, t.subscribe(start="latest") as new:
            assert new.recv(block=False) is None
            t.publish(message(500))
            got = [verify(m) for m in old.recv_batch(1000)]
            assert got == list(range(got[0], 501)) and got[0] > 0
            n = new.recv(block=False)
            assert n is not None and verify(n) == 500


def test_overwrite_mode_counts_what_a_slow_subscriber_lost(shm_path: str) -> None:
    with SharedMemoryTopic.create(shm_path, capacity=4096, overflow="overwrite") as t:
        assert t.overflow == "overwrite"
        with t.subscribe() as s:
            received = 0
            for i in range(2000):
                assert t.publish(message(i), block=False), "overwrite mode never waits"
                if i % 50 == 0 and s.recv(block=False) is not None:
                    received += 1
            received += len(s.recv_batch(10_000))
            assert s.dropped > 0
            assert received + s.dropped == 2000
            with pytest.raises(mmapipc.Error):
                s.recv_view(block=False)


def test_fan_out_across_processes(ctx: mp.context.BaseContext, shm_path: str) -> None:
    n = 20_000
    with SharedMemoryTopic.create(shm_path, capacity=1 << 16, max_subscribers=8) as t:
        results = ctx.Queue()  # type: ignore[attr-defined]
        procs = []
        for _ in range(4):
            ready = ctx.Event()  # type: ignore[attr-defined]
            p = ctx.Process(target=subscriber, args=(shm_path, "latest", ready, results))  # type: ignore[attr-defined]
            p.start()
            assert ready.wait(60)
            procs.append(p)
        for i in range(n):
            assert t.publish(message(i), timeout=60.0)
        t.publish(message(END), timeout=60.0)
        got = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert got == [(0, n)] * 4


def test_frames_reach_every_subscriber_whole_and_in_order(ctx: mp.context.BaseContext, shm_path: str) -> None:
    """4 MiB frames in a topic with room for two, to two subscribers reading views and one
    copying: a waiting publisher writes a frame over the previous one when every subscriber let
    go of it and polls in a receive, and never over one still held."""
    n = 120
    with SharedMemoryTopic.create(shm_path, capacity=2 * (FRAME + 4096), max_subscribers=4) as t:
        results = ctx.Queue()  # type: ignore[attr-defined]
        procs = []
        for view in (True, True, False):
            ready = ctx.Event()  # type: ignore[attr-defined]
            p = ctx.Process(target=frame_subscriber, args=(shm_path, view, ready, results))  # type: ignore[attr-defined]
            p.start()
            assert ready.wait(60)
            procs.append(p)
        for i in range(n):
            assert t.publish(frame(i), timeout=60.0)
        end = frame(0)
        struct.pack_into("<Q", end, 0, END)
        assert t.publish(end, timeout=60.0)
        got = sorted(results.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert [c for c, _ in got] == [n] * 3
        assert all(a <= 2 for _, a in got), "a frame starts at offset 0 or after the first"
        assert t.stats()["msgs_in"] == n + 1


def test_groups_deliver_once_within_each_group(ctx: mp.context.BaseContext, shm_path: str) -> None:
    n = 5_000
    with SharedMemoryTopic.create(shm_path, capacity=1 << 16, max_subscribers=8) as t:
        results = ctx.Queue()  # type: ignore[attr-defined]
        procs = []
        for group in ["a", "a", "b"]:
            ready = ctx.Event()  # type: ignore[attr-defined]
            p = ctx.Process(target=member, args=(shm_path, group, ready, results))  # type: ignore[attr-defined]
            p.start()
            assert ready.wait(60)
            procs.append(p)
        for i in range(n):
            assert t.publish(message(i), timeout=60.0)
        for _ in range(2):  # one END per member of "a" (and "b" gets both)
            t.publish(message(END), timeout=60.0)
        by_group: dict[str, list[int]] = {"a": [], "b": []}
        for _ in procs:
            g, seqs = results.get(timeout=120)
            by_group[g].extend(seqs)
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert sorted(by_group["a"]) == list(range(n)), "each message once within group a"
        assert Counter(by_group["b"]) == Counter(range(n))


def test_killed_subscriber_stops_holding_back(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemoryTopic.create(shm_path, capacity=4096) as t:
        ready = ctx.Event()  # type: ignore[attr-defined]
        p = ctx.Process(target=holder, args=(shm_path, ready))  # type: ignore[attr-defined]
        p.start()
        assert ready.wait(60)
        while t.publish(message(0), block=False):
            pass
        assert not t.publish(message(0), timeout=0.05)
        p.kill()
        p.join()
        assert t.publish(message(1), timeout=30.0), "the dead subscriber's slot was reclaimed"
        assert t.stats()["reclaimed"] == 1


def test_one_publisher_and_a_full_table(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemoryTopic.create(shm_path, capacity=4096, max_subscribers=1) as t:
        t.publish(b"mine")
        results = ctx.Queue()  # type: ignore[attr-defined]
        p = ctx.Process(target=second_publisher, args=(shm_path, results))  # type: ignore[attr-defined]
        p.start()
        assert results.get(timeout=60) == "AlreadyAttached"
        p.join(60)
        with t.subscribe():
            with pytest.raises(mmapipc.Error, match="no free subscriber slot"):
                t.subscribe()
        with pytest.raises(ValueError):
            t.subscribe(start="middle")


def test_publisher_killed_is_taken_over(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemoryTopic.create(shm_path, capacity=1 << 16) as t, t.subscribe() as s:
        p = ctx.Process(target=publisher, args=(shm_path, 10))  # type: ignore[attr-defined]
        p.start()
        p.join(60)
        assert p.exitcode == 0
        assert [verify(m) for m in s.recv_batch(100)] == list(range(10))
        t.publish(message(10))
        m = s.recv(timeout=10)
        assert m is not None and verify(m) == 10


def test_pickling_and_closing(shm_path: str) -> None:
    t = SharedMemoryTopic.create(shm_path, capacity=4096)
    t2 = pickle.loads(pickle.dumps(t))
    assert t2.path == t.path and t2.capacity == 4096
    s = t2.subscribe()
    with pytest.raises(TypeError):
        pickle.dumps(s)
    t.publish(b"x")
    assert list(zip(range(1), s)) == [(0, b"x")]
    s.close()
    s.close()
    assert s.closed and list(s) == []
    with pytest.raises(ValueError):
        s.recv()
    t2.close()
    t.close()
    with pytest.raises(ValueError):
        t.publish(b"y")
    assert "closed" in repr(t)
