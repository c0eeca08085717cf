"""What TypedRing and TypedQueue share and where they differ, checked on both: records from a
ring are released by the next receive, records from a queue hold their slots; the writer-version
rule, handles and repr; and the modules the schema code is split into import on
their own and re-export through ``mmapipc.schema``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")

import mmapipc
from mmapipc.typed import TypedQueue, TypedRing

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
TICK_V1 = SCHEMAS / "market/tick.v1.json"
TICK_V2 = SCHEMAS / "market/tick.v2.json"
CLASSES = {"ring": TypedRing, "queue": TypedQueue}


def tick(i: int) -> dict[str, Any]:
    return {"timestamp_ns": i, "symbol": np.frombuffer(b"SYM\0\0\0\0\0", np.uint8), "price": i / 2, "size": i, "side": i % 2}


@pytest.mark.parametrize("kind", CLASSES)
def test_create_and_open_give_the_class_asked_for(kind: str, shm_path: str) -> None:
    cls = CLASSES[kind]
    with cls.create(shm_path, 1 << 14, TICK_V1) as tx, cls.open(shm_path, TICK_V1) as rx:
        assert type(tx) is cls and type(rx) is cls
        inner = tx.ring if isinstance(tx, TypedRing) else tx.queue
        assert isinstance(inner, mmapipc.SharedMemoryRing if kind == "ring" else mmapipc.SharedMemoryQueue)
        assert repr(rx) == f"{cls.__name__}({inner.path!r}, {rx.schema.label})"
        assert rx.schema.name == "market.Tick" and rx.dtype == rx.schema.dtype
    with pytest.raises(mmapipc.Error, match=f"untyped {kind}"):
        cls.open(_untyped(kind, shm_path + "-untyped"))


def _untyped(kind: str, path: str) -> str:
    """Creates a byte channel of `kind` (no schema) at `path`."""
    byte_cls = mmapipc.SharedMemoryRing if kind == "ring" else mmapipc.SharedMemoryQueue
    byte_cls.create(path, 1 << 14).close()
    return path


def test_a_ring_record_is_released_by_the_next_receive(shm_path: str) -> None:
    with TypedRing.create(shm_path, 1 << 14, TICK_V1) as ring:
        for i in range(3):
            assert ring.send(tick(i))
        first = ring.recv(timeout=10.0)
        assert first is not None and first.size == 0
        second = ring.recv(timeout=10.0)
        assert second is not None and second.size == 1
        with pytest.raises(ValueError, match="released"):
            first.price
        batch = ring.recv_batch(4)  # a batch receive releases the last record too
        assert batch["size"].tolist() == [2]
        with pytest.raises(ValueError, match="released"):
            second.price
        del batch
        assert ring.send(tick(3))
        last = ring.recv(timeout=10.0)
        assert last is not None
    with pytest.raises(ValueError, match="released"):
        last.price  # close releases it as well


def test_a_queue_record_holds_its_slot_across_receives(shm_path: str) -> None:
    with TypedQueue.create(shm_path, 1 << 14, TICK_V1) as q:
        for i in range(3):
            assert q.send(tick(i))
        first = q.recv(timeout=10.0)
        second = q.recv(timeout=10.0)
        batch = q.recv_batch(4, timeout=10.0)
        assert first is not None and second is not None
        assert (int(first.size), int(second.size), batch["size"].tolist()) == (0, 1, [2])
        assert first.to_dict()["price"] == 0.0 and second.price == 0.5
        del first, second, batch


@pytest.mark.parametrize("kind", CLASSES)
def test_an_older_handle_reads_but_may_not_write(kind: str, shm_path: str) -> None:
    cls = CLASSES[kind]
    with cls.create(shm_path, 1 << 14, TICK_V2) as v2, cls.open(shm_path, TICK_V1) as v1:
        assert v2.send({**tick(5), "venue": 9})
        rec = v1.recv(timeout=10.0)
        assert rec is not None and rec.size == 5 and "venue" not in v1.dtype.names
        del rec
        for attempt in (lambda: v1.send(tick(1)), lambda: v1.send_batch(np.zeros(1, v1.dtype))):
            with pytest.raises(mmapipc.Error, match="only a v2 producer may write"):
                attempt()


@pytest.mark.parametrize("module", ["mmapipc.record", "mmapipc._dtype", "mmapipc._image", "mmapipc.schema", "mmapipc._typed_base", "mmapipc._typed_topic", "mmapipc.typed"])
def test_each_module_imports_first_without_a_cycle(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)


def test_schema_re_exports_the_record_reader() -> None:
    import mmapipc.record
    import mmapipc.schema
    from mmapipc.schema import Dim, Field, Record, Schema, image_view

    assert (Record, image_view, Dim) == (mmapipc.record.Record, mmapipc.record.image_view, mmapipc.record.Dim)
    s = Schema.from_file(str(TICK_V1))
    assert isinstance(s.fields[0], Field)
    assert isinstance(s.decode(s.encode(tick(4))), Record)
    assert set(mmapipc.schema.__all__) == {"Field", "Schema", "Record", "image_view", "Dim"}
