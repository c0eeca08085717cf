"""Python consumer of video frames: per-frame statistics with NumPy, straight from the slot.

The frame's pixels are an ``ndarray`` of shape (height, width, 3) over the ring's memory, no copy:
``rec.image("pixels", stride="stride")`` shapes them from the frame header's ``height``,
``width`` and ``stride`` fields (bounds-checked; strided when rows are padded).
Run through ``run.py`` (which creates the ring and starts a producer), or directly on an existing
ring: ``python examples/video_frames/consumer.py PATH FRAMES``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmapipc.typed import TypedRing


def consume(path: str, frames: int, verify: bool = True, quiet: bool = False) -> dict[str, float]:
    """Reads `frames` frames, computing each frame's mean per channel; returns fps and GB/s."""
    means = np.zeros((frames, 3))
    nbytes = 0
    with TypedRing.open(path) as ring:
        start = None
        for i in range(frames):
            rec = ring.recv(timeout=30.0)
            if rec is None:
                raise SystemExit(f"consumer: no frame {i} within 30 s")
            if start is None:
                start = time.perf_counter()  # time from the first frame on
            pixels = rec.image("pixels", stride="stride")  # (height, width, 3) over the slot
            h, w = pixels.shape[:2]
            means[i] = pixels.mean(axis=(0, 1))
            if verify and (int(rec.seq) != i or int(pixels[0, 0, 0]) != i % 251):
                raise SystemExit(f"consumer: frame {i} is wrong (seq {int(rec.seq)}, first byte {int(pixels[0, 0, 0])})")
            nbytes += pixels.nbytes
            del pixels  # release the slot's export before the next receive
        elapsed = time.perf_counter() - (start or time.perf_counter())
    fps = (frames - 1) / elapsed if elapsed > 0 else float("inf")
    gbs = nbytes * (frames - 1) / frames / elapsed / 1e9 if elapsed > 0 else float("inf")
    if not quiet:
        print(f"consumer: {frames} frames {w}x{h}, mean RGB of last frame {means[-1].round(2).tolist()}")
        print(f"consumer: {fps:,.0f} fps, {gbs:.2f} GB/s through shared memory")
    return {"fps": fps, "gbs": gbs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path")
    ap.add_argument("frames", type=int)
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()
    consume(args.path, args.frames, verify=not args.no_verify)


if __name__ == "__main__":
    main()
