"""Every runnable example, end to end, as a user would run it (small sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(*args: str, timeout: float = 600) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def test_demo() -> None:
    out = run(str(EXAMPLES / "demo.py"))
    assert "1,000,000 messages of 56 B" in out and "all in order" in out
    assert "each done exactly once" in out
    assert "records read as NumPy structured arrays in place" in out or "typed:  skipped" in out


def test_queue_example() -> None:
    out = run(str(EXAMPLES / "queue_example.py"))
    assert "100" in out


def test_ring_buffer_example() -> None:
    out = run(str(EXAMPLES / "ring_buffer_example.py"))
    assert "1000" in out


@pytest.mark.parametrize("producer", ["rust", "python"])
def test_video_frames(producer: str) -> None:
    pytest.importorskip("numpy")
    out = run(str(EXAMPLES / "video_frames/run.py"), "--producer", producer, "--frames", "40", "--width", "320", "--height", "240")
    assert "consumer: 40 frames 320x240" in out
    assert "fps" in out


def test_market_data_v1_and_v2_feeds() -> None:
    pytest.importorskip("numpy")
    out = run(str(EXAMPLES / "market_data/run.py"), "--ticks", "100000")
    assert "VWAP of 8 symbols matches the feed's" in out
    out = run(str(EXAMPLES / "market_data/run.py"), "--ticks", "50000", "--feed-version", "2")
    assert "from a market.Tick v2" in out and "matches the feed's" in out


def test_market_data_incompatible_consumer_refused() -> None:
    pytest.importorskip("numpy")
    out = run(str(EXAMPLES / "market_data/run.py"), "--incompatible")
    assert "field price: f64 at 16 size 8 (channel) vs f32 at 16 size 4 (reader)" in out


def test_soak_short_run_loses_nothing_and_leaks_nothing() -> None:
    out = run(str(EXAMPLES / "soak.py"), "--duration", "6", "--interval", "2")
    assert "soak done" in out
    line = next(l for l in out.splitlines() if l.startswith("soak done"))
    ring, queue = line.split("ring ")[1].split(" received")[0], line.split("queue ")[1].split(";")[0]
    assert ring.split("/")[0] == ring.split("/")[1], line
    assert queue.split("/")[0] == queue.split("/")[1], line
