"""Every runnable example, end to end, as a user would run it (small sizes)."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


def test_video_frames_fan_out_to_two_subscribers() -> None:
    pytest.importorskip("numpy")
    out = run(str(EXAMPLES / "video_frames/fanout.py"), "--frames", "40", "--width", "320", "--height", "240")
    assert "display: 40 frames, every one in place" in out
    assert "recorder: 40 frames, every one in place" in out
    assert "written once" in out


def test_market_data_v1_and_v2_feeds() -> None:
    pytest.importorskip("numpy")
    out = run(str(EXAMPLES / "market_data/run.py"), "--ticks", "100000")
    assert "VWAP of 8 symbols matches the feed's" in out
    out = run(str(EXAMPLES / "market_data/run.py"), "--ticks", "50000", "--feed-version", "2")
    assert "from a market.Tick v2" in out and "matches the feed's" in out


def test_market_data_fan_out_to_two_strategies() -> None:
    pytest.importorskip("numpy")
    out = run(str(EXAMPLES / "market_data/fanout.py"), "--ticks", "100000")
    for role in ("momentum", "risk"):
        assert f"{role}: 100000 ticks, every one received" in out
    assert out.count("matches the feed's") == 2
    assert "published once" in out


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
    assert "leak check: fds: no leak" in out and "leak check: RSS: no leak" in out, out


def test_soak_fails_on_an_injected_leak() -> None:
    args = [sys.executable, str(EXAMPLES / "soak.py"), "--duration", "6", "--interval", "2", "--inject-leak"]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "LEAK: fds grew by" in text and "LEAK: RSS grew by" in text, text
    assert "soak done" in text, "every message still arrived; only the leak fails the run"


def _soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", EXAMPLES / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ops(n: int, seed: int = 0) -> list[float]:
    """Operations done at each of n samples: growing, unevenly (a loaded machine)."""
    rng = random.Random(seed)
    ops, total = [], 0.0
    for _ in range(n):
        total += rng.choice([0, 500, 2000, 3000, 10_000])
        ops.append(total)
    return ops


def test_leak_check_passes_noise_and_one_time_steps() -> None:
    leak = _soak().leak
    rng = random.Random(1)
    ops = _ops(60)
    noise = [(x, 97.0 + rng.choice([0, 0, 0, 1])) for x in ops]
    assert leak(noise, 4) is None
    flapping = [(x, 97.0 + i % 2) for i, x in enumerate(ops)]
    assert leak(flapping, 4) is None
    for at in (5, 30, 55):  # a step of 10 (over the allowance) anywhere in the run
        step = [(x, 97.0 + (10 if i >= at else 0)) for i, x in enumerate(ops)]
        assert leak(step, 4) is None, at
    # RSS (KiB): shared pages touched for the first time, then flat with jitter.
    warm = [(x, 160_000.0 + min(i, 10) * 600 + rng.uniform(-100, 100)) for i, x in enumerate(ops)]
    assert leak(warm, 16 * 1024) is None
    assert leak([(x, float(i * 100)) for i, x in enumerate(ops[:5])], 4) is None, "too few samples"


def test_leak_check_flags_growth_with_the_operations() -> None:
    leak = _soak().leak
    rng = random.Random(2)
    ops = _ops(60)
    span = ops[-1] - ops[0]
    steady = [(x, 100.0 + x / 1000) for x in ops]  # one fd per 1000 operations
    assert leak(steady, 4) == pytest.approx(span / 1000)
    noisy = [(x, 100.0 + x / 1000 + rng.choice([0, 1])) for x in ops]
    grew = leak(noisy, 4)
    assert grew is not None and abs(grew - span / 1000) < 2
    # A slow leak, a few descriptors over the whole run, still counts once over the allowance.
    slow = [(x, 100.0 + int(6 * x / span)) for x in ops]
    grew = leak(slow, 4)
    assert grew is not None and grew > 4
    assert leak([(x, 100.0 + int(3 * x / span)) for x in ops], 4) is None, "within the allowance"
