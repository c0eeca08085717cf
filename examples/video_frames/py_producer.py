"""Python producer of video frames (the same frames as producer.rs), for the same consumer.

By default each frame's pixels are written straight into a loaned slot (``TypedRing.loan``, then
``np.copyto(loan.image(stride="stride"), frame)`` into its (height, width, 3) view); ``--copy``
builds each message and copies it in with ``send`` instead."""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmapipc.typed import TypedRing


def produce(path: str, frames: int, width: int = 1920, height: int = 1080, in_place: bool = True) -> None:
    stride = width * 3
    pattern = (np.arange(stride * height + 251) % 251).astype(np.uint8)
    with TypedRing.open(path) as ring:
        start = time.perf_counter()
        for seq in range(frames):
            shift = seq % 251
            header = {"seq": seq, "timestamp_ns": time.monotonic_ns(), "width": width, "height": height,
                      "stride": stride, "pixel_format": 1}
            frame = pattern[shift : shift + stride * height].reshape(height, width, 3)
            if in_place:
                # Loan the slot and write the pixels straight into it (no intermediate message).
                loan = ring.loan("pixels", stride * height, header, timeout=30.0)
                if loan is None:
                    raise SystemExit("producer: consumer stalled for 30 s")
                np.copyto(loan.image(stride="stride"), frame)  # the (height, width, 3) view of the slot
                loan.commit()
            elif not ring.send({**header, "pixels": frame}, timeout=30.0):
                raise SystemExit("producer: consumer stalled for 30 s")
        secs = time.perf_counter() - start
    print(f"python producer: {frames} frames in {secs:.2f} s ({frames / secs:,.0f} fps)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path")
    ap.add_argument("frames", type=int)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--copy", action="store_true", help="build each message and copy it in (send) instead of loaning the slot")
    args = ap.parse_args()
    produce(args.path, args.frames, args.width, args.height, in_place=not args.copy)


if __name__ == "__main__":
    main()
