"""Python producer of video frames (the same frames as producer.rs), for the same consumer."""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmapipc.typed import TypedRing


def produce(path: str, frames: int, width: int = 1920, height: int = 1080) -> None:
    stride = width * 3
    pattern = (np.arange(stride * height + 251) % 251).astype(np.uint8)
    with TypedRing.open(path) as ring:
        start = time.perf_counter()
        for seq in range(frames):
            shift = seq % 251
            ok = ring.send(
                {
                    "seq": seq,
                    "timestamp_ns": time.monotonic_ns(),
                    "width": width,
                    "height": height,
                    "stride": stride,
                    "pixel_format": 1,
                    "pixels": pattern[shift : shift + stride * height],
                },
                timeout=30.0,
            )
            if not ok:
                raise SystemExit("producer: consumer stalled for 30 s")
        secs = time.perf_counter() - start
    print(f"python producer: {frames} frames in {secs:.2f} s ({frames / secs:,.0f} fps)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path")
    ap.add_argument("frames", type=int)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    args = ap.parse_args()
    produce(args.path, args.frames, args.width, args.height)


if __name__ == "__main__":
    main()
