"""One handle, many threads: SharedMemoryRing, SharedMemoryQueue and SharedMemory used from
several threads at once, close() from another thread while a call blocks, and os.fork() while
a thread is blocked in a call."""

from __future__ import annotations

import gc
import os
import struct
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mmapipc import AlreadyAttached, SharedMemory, SharedMemoryQueue, SharedMemoryRing

# File offsets of shared words (FORMAT.md): the control block starts at 128.
RING_DATA_SLEEPERS = 128 + 256 + 4  # consumers asleep waiting for data
RING_SPACE_SLEEPERS = 128 + 264 + 4  # producers asleep waiting for space
QUEUE_NOT_EMPTY_SLEEPERS = 128 + 1024 + 4  # consumers asleep waiting for a message

SEQ = struct.Struct("<II")  # (thread, sequence number)


@pytest.fixture
def path(tmp_path: Path) -> Iterator[str]:
    p = str(tmp_path / f"threads-{uuid.uuid4().hex}")
    yield p
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def word32(path: str, offset: int) -> int:
    """A 32-bit word of the file, read through the page cache (coherent with the mappings)."""
    with open(path, "rb") as f:
        f.seek(offset)
        return int(struct.unpack("<I", f.read(4))[0])


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.001)


class Call(threading.Thread):
    """Runs `fn` in a thread, keeping its result or exception and how long it took."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.elapsed = 0.0

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
        self.elapsed = time.monotonic() - t0

    def outcome(self, timeout: float = 60.0) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the call did not return"
        if self.error is not None:
            raise self.error
        return self.result


# ----- SharedMemoryRing -----


@pytest.mark.timeout(120)
def test_ring_producer_and_consumer_threads_share_one_handle(path: str) -> None:
    n = 20_000
    with SharedMemoryRing.create(path, 4096) as ring:

        def produce() -> None:
            for i in range(n):
                assert ring.write(SEQ.pack(0, i), block=True, timeout=60)

        def consume() -> list[int]:
            got = []
            while len(got) < n:
                m = ring.read(block=True, timeout=60)
                assert m is not None, "producer stalled"
                got.append(SEQ.unpack(m)[1])
            return got

        producer, consumer = Call(produce), Call(consume)
        consumer.start()
        producer.start()
        producer.outcome()
        assert consumer.outcome() == list(range(n))


@pytest.mark.timeout(120)
def test_ring_other_calls_while_a_thread_blocks_in_read(path: str) -> None:
    with SharedMemoryRing.create(path, 4096) as ring:
        reader = Call(lambda: ring.read(block=True, timeout=60))
        reader.start()
        wait_until(lambda: word32(path, RING_DATA_SLEEPERS) != 0, "the reader sleeps")
        assert ring.capacity == 4096 and ring.max_message_size == 4088
        assert ring.available_read() == 0 and ring.available_write() == 4096 and len(ring) == 0
        assert "SharedMemoryRing" in repr(ring) and not ring.closed
        # A non-blocking read finds the consumer side busy: nothing for it, at once.
        assert ring.read() is None and ring.read_batch(4) == []
        assert ring.write(b"wake up")
        assert reader.outcome() == b"wake up"


@pytest.mark.timeout(120)
def test_ring_threads_on_one_side_take_turns(path: str) -> None:
    writers, per_writer = 3, 3000
    with SharedMemoryRing.create(path, 1024) as ring:

        def produce(t: int) -> None:
            for i in range(per_writer):
                if i % 2:
                    assert ring.write(SEQ.pack(t, i), block=True, timeout=60)
                else:
                    assert ring.write_batch([SEQ.pack(t, i)], block=True, timeout=60) == 1

        total = writers * per_writer
        counted = [0]
        count_lock = threading.Lock()

        def consume() -> list[tuple[int, int]]:
            got: list[tuple[int, int]] = []
            deadline = time.monotonic() + 60
            while counted[0] < total:
                assert time.monotonic() < deadline, "producers stalled"
                batch = ring.read_batch(8, block=True, timeout=0.05)
                got.extend(SEQ.unpack(m) for m in batch)
                with count_lock:
                    counted[0] += len(batch)
            return got

        calls = [Call(lambda t=t: produce(t)) for t in range(writers)] + [Call(consume), Call(consume)]
        for c in calls:
            c.start()
        results = [c.outcome() for c in calls]
        got = results[-2] + results[-1]
        assert sorted(got) == [(t, i) for t in range(writers) for i in range(per_writer)]
        for part in results[-2:]:  # each consumer saw every writer's messages in order
            for t in range(writers):
                seqs = [i for w, i in part if w == t]
                assert seqs == sorted(seqs)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("call", ["read", "read_batch", "read_view", "write", "write_batch", "loan"])
def test_ring_close_from_another_thread_wakes_a_blocked_call(path: str, call: str) -> None:
    with SharedMemoryRing.create(path, 64) as ring:
        reading = call.startswith("read")
        if not reading:
            while ring.write(b"12345678"):
                pass
        blocked = Call(
            {
                "read": lambda: ring.read(block=True, timeout=120),
                "read_batch": lambda: ring.read_batch(4, block=True, timeout=120),
                "read_view": lambda: ring.read_view(block=True, timeout=120),
                "write": lambda: ring.write(b"12345678", block=True, timeout=120),
                "write_batch": lambda: ring.write_batch([b"12345678"], block=True, timeout=120),
                "loan": lambda: ring.loan(8, block=True, timeout=120),
            }[call]
        )
        blocked.start()
        sleepers = RING_DATA_SLEEPERS if reading else RING_SPACE_SLEEPERS
        wait_until(lambda: word32(path, sleepers) != 0, "the call sleeps")
        ring.close()
        assert ring.closed
        with pytest.raises(ValueError, match="SharedMemoryRing handle is closed"):
            blocked.outcome()
        assert blocked.elapsed < 60, "woken by close(), not by its timeout"
    # The closed handle gave its role back: another handle takes it at once.
    with SharedMemoryRing.open(path) as other:
        if reading:
            assert other.read() is None
        else:
            assert other.write(b"x") is False  # full, but no AlreadyAttached


@pytest.mark.timeout(120)
def test_ring_timeouts_count_while_waiting_for_a_busy_side(path: str) -> None:
    with SharedMemoryRing.create(path, 4096) as ring:
        reader = Call(lambda: ring.read(block=True, timeout=60))
        reader.start()
        wait_until(lambda: word32(path, RING_DATA_SLEEPERS) != 0, "the reader sleeps")
        assert ring.read(block=True, timeout=0.05) is None  # its timeout covers waiting its turn
        second = Call(lambda: ring.read(block=True, timeout=60))
        second.start()
        ring.write_batch([b"one", b"two"])
        assert sorted([reader.outcome(), second.outcome()]) == [b"one", b"two"]


def _in_forked_child(body: Callable[[], None]) -> int:
    """Forks; the child runs `body` and exits 0 (1 on any failure, printing it). Returns the
    child's exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException as e:  # noqa: BLE001 - reported through the exit code
            print(f"child failed: {e!r}", file=sys.stderr, flush=True)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.timeout(120)
