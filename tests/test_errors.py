"""The same condition raises the same exception from every primitive (README, "Exceptions")."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

import pytest

import mmapipc
from mmapipc import SharedMemory, SharedMemoryQueue, SharedMemoryRing

MAX_CAPACITY = 4294967288

# File offset of each primitive's `tail` (FORMAT.md): ring control block line 0, queue line 2.
TAIL = {"ring": 128, "queue": 128 + 2 * 128}


def _create(kind: str, path: str, capacity: int) -> Any:
    return (SharedMemoryRing if kind == "ring" else SharedMemoryQueue).create(path, capacity)


def _take(kind: str, channel: Any) -> Any:
    return channel.read() if kind == "ring" else channel.get(block=False)


def _fixed_batch(kind: str, channel: Any, size: int) -> Any:
    if kind == "ring":
        return channel.read_fixed_batch(16, size)
    return channel.get_fixed_batch(16, size, block=False)


def _scribble(path: str, offset: int, value: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, struct.pack("<Q", value), offset)
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", ["ring", "queue"])
def test_corrupt_positions_raise_corrupt_header(kind: str, shm_path: str) -> None:
    with _create(kind, shm_path, 4096) as ch:
        _scribble(shm_path, TAIL[kind], 12345)  # a misaligned tail: a hostile peer
        with pytest.raises(mmapipc.CorruptHeader, match=f"{kind} is corrupt: .*12345"):
            _take(kind, ch)


@pytest.mark.parametrize("kind", ["ring", "queue"])
def test_wrong_size_record_raises_corrupt_message(kind: str, shm_path: str) -> None:
    with _create(kind, shm_path, 4096) as ch:
        put = ch.write if kind == "ring" else ch.put
        put(b"x" * 10)
        put(b"y" * 32)
        with pytest.raises(
            mmapipc.CorruptMessage, match=f"message of 10 bytes in a {kind} of 32-byte records \\(taken and discarded\\)"
        ):
            _fixed_batch(kind, ch, 32)
        got = _fixed_batch(kind, ch, 32)
        assert got is not None and got[1] == 1, "the odd message was taken; the good one follows"


@pytest.mark.parametrize("kind", ["ring", "queue"])
def test_too_large_raises_value_error_of_one_shape(kind: str, shm_path: str) -> None:
    with _create(kind, shm_path, 64) as ch:
        put = ch.write if kind == "ring" else ch.put
        big = ch.max_message_size + 1
        with pytest.raises(
            ValueError, match=f"message of {big} bytes is larger than the {kind}'s maximum message size of {big - 1}"
        ):
            put(b"z" * big)


@pytest.mark.parametrize("kind", ["ring", "queue"])
@pytest.mark.parametrize("capacity", [0, 1, 60, 63, MAX_CAPACITY + 1])
def test_capacity_out_of_range_is_one_rule(kind: str, capacity: int, shm_path: str) -> None:
    expected = (
        f"{kind} capacity must be between 64 and {MAX_CAPACITY} bytes "
        f"\\(rounded up to a multiple of 8\\), got {capacity}"
    )
    with pytest.raises(ValueError, match=expected):
        _create(kind, shm_path, capacity)
    assert not os.path.exists(shm_path)


@pytest.mark.parametrize("kind", ["ring", "queue"])
@pytest.mark.parametrize(("asked", "got"), [(64, 64), (65, 72), (1001, 1008)])
def test_capacity_in_range_is_rounded_up_to_8(kind: str, asked: int, got: int, shm_path: str) -> None:
    with _create(kind, shm_path, asked) as ch:
        assert ch.capacity == got


OPENERS: dict[str, Callable[[str], Any]] = {
    "ring": SharedMemoryRing.open,
    "queue": SharedMemoryQueue.open,
    "shm": SharedMemory.open,
}
CREATORS: dict[str, Callable[[str], Any]] = {
    "ring": lambda p: SharedMemoryRing.create(p, 4096),
    "queue": lambda p: SharedMemoryQueue.create(p, 4096),
    "shm": lambda p: SharedMemory.create(p, 8),
}


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_empty_path_is_a_value_error(kind: str) -> None:
    with pytest.raises(ValueError, match="path is empty"):
        OPENERS[kind]("")
    with pytest.raises(ValueError, match="path is empty"):
        CREATORS[kind]("")


@pytest.mark.parametrize("kind", sorted(CREATORS))
def test_create_in_a_missing_directory_names_it(kind: str, tmp_path: Any) -> None:
    missing = tmp_path / "no-such-dir" / "deeper"
    with pytest.raises(FileNotFoundError, match=f"directory {missing} does not exist"):
        CREATORS[kind](str(missing / "x"))
    with pytest.raises(FileNotFoundError, match="no such shared-memory file"):
        OPENERS[kind](str(missing / "x"))


def test_timeouts_are_results_not_exceptions(shm_path: str) -> None:
    # No call raises on timeout (it returns False, None or a short count), so mmapipc exports no
    # timeout exception.
    assert not hasattr(mmapipc, "Timeout")
    assert "Timeout" not in mmapipc.__all__
    with SharedMemoryQueue.create(shm_path, 64) as q:
        assert q.get(timeout=0.01) is None
        assert q.put(b"a" * 48)
        assert q.put(b"b", timeout=0.01) is False
