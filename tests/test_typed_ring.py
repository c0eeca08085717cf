"""Typed rings and queues across languages: Rust producer -> Python consumer and Python producer
-> Rust consumer for every example type, with per-message checks; schema checks from Python;
batches of fixed-size records read in place as structured arrays (rings and queues)."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")

import mmapipc
import typed_helpers as th
from conftest import run_child
from mmapipc.schema import Schema
from mmapipc.typed import TypedQueue, TypedRing

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
KINDS = {"tick": "market/tick.v1.json", "frame": "video/frame.v1.json", "tensor": "ml/tensor.v1.json"}
COUNT = 3000


@pytest.fixture(scope="module")
def peer() -> Path:
    """The Rust peer binary (examples/typed_peer.rs)."""
    subprocess.run(["cargo", "build", "-q", "-p", "mmapipc", "--example", "typed_peer"], cwd=ROOT, check=True, timeout=900)
    exe = ROOT / "target" / "debug" / "examples" / "typed_peer"
    assert exe.exists()
    return exe


def expected(kind: str, i: int) -> dict[str, object]:
    """Message i of each kind, exactly as typed_peer.rs generates it."""
    if kind == "tick":
        return {"timestamp_ns": i, "symbol": np.frombuffer(b"SYM\0\0\0\0\0", np.uint8), "price": i / 2, "size": i, "side": i % 2}
    if kind == "frame":
        return {
            "seq": i, "timestamp_ns": 10 * i, "width": 16, "height": 9, "stride": 48, "pixel_format": 1,
            "pixels": ((np.arange(16 * 9 * 3) + i) % 256).astype(np.uint8),
        }
    data = (np.arange(6) + i).astype("<f4").view(np.uint8)
    return {"dtype": 1, "ndim": 2, "shape": np.array([2, 3, 0, 0]), "strides": np.array([12, 4, 0, 0]), "data": data}


def check(kind: str, rec: mmapipc.schema.Record, i: int) -> None:
    want = expected(kind, i)
    for name, value in want.items():
        got = rec[name]
        assert np.array_equal(np.asarray(got), np.asarray(value)), f"{kind} {i} field {name}: {got!r} != {value!r}"


CHANNELS = {"ring": (TypedRing, "produce", "consume"), "queue": (TypedQueue, "produce-queue", "consume-queue")}


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_rust_producer_python_consumer(kind: str, channel: str, peer: Path, tmp_path: Path) -> None:
    cls, produce, _ = CHANNELS[channel]
    path = str(tmp_path / f"r2p-{kind}")
    with cls.create(path, 1 << 14, SCHEMAS / KINDS[kind]) as chan:  # type: ignore[attr-defined]
        producer = subprocess.Popen([str(peer), produce, kind, path, str(COUNT)])
        try:
            for i in range(COUNT):
                rec = chan.recv(timeout=30.0)
                assert rec is not None, f"message {i} did not arrive"
                check(kind, rec, i)
                del rec
        finally:
            assert producer.wait(timeout=60) == 0


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_python_producer_rust_consumer(kind: str, channel: str, peer: Path, tmp_path: Path) -> None:
    cls, _, consume = CHANNELS[channel]
    path = str(tmp_path / f"p2r-{kind}")
    with cls.create(path, 1 << 14, SCHEMAS / KINDS[kind]) as chan:  # type: ignore[attr-defined]
        consumer = subprocess.Popen([str(peer), consume, kind, path, str(COUNT)], stdout=subprocess.PIPE, text=True)
        for i in range(COUNT):
            assert chan.send(expected(kind, i), timeout=30.0)
        out, _ = consumer.communicate(timeout=60)
        assert consumer.returncode == 0, out
        assert out.startswith(f"ok {COUNT} ")


def test_schema_and_dtype_come_from_the_header(tmp_path: Path) -> None:
    path = str(tmp_path / "hdr")
    with TypedRing.create(path, 4096, SCHEMAS / "market/tick.v2.json"):
        pass
    with TypedRing.open(path) as ring:  # no schema given: read from the file
        assert (ring.schema.name, ring.schema.version) == ("market.Tick", 2)
        assert ring.dtype.itemsize == 32 and ring.dtype.names is not None and "venue" in ring.dtype.names
    # A v1 reader may read a v2 channel ...
    with TypedRing.open(path, SCHEMAS / "market/tick.v1.json") as ring:
        assert ring.dtype.names is not None and "venue" not in ring.dtype.names
        with pytest.raises(mmapipc.Error, match="only a v2 producer"):
            ring.send(expected("tick", 0))


def test_incompatible_reader_is_refused_with_diff(tmp_path: Path) -> None:
    path = str(tmp_path / "mismatch")
    with TypedRing.create(path, 4096, SCHEMAS / "market/tick.v1.json"):
        pass
    v1 = Schema.from_file(str(SCHEMAS / "market/tick.v1.json"))
    fields = tuple(
        dataclasses.replace(f, type={"kind": "scalar", "scalar": "f32"}, size=4) if f.name == "price" else f for f in v1.fields
    )
    bad = dataclasses.replace(v1, fields=fields)
    bad = dataclasses.replace(bad, fingerprint=bad.computed_fingerprint())
    with pytest.raises(mmapipc.SchemaMismatch, match=r"field price: f64 at 16 size 8 \(channel\) vs f32 at 16 size 4 \(reader\)"):
        TypedRing.open(path, bad)
    with pytest.raises(mmapipc.SchemaMismatch, match="reader needs v2"):
        TypedRing.open(path, SCHEMAS / "market/tick.v2.json")


def test_untyped_ring_is_not_a_typed_ring(tmp_path: Path) -> None:
    path = str(tmp_path / "untyped")
    with mmapipc.SharedMemoryRing.create(path, 4096):
        pass
    with pytest.raises(mmapipc.Error, match="untyped"):
        TypedRing.open(path)


def test_send_errors_name_the_field(tmp_path: Path) -> None:
    with TypedRing.create(str(tmp_path / "errs"), 1 << 14, SCHEMAS / "video/frame.v1.json") as ring:
        good = expected("frame", 1)
        with pytest.raises(TypeError, match="no field"):
            ring.send({**good, "colour": 1})
        with pytest.raises(TypeError, match="missing field"):
            ring.send({k: v for k, v in good.items() if k != "width"})
        with pytest.raises(ValueError, match="width"):
            ring.send({**good, "width": "wide"})
        assert ring.send(**good)
        rec = ring.recv(timeout=1)
        assert rec is not None and int(rec.width) == 16


def test_batch_of_ticks_is_one_structured_array(tmp_path: Path) -> None:
    with TypedRing.create(str(tmp_path / "batch"), 1 << 16, SCHEMAS / "market/tick.v1.json") as ring:
        for i in range(100):
            ring.send(expected("tick", i))
        batch = ring.recv_batch(1000)
        assert batch.shape == (100,)
        assert batch["price"].mean() == pytest.approx(np.arange(100).mean() / 2)
        assert batch["size"].tolist() == list(range(100))
        assert not batch.flags.writeable and not batch.flags.owndata  # a view of the slots
        with pytest.raises(BufferError):
            ring.recv_batch(10)  # the previous batch still holds its slots
        del batch
        for i in range(5):
            ring.send(expected("tick", 100 + i))
        again = ring.recv_batch(10)
        assert again["size"].tolist() == [100, 101, 102, 103, 104]
        del again
        assert ring.recv_batch(10, block=False).size == 0


@pytest.mark.parametrize("channel", sorted(CHANNELS))
def test_send_batch_of_structured_records(channel: str, peer: Path, tmp_path: Path) -> None:
    cls, _, consume = CHANNELS[channel]
    path = str(tmp_path / f"batch-{channel}")
    with cls.create(path, 1 << 16, SCHEMAS / KINDS["tick"]) as chan:  # type: ignore[attr-defined]
        consumer = subprocess.Popen([str(peer), consume, "tick", path, "5000"], stdout=subprocess.PIPE, text=True)
        recs = np.zeros(5000, dtype=chan.dtype)
        for i in range(5000):
            for name, value in expected("tick", i).items():
                recs[i][name] = value
        sent = 0
        while sent < len(recs):
            sent += chan.send_batch(recs[sent:], timeout=30.0)
        out, _ = consumer.communicate(timeout=60)
        assert consumer.returncode == 0, out
        with pytest.raises(TypeError):
            TypedRing.create(str(tmp_path / "frames"), 1 << 16, SCHEMAS / KINDS["frame"]).send_batch(np.zeros(1))


def test_python_loan_fills_frame_pixels_in_place(peer: Path, tmp_path: Path) -> None:
    path = str(tmp_path / "loan")
    with TypedRing.create(path, 1 << 16, SCHEMAS / KINDS["frame"]) as ring:
        consumer = subprocess.Popen([str(peer), "consume", "frame", path, "200"], stdout=subprocess.PIPE, text=True)
        for i in range(200):
            want = expected("frame", i)
            header = {k: v for k, v in want.items() if k != "pixels"}
            loan = ring.loan("pixels", 16 * 9 * 3, header, timeout=30.0)
            assert loan is not None
            px = loan.image(stride="stride")  # (9, 16, 3) over the slot, from the header's sizes
            assert px.shape == (9, 16, 3) and np.shares_memory(px, loan.array)
            np.copyto(px, np.asarray(want["pixels"]).reshape(9, 16, 3))
            with pytest.raises(ValueError, match="loaned slot is outstanding"):
                ring.ring.write(b"x")
            with pytest.raises(BufferError):
                loan.commit()  # px still exports the slot: nothing is published
            del px
            loan.commit()
        out, _ = consumer.communicate(timeout=60)
        assert consumer.returncode == 0, out
        loan = ring.loan("pixels", 4, {k: v for k, v in expected("frame", 0).items() if k != "pixels"}, timeout=1.0)
        assert loan is not None
        loan.abort()
        assert ring.recv(block=False) is None, "an aborted loan publishes nothing"
        with pytest.raises(TypeError, match="not a Vec"):
            ring.loan("seq", 4, {})



@pytest.mark.parametrize("kind, vec", [("frame", "pixels"), ("tensor", "data")])
def test_loan_headers_match_the_encoder_and_bad_headers_raise_as_send_does(kind: str, vec: str, tmp_path: Path) -> None:
    # A loan packs its root struct itself when every other field is a scalar (frame), and asks
    # the general encoder otherwise (tensor: arrays): the bytes must be what send writes, and
    # the errors send's.
    want = expected(kind, 3)
    array = np.asarray(want.pop(vec))
    header = dict(want)
    with TypedRing.create(str(tmp_path / kind), 1 << 14, SCHEMAS / KINDS[kind]) as ring:
        ring.send({**header, vec: array}, timeout=1.0)
        sent = ring.recv(timeout=1.0)
        assert sent is not None
        sent_bytes = bytes(sent.buffer)
        del sent
        first = next(iter(header))
        rest = {k: v for k, v in header.items() if k != first}
        for values, kwargs in ((header, {}), (None, header), ({first: header[first]}, rest)):
            loan = ring.loan(vec, array.size, values, timeout=1.0, **kwargs)
            assert loan is not None
            loan.array[:] = array
            loan.commit()
            rec = ring.recv(timeout=1.0)
            assert rec is not None and bytes(rec.buffer) == sent_bytes
            del rec
        with pytest.raises(TypeError, match="missing field"):
            ring.loan(vec, 4, {first: header[first]}, timeout=1.0)
        with pytest.raises(TypeError, match="no field"):
            ring.loan(vec, 4, {**header, "colour": 1}, timeout=1.0)
        with pytest.raises(ValueError, match=rf"{ring.schema.name}.{first} \("):
            ring.loan(vec, 4, {**header, first: "wide"}, timeout=1.0)
        with pytest.raises(ValueError, match=r"count must be >= 0"):
            ring.loan(vec, -1, header, timeout=1.0)
        assert ring.recv(block=False) is None, "a refused loan publishes nothing"


def test_loan_image_writes_padded_rows_in_place_and_the_reader_sees_them(tmp_path: Path) -> None:
    h, w, stride = 6, 10, 40  # rows of 30 bytes, padded to 40
    header = {"seq": 7, "timestamp_ns": 1, "width": w, "height": h, "stride": stride, "pixel_format": 1}
    frame = (np.arange(h * w * 3) % 253).astype(np.uint8).reshape(h, w, 3)
    with TypedRing.create(str(tmp_path / "padded"), 1 << 14, SCHEMAS / KINDS["frame"]) as ring:
        loan = ring.loan("pixels", h * stride, header, timeout=1.0)
        assert loan is not None
        loan.array[:] = 0xEE  # padding marker
        view = loan.image(stride="stride")
        assert view.shape == (h, w, 3) and view.strides == (stride, 3, 1) and view.flags.writeable
        np.copyto(view, frame)
        with pytest.raises(ValueError, match="needs"):
            loan.image(height=h + 1, stride="stride")  # one row more than was loaned
        with pytest.raises(KeyError, match="not a header field"):
            loan.image(stride="row_bytes")
        with pytest.raises(BufferError):
            loan.commit()  # `view` still exports the slot
        del view
        loan.commit()
        rec = ring.recv(timeout=1.0)
        assert rec is not None
        got = rec.image("pixels", stride="stride")
        assert np.array_equal(got, frame) and not got.flags.writeable
        assert (rec.pixels.reshape(h, stride)[:, w * 3 :] == 0xEE).all(), "the row padding was not written"
        del got
        rec = None
        assert ring.recv(block=False) is None


# -- typed queue batches in place -------------------------------------------------------------

def _mapping_of(path: str) -> list[tuple[int, int]]:
    """Address ranges where this process maps the file at `path` (from /proc/self/maps)."""
    real = os.path.realpath(path)
    spans = []
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].strip() == real:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                spans.append((lo, hi))
    return spans


def _in_mapping(arr: Any, spans: list[tuple[int, int]]) -> bool:
    lo = arr.__array_interface__["data"][0]
    hi = lo + (len(arr) - 1) * arr.strides[0] + arr.dtype.itemsize
    return any(a <= lo and hi <= b for a, b in spans)


def _check_ticks(batch: Any, start: int) -> None:
    want = th.ticks(batch.dtype, start, len(batch))
    for name in ("timestamp_ns", "symbol", "price", "size", "side"):
        assert np.array_equal(batch[name], want[name]), f"ticks {start}..{start + len(batch)} field {name}"


def test_queue_batch_from_a_producer_process(ctx: Any, shm_path: str) -> None:
    n = 6000
    with TypedQueue.create(shm_path, 4096, th.TICK_V1) as q:  # 85 ticks a lap: many wraps
        spans = _mapping_of(shm_path)
        assert spans, "the queue file is mapped"
        producer = ctx.Process(target=th.produce_ticks, args=(shm_path, n, 50))
        producer.start()
        try:
            got, sizes = 0, []
            while got < n:
                batch = q.recv_batch(64, timeout=30.0)
                assert batch.size > 0, f"no tick after {got} within 30 s"
                assert batch.dtype == q.dtype and batch.shape == (len(batch),) and len(batch) <= 64
                _check_ticks(batch, got)
                prices = batch["price"]
                # In place: a strided view whose memory is the queue's mapping, nothing copied.
                assert not batch.flags.writeable and not batch.flags.owndata and not prices.flags.owndata
                assert np.shares_memory(prices, batch) and prices.base is batch
                assert type(batch.base).__name__ == "SharedBuffer"
                assert batch.strides == (48,) and _in_mapping(batch, spans) and _in_mapping(prices, spans)
                assert prices.mean() == pytest.approx((got + (got + len(batch) - 1)) / 4)
                got += len(batch)
                sizes.append(len(batch))
                del batch, prices
        finally:
            producer.join(60)
        assert producer.exitcode == 0
        assert got == n and q.queue.qsize() == 0
        assert max(sizes) > 1, "records arrive in batches, not one by one"
        assert q.recv_batch(64, block=False).size == 0


def test_queue_batch_holds_its_slots_until_every_array_is_gone(ctx: Any, shm_path: str) -> None:
    with TypedQueue.create(shm_path, 1024, th.TICK_V1) as q, TypedQueue.open(shm_path, th.TICK_V1) as tx:
        full = 0
        while tx.send(th.ticks(tx.dtype, full, 1)[0], block=False):
            full += 1
        assert full == 21  # 21 records of 48 bytes in 1024
        batch = q.recv_batch(100)
        assert len(batch) == full and q.queue.qsize() == 0
        prices, first = batch["price"], batch[:3]
        snapshot = batch.copy()
        del batch  # the derived arrays still hold the slots
        assert not tx.send(th.ticks(tx.dtype, 100, 1)[0], block=False)
        assert run_child(ctx, th.try_send_tick, shm_path, 100) == th.REFUSED, "another process cannot reuse them either"
        assert np.array_equal(prices, snapshot["price"]) and np.array_equal(first, snapshot[:3])
        del prices
        assert not tx.send(th.ticks(tx.dtype, 100, 1)[0], block=False), "`first` still holds them"
        del first
        assert run_child(ctx, th.try_send_tick, shm_path, 100) == th.SENT
        again = q.recv_batch(10)
        _check_ticks(again, 100)


def test_forked_child_dropping_an_inherited_queue_batch_frees_nothing(shm_path: str) -> None:
    fork = mp.get_context("fork")
    with TypedQueue.create(shm_path, 1024, th.TICK_V1) as q:
        assert q.send_batch(th.ticks(q.dtype, 0, 21), block=False) == 21
        holder = [q.recv_batch(100)]  # the batch's only reference, so the child can drop it
        assert len(holder[0]) == 21
        assert run_child(fork, th.drop_inherited_batch_then_send, holder, shm_path, 21) == th.REFUSED
        _check_ticks(holder[0], 0)
        holder.clear()
        assert run_child(fork, th.try_send_tick, shm_path, 21) == th.SENT


def test_queue_batch_stops_at_the_wrap(shm_path: str) -> None:
    with TypedQueue.create(shm_path, 1024, th.TICK_V1) as q:
        assert q.send_batch(th.ticks(q.dtype, 0, 15)) == 15
        first = q.recv_batch(100)
        assert len(first) == 15
        del first
        assert q.send_batch(th.ticks(q.dtype, 15, 15)) == 15  # 720..1008, then 0..432 after the wrap
        a = q.recv_batch(100)
        b = q.recv_batch(100)
        assert (len(a), len(b)) == (6, 9), "one equally spaced run per call: up to the wrap, then the rest"
        _check_ticks(a, 15)
        _check_ticks(b, 21)
        assert q.recv_batch(100, timeout=0.01).size == 0
        assert q.recv_batch(0).size == 0
        with pytest.raises(ValueError, match="max_count"):
            q.recv_batch(-1)


def test_queue_batch_refuses_what_is_not_a_record_of_the_channel(shm_path: str, tmp_path: Path) -> None:
    with TypedQueue.create(shm_path, 4096, th.TICK_V1) as q:
        with pytest.raises(mmapipc.SchemaMismatch, match="reader needs v2"):
            TypedQueue.open(shm_path, SCHEMAS / "market/tick.v2.json")
        with pytest.raises(mmapipc.SchemaMismatch, match="name: market.Tick"):
            TypedQueue.open(shm_path, SCHEMAS / "video/frame.v1.json")
        assert q.send_batch(th.ticks(q.dtype, 0, 2)) == 2
        assert q.queue.put(b"not a tick")  # a raw producer misbehaving
        assert q.send_batch(th.ticks(q.dtype, 2, 2)) == 2
        ok = q.recv_batch(100)
        assert len(ok) == 2, "the run stops before the odd message"
        with pytest.raises(mmapipc.CorruptMessage, match="message of 10 bytes in a queue of 32-byte records"):
            q.recv_batch(100)
        rest = q.recv_batch(100)
        _check_ticks(rest, 2)  # the odd message was discarded, nothing else
        del ok, rest
    with TypedQueue.create(str(tmp_path / "frames"), 1 << 16, SCHEMAS / KINDS["frame"]) as frames:
        with pytest.raises(TypeError, match="variable-size"):
            frames.recv_batch(10)


def test_v1_reader_batches_a_v2_queue(shm_path: str) -> None:
    with TypedQueue.create(shm_path, 4096, SCHEMAS / "market/tick.v2.json") as tx:
        recs = th.ticks(tx.dtype, 0, 10)
        recs["venue"] = 7
        assert tx.send_batch(recs) == 10
        with TypedQueue.open(shm_path, th.TICK_V1) as rx:
            batch = rx.recv_batch(100)
            assert batch.dtype.itemsize == 32 and batch.dtype.names is not None and "venue" not in batch.dtype.names
            assert batch.strides == (48,)
            _check_ticks(batch, 0)
