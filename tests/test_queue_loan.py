"""SharedMemoryQueue.loan / commit / abort: slots filled in place, from NumPy, by processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import uuid
from collections.abc import Iterator

import pytest

import loan_helpers as h
from mmapipc import SharedMemoryQueue

np = pytest.importorskip("numpy")


@pytest.fixture
def path() -> Iterator[str]:
    p = f"/dev/shm/mmapipc-test-qloan-{uuid.uuid4().hex}"
    yield p
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


@pytest.fixture
def q(path: str) -> Iterator[SharedMemoryQueue]:
    with SharedMemoryQueue.create(path, 64 * 1024) as q:
        yield q


def test_loan_commit_publishes_in_order(q: SharedMemoryQueue) -> None:
    q.put(b"first")
    buf = q.loan(6)
    assert isinstance(buf, memoryview) and len(buf) == 6 and not buf.readonly
    buf[:] = b"loaned"
    q.commit()
    with q.loan(4) as buf:
        np.frombuffer(buf, dtype=np.uint8)[:] = [1, 2, 3, 4]
        q.commit()
    q.put(b"last")
    assert [q.get(timeout=1) for _ in range(4)] == [b"first", b"loaned", b"\x01\x02\x03\x04", b"last"]
    assert q.get(block=False) is None


def test_nothing_is_visible_before_the_commit(path: str, q: SharedMemoryQueue) -> None:
    buf = q.loan(8)
    assert buf is not None
    buf[:] = b"unseen!!"
    with SharedMemoryQueue.open(path) as other:
        assert other.get(block=False) is None
        assert not other.put(b"x", block=False), "the loan holds the producer lock"
        q.commit()
        assert other.put(b"after", timeout=5)
        assert other.get(timeout=1) == b"unseen!!"
        assert other.get(timeout=1) == b"after"


def test_commit_twice_write_after_commit_and_sizes_raise(q: SharedMemoryQueue) -> None:
    buf = q.loan(3)
    assert buf is not None
    buf[:] = b"abc"
    q.commit()
    with pytest.raises(ValueError, match="no slot is loaned"):
        q.commit()
    with pytest.raises(ValueError, match="released"):
        buf[0] = 1  # the commit released the memoryview
    with pytest.raises(ValueError, match="maximum message size"):
        q.loan(q.max_message_size + 1)
    assert q.get(timeout=1) == b"abc"
    q.abort()  # nothing loaned: no-op


def test_one_loan_per_handle_and_no_puts_beside_it(q: SharedMemoryQueue) -> None:
    buf = q.loan(8)
    assert buf is not None
    for call in (lambda: q.loan(8), lambda: q.put(b"x"), lambda: q.put_batch([b"x"])):
        with pytest.raises(ValueError, match="outstanding"):
            call()
    q.abort()
    assert q.put(b"now", timeout=1)
    assert q.get(timeout=1) == b"now"


def test_abort_and_abandon_publish_nothing(path: str, q: SharedMemoryQueue) -> None:
    buf = q.loan(5)
    assert buf is not None
    buf[:] = b"abort"
    q.abort()
    with pytest.raises(ValueError, match="released"):
        buf[0] = 1
    # Dropped without commit: abandoned when the last reference goes.
    buf = q.loan(7)
    assert buf is not None
    buf[:] = b"dropped"
    del buf
    # An exception inside `with`: the memoryview is released on exit, which abandons it.
    with pytest.raises(RuntimeError):
        with q.loan(6) as buf:
            buf[:] = b"raised"
            raise RuntimeError("while filling")
    with pytest.raises(ValueError, match="no slot is loaned"):
        q.commit()
    with SharedMemoryQueue.open(path) as other:
        assert other.put(b"other", timeout=5), "an abandoned loan left the producer lock held"
    assert q.put(b"mine", timeout=1)
    assert [q.get(timeout=1), q.get(timeout=1), q.get(block=False)] == [b"other", b"mine", None]
    assert q.stats()["msgs_in"] == 2


def test_commit_refuses_while_an_array_writes_the_slot(q: SharedMemoryQueue) -> None:
    buf = q.loan(8)
    assert buf is not None
    exporter = buf.obj
    arr = np.frombuffer(buf, dtype=np.uint8)
    arr[:] = 7
    with pytest.raises(BufferError, match="still in use"):
        q.commit()
    with pytest.raises(BufferError, match="still in use"):
        q.abort()
    arr[0] = 8  # the array still writes the unpublished slot
    del arr
    with pytest.raises(BufferError, match="still in use"):
        q.commit()  # the exporter is still referenced (a memoryview of it could write)
    assert q.get(block=False) is None
    del exporter
    q.commit()  # the refused commit kept the loan: it is published now
    assert q.get(timeout=1) == bytes([8] + [7] * 7)


def test_loan_waits_for_room_or_times_out(path: str) -> None:
    with SharedMemoryQueue.create(path, 4096) as q:
        big = q.max_message_size
        assert q.put(bytes(big))
        assert q.loan(100, block=False) is None
        assert q.loan(100, timeout=0.05) is None
        assert q.get(timeout=1) == bytes(big)
        buf = q.loan(100, block=False)
        assert buf is not None
        buf[:] = bytes(range(100))
        q.commit()
        assert q.get(timeout=1) == bytes(range(100))


def test_producer_processes_fill_loans_from_numpy(ctx: mp.context.BaseContext, path: str) -> None:
    n = 300
    with SharedMemoryQueue.create(path, 64 * 1024) as q:  # room for 15 messages: producers wait
        procs = [ctx.Process(target=h.loan_producer, args=(path, i * n, n)) for i in range(2)]  # type: ignore[attr-defined]
        for p in procs:
            p.start()
        seen: dict[int, list[int]] = {0: [], 1: []}
        for _ in range(2 * n):
            m = q.get(timeout=60)
            assert m is not None, "a producer stalled"
            seq = int(np.frombuffer(m, dtype="<u4")[0])
            assert m == h.expected(seq), f"message {seq} torn"
            seen[seq // n].append(seq)
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        assert seen == {0: list(range(n)), 1: list(range(n, 2 * n))}, "lost, duplicated or reordered"
        assert q.get(block=False) is None


def test_producer_sigkilled_holding_a_loan(ctx: mp.context.BaseContext, path: str) -> None:
    with SharedMemoryQueue.create(path, 64 * 1024, recovery_bound=0.4) as q:
        q.put(h.expected(1))
        ready = ctx.Event()  # type: ignore[attr-defined]
        victim = ctx.Process(target=h.hold_loan_and_hang, args=(path, ready))  # type: ignore[attr-defined]
        victim.start()
        assert ready.wait(60), "the victim did not loan within 60 s"
        assert not q.put(b"x", block=False), "the victim's loan holds the producer lock"
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        survivor = ctx.Process(target=h.loan_producer, args=(path, 2, 20))  # type: ignore[attr-defined]
        survivor.start()
        got = [q.get(timeout=30) for _ in range(21)]
        survivor.join(30)
        assert survivor.exitcode == 0
        assert got == [h.expected(s) for s in range(1, 22)], "lost, duplicated or torn after the kill"
        assert q.get(block=False) is None, "the dead loan's slot was published"
        assert q.stats()["lock_recoveries"] == 1


def test_forked_child_cannot_commit_the_parents_loan(path: str) -> None:
    ctx = mp.get_context("fork")
    with SharedMemoryQueue.create(path, 4096) as q:
        buf = q.loan(4)
        assert buf is not None
        buf[:] = b"mine"
        h.INHERITED = q
        try:
            child = ctx.Process(target=h.commit_inherited_loan, args=(path,))
            child.start()
            child.join(30)
        finally:
            h.INHERITED = None
        assert child.exitcode == 0
        assert q.get(block=False) is None
        q.commit()  # still the parent's
        assert q.get(timeout=1) == b"mine"
