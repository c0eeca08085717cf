"""SharedMemoryRing: semantics in one process, and streams between real processes (fork and spawn)."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest

import ring_helpers as h
from mmapipc import AlreadyAttached, BufferTooShort, Error, SharedMemoryRing

START_METHODS = ["fork", "spawn"]


@pytest.fixture
def path(tmp_path: Path) -> str:
    p = str(tmp_path / f"ring-{uuid.uuid4().hex}")
    yield p
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def start(method: str, target, *args) -> mp.process.BaseProcess:
    p = mp.get_context(method).Process(target=target, args=args, daemon=True)
    p.start()
    return p


def join_ok(p: mp.process.BaseProcess, timeout: float = 60) -> None:
    p.join(timeout)
    if p.is_alive():
        p.kill()
        pytest.fail("child did not finish (watchdog)")
    assert p.exitcode == 0, f"child failed with exit code {p.exitcode}"


# ----- one process -----


def test_create_open_properties_and_repr(path: str) -> None:
    with SharedMemoryRing.create(path, 1000) as ring:
        assert ring.capacity == 1000
        assert ring.max_message_size == 992
        assert ring.path == path
        assert len(ring) == 0
        assert ring.available_read() == 0
        assert ring.available_write() == 1000
        assert "capacity=1000" in repr(ring)
        other = SharedMemoryRing.open(path)
        assert other.capacity == 1000
        other.close()
    assert ring.closed
    assert "closed" in repr(ring)
    assert os.path.exists(path), "exiting the context closes, never unlinks"
    with pytest.raises(FileExistsError):
        SharedMemoryRing.create(path, 1000)
    SharedMemoryRing.open(path).unlink()
    with pytest.raises(FileNotFoundError):
        SharedMemoryRing.open(path)


def test_capacity_is_rounded_and_validated(path: str) -> None:
    with SharedMemoryRing.create(path, 1001) as ring:
        assert ring.capacity == 1008
    with pytest.raises(ValueError):
        SharedMemoryRing.create(path + "x", 8)
    with pytest.raises(ValueError):
        SharedMemoryRing.create(path + "y", -1)


def test_roundtrip_of_every_buffer_kind_and_empty(path: str) -> None:
    with SharedMemoryRing.create(path, 4096) as ring:
        arr = np.arange(10, dtype=np.int32)
        for data in [b"abc", bytearray(b"def"), memoryview(b"ghi"), arr, b""]:
            assert ring.write(data) is True
        assert len(ring) == 5
        assert ring.read() == b"abc"
        assert ring.read() == b"def"
        assert ring.read() == b"ghi"
        assert ring.read() == arr.tobytes()
        assert ring.read() == b""
        assert ring.read() is None
        with pytest.raises(TypeError):
            ring.write("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            ring.write(np.arange(10)[::2])  # not contiguous


def test_full_ring_nonblocking_returns_false(path: str) -> None:
    with SharedMemoryRing.create(path, 64) as ring:
        for _ in range(4):
            assert ring.write(b"12345678") is True
        assert ring.available_write() == 0
        assert ring.write(b"12345678") is False
        assert ring.write(b"12345678", block=True, timeout=0) is False
        assert ring.read() == b"12345678"
        assert ring.write(b"x") is True


def test_oversize_raises_value_error(path: str) -> None:
    with SharedMemoryRing.create(path, 64) as ring:
        assert ring.write(b"x" * 56) is True  # the largest message
        assert ring.read() == b"x" * 56
        with pytest.raises(ValueError, match="larger than"):
            ring.write(b"x" * 57, block=True)  # would never fit: raises instead of blocking
        with pytest.raises(ValueError):
            ring.write_batch([b"ok", b"x" * 57])
        assert len(ring) == 0, "nothing written from a batch with an oversized message"


def test_timeouts_return_none_and_false(path: str) -> None:
    with SharedMemoryRing.create(path, 64) as ring:
        t0 = time.monotonic()
        assert ring.read(block=True, timeout=0.2) is None
        assert ring.read_view(block=True, timeout=0.05) is None
        assert ring.read_batch(10, block=True, timeout=0.05) == []
        elapsed = time.monotonic() - t0
        assert 0.29 <= elapsed < 30  # waited at least the timeouts; the upper bound is a watchdog
        while ring.write(b"fill"):
            pass
        t0 = time.monotonic()
        assert ring.write(b"more", block=True, timeout=0.2) is False
        assert ring.write_batch([b"a", b"b"], block=True, timeout=0.05) == 0
        assert time.monotonic() - t0 >= 0.24
        with pytest.raises(ValueError):
            ring.read(block=True, timeout=-1)


def test_batches(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as ring:
        msgs = [bytes([i]) * 8 for i in range(40)]
        n = ring.write_batch(msgs)
        assert n == 16  # 16-byte records
        assert ring.read_batch(10) == msgs[:10]
        assert ring.write_batch(msgs[n:]) == 10
        assert ring.read_batch(100) == msgs[10:26]
        assert ring.read_batch(100) == []
        assert ring.write_batch(iter([bytearray(b"gen"), memoryview(b"erator")])) == 2
        assert ring.read_batch(0) == []
        assert ring.read_batch(5) == [b"gen", b"erator"]


def test_write_batch_memoryviews(path: str) -> None:
    # memoryviews are read without a buffer request (bytes-like, in place); released or
    # non-contiguous ones are refused before anything is written.
    block = np.arange(48, dtype=np.uint8).reshape(3, 16)
    views = [memoryview(block[i]) for i in range(3)]
    f64 = memoryview(np.array([1.5, -2.0]))  # any C-contiguous format: its raw bytes
    with SharedMemoryRing.create(path, 4096) as ring:
        assert ring.write_batch([*views, memoryview(b"xmvx")[1:3], f64, memoryview(b"")]) == 6
        assert ring.read_batch(10) == [block[0].tobytes(), block[1].tobytes(), block[2].tobytes(),
                                       b"mv", np.array([1.5, -2.0]).tobytes(), b""]
        gone = memoryview(b"released")
        gone.release()
        with pytest.raises(ValueError, match="released"):
            ring.write_batch([b"first", gone])
        with pytest.raises(TypeError, match="C-contiguous"):
            ring.write_batch([b"first", memoryview(b"strided")[::2]])
        assert ring.available_read() == 0  # a bad item writes nothing


def test_write_batch_memoryview_released_while_waiting(path: str) -> None:
    # A blocking write_batch waits with the GIL released; a memoryview released meanwhile is
    # an error after the wait, never a read of freed memory.
    import threading

    with SharedMemoryRing.create(path, 256) as ring, SharedMemoryRing.open(path) as reader:
        while ring.write(b"f" * 24):
            pass
        data = bytearray(b"late" * 4)
        mv = memoryview(data)
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                ring.write_batch([mv], True, 5.0)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                errors.append(e)

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.2)  # the writer is waiting for room
        try:
            mv.release()
        except BufferError:
            # An interpreter where memoryviews are borrowed through a buffer request (the
            # in-place path is off): the export pins the view, and the write goes through.
            pinned = True
        else:
            pinned = False
            del data[:]  # the old bytes are gone
        seen = []
        while (m := reader.read()) is not None:
            seen.append(m)
        t.join(10)
        assert not t.is_alive()
        if pinned:
            seen += reader.read_batch(100)
            assert not errors and seen[-1] == b"late" * 4
        else:
            assert len(errors) == 1 and isinstance(errors[0], ValueError), errors
            assert reader.read() is None  # nothing was written from the released view


def test_read_view_lifetime(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as ring:
        ring.write_batch([b"first", b"second", b"third"])
        v = ring.read_view()
        assert v is not None and v.readonly and bytes(v) == b"first"
        with pytest.raises(TypeError):
            v[0] = 1  # type: ignore[index]
        assert ring.read() == b"second"  # releases the previous view first
        with pytest.raises(ValueError):
            bytes(v)  # released: never shows recycled bytes
        v = ring.read_view()
        assert v is not None
        arr = np.frombuffer(v, dtype=np.uint8)
        assert arr.tobytes() == b"third"
        ring.write(b"fourth")
        with pytest.raises(BufferError):
            ring.read()  # an array still exports the view: refuse rather than recycle it
        assert arr.tobytes() == b"third"
        del arr
        assert ring.read() == b"fourth"
        ring.write(b"fifth")
        v = ring.read_view()
    # close released it
    with pytest.raises(ValueError):
        bytes(v)  # type: ignore[arg-type]


def test_closed_handle_raises(path: str) -> None:
    ring = SharedMemoryRing.create(path, 256)
    ring.close()
    ring.close()  # harmless
    assert ring.closed
    for call in [
        lambda: ring.write(b"x"),
        lambda: ring.read(),
        lambda: ring.read_view(),
        lambda: ring.read_batch(1),
        lambda: ring.write_batch([b"x"]),
        lambda: ring.available_read(),
        lambda: ring.available_write(),
        lambda: ring.clear(),
        lambda: len(ring),
        lambda: ring.capacity,
        lambda: ring.loan(8),
        lambda: ring.read_into(bytearray(8)),
        lambda: pickle.dumps(ring),  # not silently an open handle on the other side
    ]:
        with pytest.raises(ValueError, match="SharedMemoryRing handle is closed"):
            call()
    ring.unlink()  # still possible: it only needs the path


def test_clear(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as producer, SharedMemoryRing.open(path) as other:
        producer.write_batch([b"a", b"b", b"c"])
        producer.clear()  # as the consumer, for the duration of the call
        assert len(producer) == 0 and producer.available_read() == 0
        producer.write(b"d")
        assert other.read() == b"d"  # the role was given back: another handle can consume
        producer.write_batch([b"e", b"f"])
        view = other.read_view()  # a view keeps the consumer role until released
        assert view is not None and bytes(view) == b"e"
        with pytest.raises(AlreadyAttached):
            producer.clear()
        view.release()
        producer.clear()
        assert other.read() is None


def test_pickle_reopens_by_path(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as ring:
        clone = pickle.loads(pickle.dumps(ring))
        assert clone.path == path and clone.capacity == 256
        ring.write(b"via pickle")
        assert clone.read() == b"via pickle"
        clone.close()


def test_handles_in_one_process_take_turns(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as a, SharedMemoryRing.open(path) as b:
        assert a.write(b"1 from a")
        assert b.read() == b"1 from a"
        assert b.write(b"2 from b")
        assert a.read() == b"2 from b"
        assert a.write_batch([b"3", b"4"]) == 2
        assert b.write(b"5")
        assert b.read_batch(10) == [b"3", b"4", b"5"]
        assert a.read() is None and b.read() is None


def test_same_process_second_producer_at_the_same_time_refused(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as a, SharedMemoryRing.open(path) as b:
        slot = a.loan(8)  # a loan keeps the producer role until commit/abort
        assert slot is not None
        with pytest.raises(AlreadyAttached, match="producer"):
            b.write(b"y")
        with pytest.raises(AlreadyAttached, match="producer"):
            b.write_batch([b"y"])
        slot[:] = b"loaned!!"
        a.commit()  # gives the role back
        assert b.write(b"y")
        assert b.read_batch(2) == [b"loaned!!", b"y"]
        view = a.read_view()
        assert view is None
        b.write(b"z")
        view = a.read_view()  # a view keeps the consumer role until released
        assert view is not None
        with pytest.raises(AlreadyAttached, match="consumer"):
            b.read()
        view.release()  # releasing the view releases the record and the role
        assert b.read() is None
        b.write(b"w")
        with a.read_view() as view:  # type: ignore[union-attr]
            assert bytes(view) == b"w"
        assert b.write(b"v") and b.read() == b"v"


def test_wrong_kind_and_garbage_files(path: str, tmp_path: Path) -> None:
    from mmapipc import CorruptHeader, IncompatibleLayout, SharedMemory

    with SharedMemory.create(path, 4096):
        pass
    with pytest.raises(IncompatibleLayout):
        SharedMemoryRing.open(path)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00" * 10)
    with pytest.raises(CorruptHeader):
        SharedMemoryRing.open(str(junk))


def test_corrupt_ring_raises_error_not_crash(path: str) -> None:
    from mmapipc import SharedMemory

    with SharedMemoryRing.create(path, 256) as ring:
        ring.write(b"hello")
        # Scribble over the record header through a raw mapping of the same file: a hostile peer.
        raw = np.memmap(path, dtype=np.uint8, mode="r+")
        data_offset = 4096
        raw[data_offset : data_offset + 4] = np.frombuffer((10_000).to_bytes(4, "little"), dtype=np.uint8)
        raw.flush()
        with pytest.raises(Error, match="corrupt"):
            ring.read()
        raw[data_offset : data_offset + 4] = np.frombuffer((5).to_bytes(4, "little"), dtype=np.uint8)
        assert ring.read() == b"hello"
        del raw
    assert SharedMemory is not None


# ----- between processes -----


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(120)
def test_million_small_messages_in_order(path: str, method: str) -> None:
    total = 1_000_000
    with SharedMemoryRing.create(path, 1 << 20) as ring:
        p = start(method, h.produce_small, path, total, 2000)
        got = 0
        crc_got = 0
        crc_want = 0
        deadline = time.monotonic() + 100
        while got < total and time.monotonic() < deadline:
            batch = ring.read_batch(4096, block=True, timeout=1.0)
            if not batch:
                continue
            chunk = b"".join(batch)
            want = np.arange(got, got + len(batch), dtype="<u8").tobytes()
            assert chunk == want, f"out of order or corrupt near message {got}"
            crc_got = zlib.crc32(chunk, crc_got)
            crc_want = zlib.crc32(want, crc_want)
            got += len(batch)
        assert got == total
        assert crc_got == crc_want
        assert ring.read() is None
        join_ok(p)


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(120)
def test_random_sizes_wrap_thousands_of_times(path: str, method: str) -> None:
    capacity, count, seed = 4096, 8000, 1234
    with SharedMemoryRing.create(path, capacity) as ring:
        p = start(method, h.produce_random, path, seed, count, capacity // 2)
        rng = random.Random(seed)
        total = 0
        for i in range(count):
            want = h.random_payload(rng, capacity // 2)
            got = ring.read(block=True, timeout=30)
            assert got == want, f"message {i} differs"
            total += len(want) + 8
        assert total // capacity > 1000, "the stream should wrap the ring thousands of times"
        join_ok(p)


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(120)
def test_8mib_frames_through_32mib_ring(path: str, method: str) -> None:
    size, count = 8 << 20, 12
    with SharedMemoryRing.create(path, 32 << 20) as ring:
        p = start(method, h.produce_frames, path, count, size)
        base = (np.arange(size, dtype=np.uint32) * 7) & 0xFF
        for i in range(count):
            v = ring.read_view(block=True, timeout=30)
            assert v is not None and len(v) == size
            arr = np.frombuffer(v, dtype=np.uint8)
            assert np.array_equal(arr, ((base + i) & 0xFF).astype(np.uint8)), f"frame {i} differs"
            del arr
        join_ok(p)


def test_read_into(path: str) -> None:
    with SharedMemoryRing.create(path, 4096) as ring:
        assert ring.read_into(bytearray(8)) is None  # empty
        ring.write_batch([b"hello", b"", b"x" * 20, b"tail"])
        buf = bytearray(b"." * 8)
        assert ring.read_into(buf) == 5 and buf == b"hello..."  # the rest is left as it was
        assert ring.read_into(buf) == 0
        with pytest.raises(BufferTooShort) as e:
            ring.read_into(memoryview(buf)[:4])
        assert e.value.args[0] == b"x" * 20  # taken from the ring, not lost
        assert isinstance(e.value, ValueError)
        arr = np.zeros(4, dtype=np.uint8)
        assert ring.read_into(arr) == 4 and arr.tobytes() == b"tail"
        ring.write(b"keep")
        for bad in (b"immutable", np.zeros(8, dtype=np.uint8)[::2], "text"):
            with pytest.raises(TypeError):
                ring.read_into(bad)  # type: ignore[arg-type]
        assert ring.read() == b"keep"  # a refused buffer consumed nothing
        t0 = time.monotonic()
        assert ring.read_into(buf, True, 0.05) is None
        assert time.monotonic() - t0 >= 0.04


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(120)
def test_read_into_one_buffer_for_8mib_frames(path: str, method: str) -> None:
    # The allocation-free copy: every frame lands in the same NumPy array.
    size, count = 8 << 20, 12
    with SharedMemoryRing.create(path, 2 * (size + 4096)) as ring:
        p = start(method, h.produce_frames, path, count, size)
        base = (np.arange(size, dtype=np.uint32) * 7) & 0xFF
        out = np.empty(size + 100, dtype=np.uint8)
        for i in range(count):
            assert ring.read_into(out, True, 30) == size
            assert np.array_equal(out[:size], ((base + i) & 0xFF).astype(np.uint8)), f"frame {i} differs"
        join_ok(p)


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(120)
def test_writer_sigkilled_mid_stream(path: str, method: str) -> None:
    with SharedMemoryRing.create(path, 1 << 20) as ring:
        p = start(method, h.produce_forever, path, 200_000)
        seen = 0
        next_seq = 0
        deadline = time.monotonic() + 60
        while seen < 40 and time.monotonic() < deadline:
            m = ring.read(block=True, timeout=1.0)
            if m is not None:
                assert h.verify_checked(m) == next_seq
                next_seq += 1
                seen += 1
        assert seen == 40
        os.kill(p.pid, signal.SIGKILL)  # most likely mid-copy of a 200 kB message
        p.join(10)
        # Only whole, valid messages follow, in order; then a clean timeout.
        while True:
            m = ring.read(block=True, timeout=0.3)
            if m is None:
                break
            assert h.verify_checked(m) == next_seq
            next_seq += 1
        assert ring.read(block=True, timeout=0.1) is None
        # The dead producer's role is taken over.
        assert ring.write(b"after the crash") is True
        assert ring.read() == b"after the crash"


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(60)
def test_second_producer_refused_dead_one_taken_over(path: str, method: str) -> None:
    with SharedMemoryRing.create(path, 4096) as ring:
        held, done = mp.get_context(method).Event(), mp.get_context(method).Event()
        p = start(method, h.hold_producer_then_exit, path, held, done, False)
        assert held.wait(30)
        with pytest.raises(AlreadyAttached, match="producer"):
            ring.write(b"second producer")  # the child holds a loan: it is producing now
        done.set()
        join_ok(p)  # exits without releasing: the file still names it
        assert ring.write(b"taken over") is True
        assert ring.read() == b"taken over"


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(60)
def test_producers_take_turns_across_processes(path: str, method: str) -> None:
    with SharedMemoryRing.create(path, 4096) as ring:
        assert ring.write_batch([b"parent 0", b"parent 1"]) == 2
        assert ring.write(b"parent 2")
        p = start(method, h.write_messages, path, [b"child 0", b"child 1"])
        join_ok(p)  # the parent's handle is idle: the child is the producer for its calls
        assert ring.write(b"parent 3")
        got = ring.read_batch(10)
        assert got == [b"parent 0", b"parent 1", b"parent 2", b"child 0", b"child 1", b"parent 3"]


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(60)
def test_child_blocking_write_into_a_ring_the_parent_filled(path: str, method: str) -> None:
    ctx = mp.get_context(method)
    q = ctx.Queue()
    with SharedMemoryRing.create(path, 64) as ring:
        while ring.write(b"parent!!"):
            pass
        p = ctx.Process(target=h.blocking_write_and_report, args=(path, q, 0.2), daemon=True)
        p.start()
        assert q.get(timeout=30) is False  # timed out: the ring stayed full
        join_ok(p)
        p = ctx.Process(target=h.blocking_write_and_report, args=(path, q, 30), daemon=True)
        p.start()
        space_sleepers = 128 + 264 + 4  # FORMAT.md: producers asleep waiting for space
        deadline = time.monotonic() + 30
        while _word32(path, space_sleepers) == 0 and p.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert ring.read() == b"parent!!"  # makes room: the child's write completes
        assert q.get(timeout=30) is True
        join_ok(p)
        assert ring.read_batch(10)[-1] == b"from kid"


def _word32(path: str, offset: int) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        return int.from_bytes(f.read(4), "little")


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.timeout(60)
def test_pickled_ring_crosses_processes(path: str, method: str) -> None:
    ctx = mp.get_context(method)
    q = ctx.Queue()
    with SharedMemoryRing.create(path, 4096) as ring:
        p = ctx.Process(target=h.read_one_and_report, args=(path, q), daemon=True)
        p.start()
        ring.write(b"ping")
        assert q.get(timeout=30) == b"ping"
        join_ok(p)


@pytest.mark.timeout(60)
def test_ctrl_c_interrupts_blocking_read(path: str) -> None:
    with SharedMemoryRing.create(path, 4096):
        script = textwrap.dedent(
            f"""
            import sys
            from mmapipc import SharedMemoryRing
            ring = SharedMemoryRing.open({path!r})
            print("ready", flush=True)
            try:
                ring.read(block=True)
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                sys.exit(0)
            print("returned", flush=True)
            sys.exit(3)
            """
        )
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.3)  # let it block in the futex wait
            child.send_signal(signal.SIGINT)
            out, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
        assert out.strip() == "interrupted"
        assert child.returncode == 0
