"""Video frames from a producer process to a Python/NumPy consumer process, in place.

    python examples/video_frames/run.py                     # Rust producer, 300 1080p frames
    python examples/video_frames/run.py --producer python   # the same consumer, Python producer
    python examples/video_frames/run.py --bench             # + NumPy on an in-process frame, for the ratio

The ring is created here with the ``video.Frame`` v1 schema in its header; the Rust producer
(``producer.rs``) fills each frame's pixels in place in the slot; the consumer (``consumer.py``)
reads each frame as an ndarray over the slot and computes per-channel means.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from consumer import consume  # noqa: E402

from mmapipc.typed import TypedRing  # noqa: E402


def rust_producer_cmd(path: str, frames: int, width: int, height: int) -> list[str]:
    subprocess.run(
        ["cargo", "build", "-q", "--release", "-p", "mmapipc", "--example", "video_producer"], cwd=ROOT, check=True
    )
    exe = ROOT / "target" / "release" / "examples" / "video_producer"
    return [str(exe), path, str(frames), str(width), str(height)]


def numpy_reference(frames: int, width: int, height: int) -> float:
    """Frames per second NumPy reaches on the same per-frame computation over in-process arrays."""
    frame = (np.arange(width * height * 3) % 251).astype(np.uint8).reshape(height, width, 3)
    frame.mean(axis=(0, 1))
    start = time.perf_counter()
    for _ in range(frames):
        frame.mean(axis=(0, 1))
    return frames / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--producer", choices=["rust", "python"], default="rust")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--bench", action="store_true", help="also time NumPy on an in-process frame and print the ratio")
    args = ap.parse_args()
    frame_bytes = args.width * args.height * 3
    path = os.path.join(tempfile.mkdtemp(prefix="mmapipc-video-"), "frames")
    ring = TypedRing.create(path, capacity=4 * (frame_bytes + 4096), schema=ROOT / "schemas/video/frame.v1.json")
    try:
        if args.producer == "rust":
            cmd = rust_producer_cmd(path, args.frames, args.width, args.height)
        else:
            cmd = [sys.executable, str(HERE / "py_producer.py"), path, str(args.frames), "--width", str(args.width), "--height", str(args.height)]
        print(f"ring {path}: {ring.schema.label}, {args.producer} producer, {args.frames} frames of {args.width}x{args.height}")
        producer = subprocess.Popen(cmd)
        stats = consume(path, args.frames)
        if producer.wait(timeout=120) != 0:
            raise SystemExit(f"producer failed with exit code {producer.returncode}")
        if args.bench:
            ref = numpy_reference(min(args.frames, 100), args.width, args.height)
            print(f"numpy in-process: {ref:,.0f} fps; through mmapipc: {stats['fps']:,.0f} fps = {stats['fps'] / ref:.0%} of in-process")
    finally:
        ring.close()
        ring.unlink()


if __name__ == "__main__":
    main()
