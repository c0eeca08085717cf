"""Fan-out of video frames: one Rust publisher, a Python display stand-in and a Python recorder,
each reading every frame in place from one typed topic (the frame is written once).

    python examples/video_frames/fanout.py [--frames 300] [--width 1920 --height 1080]

The topic is created here with the ``video.Frame`` v1 schema (block mode: the publisher waits
for the slower subscriber); the two subscriber processes attach before the publisher starts.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmapipc.typed import TypedTopic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def subscriber(path: str, frames: int, role: str) -> None:
    """`display`: per-frame channel means; `recorder`: appends every frame to a file."""
    topic = TypedTopic.open(path)
    sink = open(os.devnull, "wb") if role == "recorder" else None
    with topic.subscribe() as sub:
        print("ready", flush=True)
        start = None
        for i in range(frames):
            rec = sub.recv(timeout=30.0)
            if rec is None:
                raise SystemExit(f"{role}: no frame {i} within 30 s")
            start = start or time.perf_counter()
            pixels = rec.image("pixels", stride="stride")  # (height, width, 3) over the slot
            if int(rec.seq) != i or int(pixels[0, 0, 0]) != i % 251:
                raise SystemExit(f"{role}: frame {i} is wrong (seq {int(rec.seq)})")
            if sink is not None:
                sink.write(memoryview(pixels).cast("B"))  # type: ignore[arg-type]
            else:
                pixels.mean(axis=(0, 1))
            del pixels  # let go of the slot before the next receive
        secs = time.perf_counter() - (start or time.perf_counter())
    topic.close()
    fps = (frames - 1) / secs if secs > 0 else float("inf")
    print(f"{role}: {frames} frames, every one in place, {fps:,.0f} fps", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--role", choices=["display", "recorder"], help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role:
        subscriber(args.path, args.frames, args.role)
        return
    frame_bytes = args.width * args.height * 3
    path = os.path.join(tempfile.mkdtemp(prefix="mmapipc-fanout-"), "frames")
    topic = TypedTopic.create(path, 4 * (frame_bytes + 4096), ROOT / "schemas/video/frame.v1.json", max_subscribers=4)
    try:
        # Built before the subscribers start: their receive timeout must not run during a build.
        subprocess.run(
            ["cargo", "build", "-q", "--release", "-p", "mmapipc", "--example", "video_topic_producer"], cwd=ROOT, check=True
        )
        subs = []
        for role in ("display", "recorder"):
            p = subprocess.Popen(
                [sys.executable, __file__, "--role", role, "--path", path, "--frames", str(args.frames)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", f"{role} did not start"
            subs.append(p)
        exe = ROOT / "target" / "release" / "examples" / "video_topic_producer"
        print(f"topic {path}: {topic.schema.label}, 2 subscribers, {args.frames} frames of {args.width}x{args.height}")
        subprocess.run([str(exe), path, str(args.frames), str(args.width), str(args.height)], check=True, timeout=300)
        for p in subs:
            out, _ = p.communicate(timeout=120)
            print(out.strip())
            if p.returncode != 0:
                raise SystemExit(f"a subscriber failed with exit code {p.returncode}")
    finally:
        topic.close()
        topic.unlink()


if __name__ == "__main__":
    main()
