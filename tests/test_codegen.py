"""The checked-in generated modules match what codegen produces from schemas/ today."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpy")

from mmapipc import codegen
from mmapipc.schema import Schema

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "examples" / "generated"
SCHEMA_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "schemas").rglob("*.json"))


def test_checked_in_modules_are_current() -> None:
    rc = codegen.main([*SCHEMA_FILES, "-o", str(GENERATED), "--check", "--source-root", str(ROOT)])
    assert rc == 0, "examples/generated is stale: run `python -m mmapipc.codegen schemas/*/*.json -o examples/generated --source-root .`"


def test_every_schema_has_a_module() -> None:
    for f in SCHEMA_FILES:
        name = codegen.module_name(Schema.from_file(str(ROOT / f)))
        assert (GENERATED / f"{name}.py").exists()
        assert (GENERATED / f"{name}.pyi").exists()


def test_check_detects_a_stale_file(tmp_path: Path) -> None:
    schema = str(ROOT / "schemas/market/tick.v1.json")
    assert codegen.main([schema, "-o", str(tmp_path)]) == 0
    assert codegen.main([schema, "-o", str(tmp_path), "--check"]) == 0
    (tmp_path / "market_tick_v1.py").write_text("# edited\n")
    assert codegen.main([schema, "-o", str(tmp_path), "--check"]) == 1


def test_cli_module_entry_point(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mmapipc.codegen", str(ROOT / "schemas/video/frame.v1.json"), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "video_frame_v1.py" in out.stdout
    spec = importlib.util.spec_from_file_location("video_frame_v1", tmp_path / "video_frame_v1.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.NAME == "video.Frame" and mod.VERSION == 1
    assert mod.DTYPE.itemsize == mod.SCHEMA.size
    assert hasattr(mod.Frame, "pixels")


def test_bad_schema_file_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert codegen.main([str(bad), "-o", str(tmp_path)]) == 2


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, GENERATED / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_classes_with_pixel_arrays_have_an_image_accessor() -> None:
    import numpy as np

    frame_mod = _load("video_frame_v1")
    header = {"seq": 1, "timestamp_ns": 2, "width": 2, "height": 2, "stride": 8, "pixel_format": 1}
    msg = frame_mod.SCHEMA.encode({**header, "pixels": np.arange(16, dtype=np.uint8)})
    frame = frame_mod.Frame(msg)
    img = frame.image("pixels", stride="stride")
    assert img.shape == (2, 2, 3) and img[1].reshape(-1).tolist() == list(range(8, 14))
    assert "field: Literal['pixels']" in (GENERATED / "video_frame_v1.pyi").read_text()
    assert not hasattr(_load("market_tick_v1").Tick, "image"), "no Vec field, no image accessor"
