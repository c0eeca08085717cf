"""SharedMemory: the raw region, across real processes and against bad files."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import stat
import struct

import pytest

import mmapipc
from mmapipc import SharedMemory

import shm_children
from conftest import run_child

HEADER = 128
DATA_OFFSET = 4096


# ---------------------------------------------------------------------------------------------
# Across processes


def test_value_written_in_child_is_read_in_parent(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=1024) as shm:
        assert run_child(ctx, shm_children.write_values, shm_path) == 0
        assert shm.read(0, 10) == b"from child"
        assert shm.read_int(16) == -123456789
        assert shm.read_uint(24) == 2**64 - 1


def test_value_written_in_parent_is_read_in_child(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=64) as shm:
        shm.write(0, b"from parent")
        shm.write_int(16, -42)
        shm.write_uint(24, 7)
        assert run_child(ctx, shm_children.check_values, shm_path) == 0


def test_view_written_in_child_is_seen_through_parent_view(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=256) as shm:
        view = shm.get_view(100, 8)
        assert bytes(view) == b"\0" * 8
        assert run_child(ctx, shm_children.write_through_view, shm_path) == 0
        assert bytes(view) == b"VIEWVIEW"
        assert shm.read(100, 8) == b"VIEWVIEW"
        view.release()


def test_handle_pickles_by_path_to_children(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=64) as shm:
        shm.write(0, b"pickle")
        assert run_child(ctx, shm_children.check_handle, shm) == 0
        assert shm.read(8, 4) == b"back"


def test_pickle_round_trip_opens_same_file(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=64) as shm:
        shm.write(0, b"x")
        again = pickle.loads(pickle.dumps(shm))
        assert isinstance(again, SharedMemory)
        assert again.read(0, 1) == b"x"
        assert again.path == shm.path
        again.close()


# ---------------------------------------------------------------------------------------------
# API behaviour


def test_original_readme_example(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=1024) as shm:
        shm.write(0, b"Hello")
        shm.write_uint(100, 42)
    with SharedMemory.open(shm_path) as shm:
        assert shm.read(0, 5) == b"Hello"
        assert shm.read_uint(100) == 42
        assert shm.size == 1024
        assert len(shm) == 1024


def test_new_region_is_zeroed_and_repr_says_what_it_is(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=100) as shm:
        assert shm.read(0, 100) == bytes(100)
        assert repr(shm) == f'SharedMemory(path="{shm_path}", size=100)'
    assert "closed" in repr(shm)


def test_accepts_any_contiguous_buffer(shm_path: str) -> None:
    np = pytest.importorskip("numpy")
    with SharedMemory.create(shm_path, size=64) as shm:
        shm.write(0, bytearray(b"ab"))
        shm.write(2, memoryview(b"cd"))
        shm.write(4, np.array([1, 2], dtype=np.uint16))
        shm.write(8, b"")
        assert shm.read(0, 8) == b"abcd\x01\x00\x02\x00"
        with pytest.raises(TypeError, match="bytes-like"):
            shm.write(0, "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            shm.write(0, np.arange(8, dtype=np.uint8)[::2])  # not contiguous


def test_bounds_are_checked_and_nothing_is_written(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=16) as shm:
        with pytest.raises(IndexError):
            shm.write(10, b"1234567")
        with pytest.raises(IndexError):
            shm.write(-1, b"x")
        with pytest.raises(IndexError):
            shm.read(0, 17)
        with pytest.raises(IndexError):
            shm.read(16, 1)
        with pytest.raises(IndexError):
            shm.read(0, -1)
        with pytest.raises(IndexError):
            shm.read_int(9)
        with pytest.raises(IndexError):
            shm.write_uint(12, 1)
        with pytest.raises(IndexError):
            shm.get_view(8, 9)
        assert shm.read(0, 16) == bytes(16)
        assert shm.read(16, 0) == b""


def test_int_range_is_enforced(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=16) as shm:
        with pytest.raises(OverflowError):
            shm.write_int(0, 2**63)
        with pytest.raises(OverflowError):
            shm.write_uint(0, -1)
        with pytest.raises(OverflowError):
            shm.write_uint(0, 2**64)
        shm.write_int(0, -(2**63))
        assert shm.read_int(0) == -(2**63)
        assert shm.read_uint(0) == 2**63
        shm.write_uint(3, 0x0102030405060708)  # unaligned
        assert shm.read(3, 8) == struct.pack("<Q", 0x0102030405060708)
        assert shm.read_uint(3) == 0x0102030405060708


def test_closed_handle_raises_value_error(shm_path: str) -> None:
    shm = SharedMemory.create(shm_path, size=16)
    shm.close()
    shm.close()  # idempotent
    assert shm.closed
    for call in (
        lambda: shm.read(0, 1),
        lambda: shm.write(0, b"x"),
        lambda: shm.read_int(0),
        lambda: shm.write_uint(0, 1),
        lambda: shm.get_view(0, 1),
        lambda: shm.size,
    ):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_views_outlive_close(shm_path: str) -> None:
    """Documented choice: close() with live views keeps the mapping until the last view dies."""
    shm = SharedMemory.create(shm_path, size=32)
    view = shm.get_view(0, 4)
    shm.close()
    view[:] = b"live"
    assert bytes(view) == b"live"
    with SharedMemory.open(shm_path) as again:
        assert again.read(0, 4) == b"live"
    view.release()
    with pytest.raises(ValueError):
        bytes(view)


def test_numpy_array_over_view_keeps_mapping(shm_path: str) -> None:
    np = pytest.importorskip("numpy")
    shm = SharedMemory.create(shm_path, size=64)
    arr = np.frombuffer(shm.get_view(0, 64), dtype=np.uint64)
    shm.close()
    arr[:] = 5
    with SharedMemory.open(shm_path) as again:
        assert again.read_uint(56) == 5


def test_create_refuses_existing_path_and_missing_file_is_not_found(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=8):
        with pytest.raises(FileExistsError):
            SharedMemory.create(shm_path, size=8)
    os.unlink(shm_path)
    with pytest.raises(FileNotFoundError):
        SharedMemory.open(shm_path)


def test_bad_sizes_and_modes(shm_path: str) -> None:
    with pytest.raises(ValueError):
        SharedMemory.create(shm_path, size=0)
    with pytest.raises(ValueError):
        SharedMemory.create(shm_path, size=-5)
    with pytest.raises(ValueError):
        SharedMemory.create(shm_path, size=1 << 50)
    with pytest.raises(ValueError):
        SharedMemory.create(shm_path, size=8, mode=0o10000)
    assert not os.path.exists(shm_path)


def test_unlink_keeps_handles_usable(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=8) as shm:
        shm.unlink()
        assert not os.path.exists(shm_path)
        shm.write(0, b"ok")
        assert shm.read(0, 2) == b"ok"
        with pytest.raises(FileNotFoundError):
            shm.unlink()


def test_bare_name_lives_in_dev_shm(devshm_name: str) -> None:
    with SharedMemory.create(devshm_name, size=8) as shm:
        assert shm.path == f"/dev/shm/{devshm_name}"
        assert os.path.exists(f"/dev/shm/{devshm_name}")
    with SharedMemory.open(devshm_name) as shm:
        assert shm.size == 8


# ---------------------------------------------------------------------------------------------
# Security


def test_file_mode_is_0600_by_default_and_settable(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=8):
        assert stat.S_IMODE(os.stat(shm_path).st_mode) == 0o600
    os.unlink(shm_path)
    with SharedMemory.create(shm_path, size=8, mode=0o660):
        assert stat.S_IMODE(os.stat(shm_path).st_mode) == 0o660


def test_create_over_planted_symlink_leaves_target_alone(tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "victim")
    with open(target, "wb") as f:
        f.write(b"precious")
    link = os.path.join(tmp_path, "link")
    os.symlink(target, link)
    with pytest.raises(FileExistsError):
        SharedMemory.create(link, size=4096)
    with pytest.raises(OSError):
        SharedMemory.open(link)  # O_NOFOLLOW
    with open(target, "rb") as f:
        assert f.read() == b"precious"
    assert stat.S_IMODE(os.stat(target).st_mode) != 0  # untouched
    # A dangling symlink must not be followed to create its target either.
    dangling = os.path.join(tmp_path, "dangling")
    os.symlink(os.path.join(tmp_path, "would-be-created"), dangling)
    with pytest.raises(FileExistsError):
        SharedMemory.create(dangling, size=8)
    assert not os.path.exists(os.path.join(tmp_path, "would-be-created"))


def test_directory_is_refused(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(OSError):
        SharedMemory.open(os.fspath(tmp_path))


# ---------------------------------------------------------------------------------------------
# Bad files: each opened in a child, which must exit normally (not by a signal).


def _valid_file_bytes(path: str, size: int = 64) -> bytes:
    with SharedMemory.create(path, size=size):
        pass
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def _plant(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


BAD_FILES = {
    "zero_length": (lambda good: b"", "CorruptHeader"),
    "shorter_than_header": (lambda good: good[:100], "CorruptHeader"),
    "truncated_data": (lambda good: good[: DATA_OFFSET + 10], "CorruptHeader"),
    "garbage": (lambda good: bytes((i * 37 + 11) % 256 for i in range(len(good))), "CorruptHeader"),
    "all_zero_not_ready": (lambda good: bytes(len(good)), "NotReady"),
    "state_init_not_ready": (lambda good: _patch(good, 8, "<I", 0), "NotReady"),
    "unknown_state": (lambda good: _patch(good, 8, "<I", 12345), "CorruptHeader"),
    "future_version": (lambda good: _patch(good, 12, "<I", 99), "IncompatibleLayout"),
    "wrong_kind": (lambda good: _patch(good, 16, "<I", 3), "IncompatibleLayout"),
    "wrong_abi": (lambda good: _patch(good, 20, "<I", 0x01000400), "IncompatibleLayout"),
    "size_lies": (lambda good: _patch(good, 24, "<Q", 1 << 39), "CorruptHeader"),
    "data_offset_lies": (lambda good: _patch(good, 64, "<Q", 64), "CorruptHeader"),
    "data_size_huge": (lambda good: _patch(good, 72, "<Q", 2**64 - 1), "CorruptHeader"),
    "longer_than_header_says": (lambda good: good + b"\0" * 100, "CorruptHeader"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_gives_typed_error_in_child(case: str, ctx: mp.context.BaseContext, shm_path: str) -> None:
    make, exc_name = BAD_FILES[case]
    good = _valid_file_bytes(shm_path)
    _plant(shm_path, make(good))
    code = run_child(ctx, shm_children.open_expecting, shm_path, exc_name)
    assert code == 0, f"child exited with {code} (negative = killed by signal {-code})"


def test_error_hierarchy() -> None:
    assert issubclass(mmapipc.CorruptHeader, mmapipc.Error)
    assert issubclass(mmapipc.SchemaMismatch, mmapipc.IncompatibleLayout)
    assert issubclass(mmapipc.BufferTooShort, ValueError)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown a file to another user")
def test_file_of_another_user_is_refused_unless_allowed(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=8):
        pass
    os.chown(shm_path, 65534, 65534)
    with pytest.raises(PermissionError, match="allow_foreign_owner"):
        SharedMemory.open(shm_path)
    with SharedMemory.open(shm_path, allow_foreign_owner=True) as shm:
        assert shm.size == 8


# ---------------------------------------------------------------------------------------------
# Resources


def test_no_space_is_a_clear_error_at_create(shm_path: str) -> None:
    """Pages are reserved at create: running out of room is an OSError then, never SIGBUS later."""
    code = run_child(mp.get_context("fork"), shm_children.create_under_file_size_limit, shm_path)
    assert code == 0, f"child exited with {code}"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _mappings() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc")
def test_thousands_of_open_close_cycles_leak_nothing(shm_path: str) -> None:
    with SharedMemory.create(shm_path, size=4096):
        pass
    for _ in range(50):  # warm up allocator/caches
        SharedMemory.open(shm_path).close()
    fds, maps = _open_fds(), _mappings()
    for i in range(3000):
        shm = SharedMemory.open(shm_path)
        if i % 3 == 0:
            v = shm.get_view(0, 8)
            v.release()
        shm.close()
    for _ in range(500):
        with SharedMemory.open(shm_path) as shm:
            shm.read(0, 8)
    assert _open_fds() == fds
    assert _mappings() <= maps + 2


# ---------------------------------------------------------------------------------------------
# What every handle class shares (path, closed, close, unlink, with, repr, pickling)


@pytest.mark.parametrize(
    ("create", "fields"),
    [
        (lambda p: SharedMemory.create(p, size=64), "size=64"),
        (lambda p: mmapipc.SharedMemoryRing.create(p, capacity=64), "capacity=64, pending=0 messages/0 bytes"),
        (lambda p: mmapipc.SharedMemoryQueue.create(p, capacity=4096), "capacity=4096, qsize=0"),
    ],
    ids=["SharedMemory", "SharedMemoryRing", "SharedMemoryQueue"],
)
def test_handle_classes_share_path_close_repr_and_pickling(create, fields: str, shm_path: str) -> None:
    h = create(shm_path)
    name = type(h).__name__
    assert h.path == shm_path and not h.closed
    assert repr(h) == f'{name}(path="{shm_path}", {fields})'
    assert pickle.loads(pickle.dumps(h)).path == shm_path
    with pytest.raises(KeyError):
        with h as entered:
            assert entered is h
            raise KeyError("__exit__ does not swallow exceptions")
    assert h.closed
    assert repr(h) == f'{name}(path="{shm_path}", closed)'
    with pytest.raises(ValueError, match=f"{name} handle is closed"):
        pickle.dumps(h)
    h.close()  # twice is harmless
    h.unlink()
    assert not os.path.exists(shm_path)