def test_ring_fork_while_a_thread_is_blocked_in_read(path: str) -> None:
    with SharedMemoryRing.create(path, 4096) as ring:
        reader = Call(lambda: ring.read(block=True, timeout=60))
        reader.start()
        wait_until(lambda: word32(path, RING_DATA_SLEEPERS) != 0, "the reader sleeps")

        def child() -> None:
            # The inherited handle works. Its consumer side is free here, but the role is the
            # parent's reader's, still blocked there (nothing was written yet).
            assert ring.capacity == 4096 and ring.available_read() == 0
            with pytest.raises(AlreadyAttached, match="consumer"):
                ring.read()
            # The producer side and role are free.
            assert ring.write(b"from the child")
            ring.close()
            assert ring.closed

        assert _in_forked_child(child) == 0
        assert reader.outcome() == b"from the child"
        assert ring.write(b"parent still works") and ring.read() == b"parent still works"


# ----- SharedMemoryQueue -----


@pytest.mark.timeout(120)
def test_queue_threads_share_one_handle(path: str) -> None:
    producers, per_producer = 3, 3000
    with SharedMemoryQueue.create(path, 4096) as q:

        def produce(t: int) -> None:
            for i in range(per_producer):
                assert q.put(SEQ.pack(t, i), timeout=60)

        def consume(n: int) -> list[tuple[int, int]]:
            got = []
            for _ in range(n):
                m = q.get(timeout=60)
                assert m is not None, "producers stalled"
                got.append(SEQ.unpack(m))
            return got

        total = producers * per_producer
        calls = [Call(lambda t=t: produce(t)) for t in range(producers)]
        calls += [Call(lambda: consume(total // 2)), Call(lambda: consume(total - total // 2))]
        for c in calls:
            c.start()
        results = [c.outcome() for c in calls]
        assert sorted(results[-2] + results[-1]) == [(t, i) for t in range(producers) for i in range(per_producer)]
        assert q.empty()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("call", ["get", "get_batch", "get_view", "get_into", "put", "put_batch"])
def test_queue_close_from_another_thread_wakes_a_blocked_call(path: str, call: str) -> None:
    with SharedMemoryQueue.create(path, 1024) as q:
        getting = call.startswith("get")
        if not getting:
            while q.put(b"x" * 100, block=False):
                pass
        blocked = Call(
            {
                "get": lambda: q.get(timeout=120),
                "get_batch": lambda: q.get_batch(4, timeout=120),
                "get_view": lambda: q.get_view(timeout=120),
                "get_into": lambda: q.get_into(bytearray(64), timeout=120),
                "put": lambda: q.put(b"y" * 100, timeout=120),
                "put_batch": lambda: q.put_batch([b"y" * 100], timeout=120),
            }[call]
        )
        blocked.start()
        if getting:
            wait_until(lambda: word32(path, QUEUE_NOT_EMPTY_SLEEPERS) != 0, "the call sleeps")
        else:
            wait_until(lambda: q.stats()["full_waits"] != 0, "the call waits")
        q.close()
        assert q.closed
        with pytest.raises(ValueError, match="SharedMemoryQueue handle is closed"):
            blocked.outcome()
        assert blocked.elapsed < 60, "woken by close(), not by its timeout"


@pytest.mark.timeout(120)
def test_queue_fork_while_a_thread_is_blocked_in_get(path: str) -> None:
    with SharedMemoryQueue.create(path, 4096) as q:
        getter = Call(lambda: q.get(timeout=60))
        getter.start()
        wait_until(lambda: word32(path, QUEUE_NOT_EMPTY_SLEEPERS) != 0, "the getter sleeps")

        def child() -> None:
            assert q.get(block=False) is None and q.qsize() == 0
            assert q.put(b"from the child")
            q.close()
            q.close()
            assert q.closed

        assert _in_forked_child(child) == 0
        assert getter.outcome() == b"from the child"
        assert q.put(b"parent still works") and q.get() == b"parent still works"


# ----- SharedMemory -----


@pytest.mark.timeout(120)
def test_shared_memory_threads_and_a_closing_thread(path: str) -> None:
    shm = SharedMemory.create(path, 4096)
    stop = threading.Event()

    def hammer(t: int) -> int:
        n = 0
        while not stop.is_set():
            try:
                shm.write_uint(8 * t, n)
                assert shm.read_uint(8 * t) == n
                assert len(shm.read(0, 64)) == 64
                view = shm.get_view(8 * t, 8)
                assert len(view) == 8
                n += 1
            except ValueError as e:  # closed meanwhile: the only error allowed
                assert "SharedMemory handle is closed" in str(e)
                return n
        return n

    calls = [Call(lambda t=t: hammer(t)) for t in range(4)]
    for c in calls:
        c.start()
    time.sleep(0.05)  # let them run a little (the test passes whatever they managed)
    shm.close()
    stop.set()
    for c in calls:
        c.outcome()
    assert shm.closed


def test_close_from_a_finalizer_during_a_call(path: str) -> None:
    """A finalizer run by the garbage collector inside a call (here: while get_view builds its
    memoryview) closes the handle the call is using: the call still completes safely."""
    shm = SharedMemory.create(path, 4096)
    errors: list[BaseException] = []

    class Closer:
        def __init__(self) -> None:
            self.cycle = self

        def __del__(self) -> None:
            try:
                shm.close()
            except BaseException as e:  # noqa: BLE001 - recorded for the test
                errors.append(e)

    old = gc.get_threshold()
    try:
        gc.collect()
        gc.set_threshold(1)
        Closer()
        view = shm.get_view(0, 8)
    finally:
        gc.set_threshold(*old)
    gc.collect()
    assert errors == []
    assert shm.closed
    view[:4] = b"live"  # the view keeps the mapping alive after close
    assert bytes(view[:4]) == b"live"
