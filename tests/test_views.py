"""Ring views through one exporter per handle: what holds a view's record, and what does not."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmapipc import AlreadyAttached, SharedMemoryRing


@pytest.fixture
def path(tmp_path: Path) -> Iterator[str]:
    p = str(tmp_path / f"ring-{uuid.uuid4().hex}")
    yield p
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def test_a_reference_to_the_exporter_holds_the_record(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as ring, SharedMemoryRing.open(path) as other:
        ring.write_batch([b"held", b"next"])
        view = ring.read_view()
        assert view is not None
        exporter = view.obj
        view.release()
        with pytest.raises(BufferError):
            memoryview(exporter)  # disarmed: never a view of recycled bytes
        with pytest.raises(AlreadyAttached, match="consumer"):
            other.read()
        with pytest.raises(BufferError):
            ring.read()  # the record stays held while the exporter is referenced
        del exporter
        assert ring.read() == b"next"
        assert other.read() is None


def test_numpy_array_on_the_view_base_holds_the_record(path: str) -> None:
    # ndarray(buffer=view) keeps the view's exporter as its base without holding a buffer.
    with SharedMemoryRing.create(path, 256) as ring, SharedMemoryRing.open(path) as other:
        ring.write_batch([b"12345678", b"second"])
        view = ring.read_view()
        assert view is not None
        arr = np.ndarray(shape=(8,), dtype=np.uint8, buffer=view)
        view.release()  # the array still reads the record: it must stay held
        with pytest.raises(AlreadyAttached, match="consumer"):
            other.read()
        with pytest.raises(BufferError):
            ring.read()
        assert arr.tobytes() == b"12345678"
        del arr
        assert ring.read() == b"second"


def test_every_export_holds_the_record_until_it_goes(path: str) -> None:
    with SharedMemoryRing.create(path, 256) as ring, SharedMemoryRing.open(path) as other:
        ring.write_batch([b"abcdef", b"second"])
        view = ring.read_view()
        assert view is not None
        part = view[2:]  # shares the view's buffer
        again = memoryview(view.obj)  # a second buffer of the same record
        view.release()
        with pytest.raises(AlreadyAttached, match="consumer"):
            other.read()
        del part
        with pytest.raises(BufferError):
            ring.read()  # `again` still exports the record
        assert bytes(again) == b"abcdef"
        arr = np.frombuffer(again, dtype=np.uint8)
        again.release()  # not yet: the array holds its own export
        with pytest.raises(AlreadyAttached, match="consumer"):
            other.read()
        assert arr.tobytes() == b"abcdef"
        del arr  # the last export: record and role released
        assert other.read() == b"second"
