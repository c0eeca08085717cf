"""Python reads schemas and archived records written by Rust, in place and bounds-checked."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")

import mmapipc
import mmapipc.schema
from mmapipc.schema import Record, Schema

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Archived example messages produced by the Rust crate (examples/dump_messages.rs)."""
    out = tmp_path_factory.mktemp("messages")
    subprocess.run(
        ["cargo", "run", "-q", "-p", "mmapipc", "--example", "dump_messages", "--", str(out)],
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    return out


def load(messages: Path, name: str, version: int) -> bytes:
    return (messages / f"{name}.v{version}.bin").read_bytes()


def schema(rel: str) -> Schema:
    return Schema.from_file(str(SCHEMAS / rel))


def test_checked_in_schemas_parse_and_fingerprints_verify() -> None:
    files = sorted(SCHEMAS.rglob("*.json"))
    assert len(files) >= 6
    for f in files:
        s = Schema.from_file(str(f))
        assert s.computed_fingerprint() == s.fingerprint
        assert json.loads(f.read_text()) == s.to_dict()


def test_tampered_schema_is_rejected() -> None:
    d = json.loads((SCHEMAS / "market/tick.v1.json").read_text())
    d["fields"][2]["offset"] = 12
    with pytest.raises(ValueError, match="does not match its layout"):
        Schema.from_dict(d)


COMPAT = ROOT / "mmapipc" / "tests" / "fixtures" / "schema_compat.json"


def compat_table() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc = json.loads(COMPAT.read_text())
    return doc["schemas"], doc["cases"]


@pytest.mark.parametrize("case", compat_table()[1], ids=lambda c: str(c["case"]))
def test_python_verdicts_match_the_table_rust_is_held_to(case: dict[str, Any]) -> None:
    """The same verdict and message as mmapipc/tests/schema_compat.rs checks for the Rust crate."""
    schemas, _ = compat_table()
    channel = Schema.from_dict(schemas[case["channel"]])
    reader = Schema.from_dict(schemas[case["reader"]])
    if case["mismatch"] is None:
        channel.check_reader(reader)
        return
    with pytest.raises(mmapipc.SchemaMismatch) as info:
        channel.check_reader(reader)
    assert str(info.value) == case["mismatch"]


def test_fingerprint_and_canonical_text_are_the_rust_crates() -> None:
    """Worked example of FORMAT.md ("Schema blob"): the table's t.Tick v1."""
    schemas, _ = compat_table()
    tick = Schema.from_dict(schemas["tick_v1"])
    assert tick.canonical() == (
        "mmapipc-schema-1;endian=little;palign=8;pw=4;size=16;align=8;ts:u64@0/8;price:f64@8/8;"
    )
    assert tick.computed_fingerprint() == tick.fingerprint == "0xfc4f29d708405576"
    frame = Schema.from_dict(schemas["frame_v1"])
    assert "pos:t.Point{8,4;x:f32@0/4;y:f32@4/4;}@24/8;" in frame.canonical()
    assert "pixels:Vec<u8>@8/8;label:String@16/8;" in frame.canonical()
    assert "symbol:[u8;8]@32/8;" in frame.canonical()
    for f in sorted(SCHEMAS.rglob("*.json")):  # and every checked-in schema, written by Rust
        s = Schema.from_file(str(f))
        assert s.computed_fingerprint() == s.fingerprint


def format_md_section(title: str) -> str:
    text = (ROOT / "FORMAT.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_format_md_schema_blob_example_is_true() -> None:
    section = format_md_section("Schema blob")
    canonical = next(line for line in section.splitlines() if line.startswith("mmapipc-schema-1;"))
    fingerprint = section.split("FNV-1a 64 -> ")[1].split()[0]
    tick = schema("market/tick.v1.json")
    assert (tick.canonical(), tick.computed_fingerprint()) == (canonical, fingerprint)


def test_format_md_typed_payload_example_is_true(messages: Path) -> None:
    section = format_md_section("Typed payload")
    dump = section.split("```text\n")[1].split("```")[0]
    expected = bytes.fromhex("".join(line[6:53] for line in dump.splitlines()))
    assert load(messages, "test.Labeled", 1) == expected


def test_check_reader_compares_schemas_as_given() -> None:
    """A schema built in Python with a stale fingerprint is compared, not rejected as unparsable."""
    schemas, _ = compat_table()
    tick = Schema.from_dict(schemas["tick_v1"])
    stale = dataclasses.replace(tick, fingerprint="0x0000000000000000")
    with pytest.raises(mmapipc.SchemaMismatch, match=r"fingerprint: 0x0000000000000000 \(channel\) vs 0xfc4f29d708405576"):
        stale.check_reader(tick)
    with pytest.raises(ValueError, match="invalid schema JSON"):
        dataclasses.replace(tick, format={}).check_reader(tick)


def test_dtype_has_exact_offsets_and_itemsize() -> None:
    s = schema("market/tick.v1.json")
    dt = s.dtype
    assert dt.itemsize == s.size == 32
    assert [dt.fields[f.name][1] for f in s.fields] == [f.offset for f in s.fields]
    assert dt["price"] == np.dtype("<f8")
    assert dt["symbol"].shape == (8,)


def test_tick_decodes_in_place(messages: Path) -> None:
    raw = load(messages, "market.Tick", 1)
    s = schema("market/tick.v1.json")
    rec = s.decode(raw)
    assert rec.price == 189.25
    assert rec["size"] == 300
    assert int(rec.timestamp_ns) == 1_700_000_000_000_000_001
    assert bytes(rec.symbol).rstrip(b"\0") == b"AAPL"
    arr = np.frombuffer(raw, dtype=s.dtype)
    assert arr["price"][0] == 189.25


def test_frame_pixels_are_a_view_and_v1_reads_v2(messages: Path) -> None:
    v1 = schema("video/frame.v1.json")
    v2 = schema("video/frame.v2.json")
    buf = bytearray(load(messages, "video.Frame", 2))
    rec = v1.decode(buf, root_size=v2.size)  # an old reader on a new channel
    assert (int(rec.seq), int(rec.width), int(rec.height)) == (10, 4, 3)
    pixels = rec.pixels
    assert pixels.tolist() == [(i * 7) % 256 for i in range(36)]
    buf[0] ^= 0xFF  # pixels are stored first: a view sees the change
    assert pixels[0] == ((0 * 7) % 256) ^ 0xFF
    assert v2.decode(bytes(buf)).exposure_us == 250
    v2.check_reader(v1)
    with pytest.raises(mmapipc.SchemaMismatch, match="reader needs v2"):
        v1.check_reader(v2)


def test_tensor_data_and_header(messages: Path) -> None:
    s = schema("ml/tensor.v1.json")
    rec = s.decode(load(messages, "ml.Tensor", 1))
    shape = tuple(int(x) for x in rec.shape[: int(rec.ndim)])
    data = rec.data.view("<f4").reshape(shape)
    assert data.tolist() == [[1.5, -2.0, 3.25], [4.0, 5.5, 6.0]]


def test_strings_inline_and_out_of_line(messages: Path) -> None:
    s = Schema.from_file(str(messages / "test.Labeled.v1.json"))
    rec = s.decode(load(messages, "test.Labeled", 1))
    assert rec.short == "hi"
    assert rec.long == "a longer label, out of line"
    assert rec.tags.tolist() == [3, 1, 4]
    assert rec.to_dict()["id"] == 5


@pytest.mark.parametrize("delta", [-10_000, 10_000, -(2**31), 2**31 - 1])
def test_corrupt_relative_pointer_raises_never_reads_outside(messages: Path, delta: int) -> None:
    s = schema("video/frame.v1.json")
    buf = bytearray(load(messages, "video.Frame", 1))
    at = len(buf) - s.size + s.field("pixels").offset
    buf[at : at + 4] = delta.to_bytes(4, "little", signed=True)
    with pytest.raises(mmapipc.CorruptMessage, match="outside"):
        s.decode(bytes(buf)).pixels


def test_corrupt_length_raises(messages: Path) -> None:
    s = schema("video/frame.v1.json")
    buf = bytearray(load(messages, "video.Frame", 1))
    at = len(buf) - s.size + s.field("pixels").offset + 4
    buf[at : at + 4] = (10**9).to_bytes(4, "little")
    with pytest.raises(mmapipc.CorruptMessage):
        s.decode(bytes(buf)).pixels


def test_short_message_raises() -> None:
    s = schema("market/tick.v1.json")
    with pytest.raises(mmapipc.CorruptMessage, match="shorter"):
        s.decode(b"\0" * 8)


def test_unknown_field_names_known_ones() -> None:
    rec = schema("market/tick.v1.json").decode(bytes(32))
    with pytest.raises(AttributeError, match="price"):
        rec.prize  # noqa: B018


def test_isinstance_record() -> None:
    rec = schema("market/tick.v1.json").decode(bytes(32))
    assert isinstance(rec, Record)
    assert os.fspath(SCHEMAS)  # schemas directory exists


# -- (height, width, channels) views of pixel arrays ------------------------------------------


def frame_message(width: int, height: int, stride: int, pixels: Any, **header: int) -> bytearray:
    """A video.Frame v1 message (encoded here); the header values need not match the pixels."""
    values = {"seq": 1, "timestamp_ns": 2, "width": width, "height": height, "stride": stride, "pixel_format": 1}
    return bytearray(schema("video/frame.v1.json").encode({**values, **header, "pixels": pixels}).tobytes())


def test_frame_image_is_a_strided_view_of_the_message() -> None:
    h, w, stride = 4, 5, 20  # rows of 15 bytes, padded to 20
    pixels = (np.arange(h * stride) % 251).astype(np.uint8)
    buf = frame_message(w, h, stride, pixels)
    rec = schema("video/frame.v1.json").decode(buf)
    img = rec.image("pixels", stride="stride")
    assert img.shape == (h, w, 3) and img.dtype == np.uint8 and img.strides == (stride, 3, 1)
    assert np.array_equal(img, pixels.reshape(h, stride)[:, : w * 3].reshape(h, w, 3))
    assert np.shares_memory(img, rec.buffer) and not img.flags.owndata
    # Sizes as numbers, a grayscale view, packed rows.
    assert rec.image("pixels", height=2, width=20, channels=None).shape == (2, 20)
    gray = rec.image("pixels", height=h, width=w * 3, channels=1, stride=stride)
    assert gray.shape == (h, w * 3, 1) and np.array_equal(gray[..., 0], img.reshape(h, w * 3))
    packed = rec.image("pixels", height=h, width=stride // 4, channels=4)
    assert packed.strides == (stride, 4, 1) and np.array_equal(packed.reshape(-1), pixels)
    # The views see the message bytes change (pixels are stored first in the message): no copy.
    assert int(img[1, 1, 0]) == int(pixels[stride + 3])
    buf[stride + 3] ^= 0xFF
    assert int(img[1, 1, 0]) == int(pixels[stride + 3]) ^ 0xFF == int(packed[1, 0, 3])


def test_frame_image_of_a_rust_frame(messages: Path) -> None:
    rec = schema("video/frame.v1.json").decode(load(messages, "video.Frame", 1))
    img = rec.image("pixels", stride="stride")
    assert img.shape == (3, 4, 3)
    assert img.reshape(-1).tolist() == [(i * 7) % 256 for i in range(36)]


@pytest.mark.parametrize(
    ("height", "width", "stride", "match"),
    [
        (5, 5, 20, "needs 95 B, the array has 80 B"),  # one row too many
        (2**32 - 1, 5, 20, "the array has 80 B"),  # a corrupt u32
        (4, 7, 20, "shorter than a row"),  # rows longer than the stride
        (4, 2**32 - 1, 2**32 - 1, "shorter than a row"),
        (4, 5, 2**31, "the array has 80 B"),  # a huge stride
        (4, 5, 14, "shorter than a row"),
    ],
)
def test_corrupt_frame_header_raises_never_reads_outside(height: int, width: int, stride: int, match: str) -> None:
    pixels = np.zeros(80, np.uint8)
    rec = schema("video/frame.v1.json").decode(frame_message(width, height, stride, pixels))
    with pytest.raises(ValueError, match=match):
        rec.image("pixels", stride="stride")


def test_frame_image_edges_and_wrong_fields() -> None:
    s = schema("video/frame.v1.json")
    # The last row needs no padding after it: 3 rows of 15 bytes at a stride of 20 fit in 55.
    rec = s.decode(frame_message(5, 3, 20, np.arange(55, dtype=np.uint8)))
    assert rec.image("pixels", stride="stride")[2, 4].tolist() == [52, 53, 54]
    empty = s.decode(frame_message(0, 0, 0, np.zeros(0, np.uint8))).image("pixels", stride="stride")
    assert empty.shape == (0, 0, 3)
    with pytest.raises(TypeError, match="not an array"):
        rec.image("seq")
    with pytest.raises(KeyError, match="no field 'depth'"):
        rec.image("pixels", height="depth")
    with pytest.raises(ValueError, match="invalid image size"):
        rec.image("pixels", channels=0)
    u16 = np.zeros(20, np.uint16)
    with pytest.raises(ValueError, match="not a multiple"):
        mmapipc.schema.image_view(u16, 2, 3, 3, 19)
    assert mmapipc.schema.image_view(u16, 2, 3, 3, 20).strides == (20, 6, 2)
    tick = schema("market/tick.v1.json").decode(bytes(32))
    assert tick.image("symbol", height=2, width=4, channels=1).shape == (2, 4, 1)  # a fixed array works too
    with pytest.raises(TypeError, match="'price' .height. is not an integer"):
        tick.image("symbol", height="price", width=8, channels=1)
    rec.release()
    with pytest.raises(ValueError, match="released"):
        rec.image("pixels", stride="stride")
