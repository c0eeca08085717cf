"""Dead peers between real processes: a SIGKILLed but not yet reaped ring producer (a zombie, as
under a supervisor that restarts a crashed child before it joins it) is taken over; a creator
killed in the middle of `create` leaves nothing at the path."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import takeover_helpers as h

from mmapipc import SharedMemoryQueue, SharedMemoryRing


def _state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (Z: zombie, T: stopped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    return chr(stat[stat.rindex(b")") + 2])


def _wait_state(pid: int, states: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while _state(pid) not in tuple(states):
        assert time.monotonic() < deadline, f"{what}: process {pid} never reached state {states}"
        time.sleep(0.001)


def test_killed_unreaped_producer_is_replaced(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemoryRing.create(shm_path, 4096) as consumer:
        ready = ctx.Event()
        p = ctx.Process(target=h.produce_then_hang, args=(shm_path, ready))  # type: ignore[attr-defined]
        p.start()
        try:
            assert ready.wait(60), "the child never became the producer"
            os.kill(p.pid, signal.SIGKILL)
            # Not joined: the child stays a zombie until the end of the test.
            _wait_state(p.pid, "ZX", "the killed producer")
            with SharedMemoryRing.open(shm_path) as producer:
                assert producer.write(b"after") is True
            assert consumer.read() == b"from the child"
            assert consumer.read() == b"after"
        finally:
            p.kill()
            p.join()


@pytest.fixture
def devshm_path() -> Iterator[str]:
    name = f"mmapipc-test-creator-{uuid.uuid4().hex[:12]}"
    path = f"/dev/shm/{name}"
    yield path
    for entry in os.listdir("/dev/shm"):
        if entry == name or entry.startswith(f".{name}."):
            os.unlink(f"/dev/shm/{entry}")


def test_creator_killed_mid_create_leaves_nothing_at_the_path(
    ctx: mp.context.BaseContext, devshm_path: str
) -> None:
    st = os.statvfs("/dev/shm")
    free = st.f_bavail * st.f_frsize
    # Reserving pages takes about 0.25 s per GiB: 2 GiB keep the creator busy long enough.
    size = min(2 << 30, free // 3 // 8 * 8)
    if size < 256 << 20:
        pytest.skip(f"/dev/shm has {free} bytes free, fewer than the 768 MiB this test needs")
    name = os.path.basename(devshm_path)
    for _attempt in range(5):
        p = ctx.Process(target=h.create_queue, args=(devshm_path, size))  # type: ignore[attr-defined]
        p.start()
        prefix = f".{name}.{p.pid}-"
        deadline = time.monotonic() + 120
        while not os.path.exists(devshm_path) and not any(
            e.startswith(prefix) and e.endswith(".mmapipc-creating") for e in os.listdir("/dev/shm")
        ):
            assert p.exitcode is None, "the creator exited before it began"
            assert time.monotonic() < deadline, "the creator never began"
            time.sleep(0.0005)
        time.sleep(0.05)
        os.kill(p.pid, signal.SIGSTOP)
        _wait_state(p.pid, "TtZX", "the stopped creator")
        if os.path.exists(devshm_path):
            # Only a complete file may stand there: the create was done before the stop.
            SharedMemoryQueue.open(devshm_path).close()
            p.kill()
            p.join()
            os.unlink(devshm_path)
            continue
        # In the middle of create: no file at the path yet (not a corrupt or unready one).
        with pytest.raises(FileNotFoundError):
            SharedMemoryQueue.open(devshm_path)
        p.kill()
        p.join()
        assert not os.path.exists(devshm_path), "a half-created file stands at the final path"
        with pytest.raises(FileNotFoundError):
            SharedMemoryQueue.open(devshm_path)
        with SharedMemoryQueue.create(devshm_path, 4096) as q:
            assert q.put(b"x")
        return
    pytest.fail("the creator finished before it could be stopped, 5 times")
