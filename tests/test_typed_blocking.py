"""Typed receives block by default, batches included, for rings and queues alike: a
``recv_batch`` with no ``block`` argument waits for a record that another process sends only
once the receiver is asleep waiting for it."""

from __future__ import annotations

import inspect
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")

from mmapipc.typed import TypedQueue, TypedRing

TICK = Path(__file__).resolve().parent.parent / "schemas" / "market" / "tick.v1.json"
CLASSES = {"ring": TypedRing, "queue": TypedQueue}


def test_every_typed_receive_and_send_blocks_by_default() -> None:
    for cls in (TypedRing, TypedQueue):
        for method in ("recv", "recv_batch", "send", "send_batch"):
            default = inspect.signature(getattr(cls, method)).parameters["block"].default
            assert default is True, f"{cls.__name__}.{method} block={default}"


def _send_once_the_receiver_sleeps(kind: str, path: str) -> None:
    """Waits (up to a minute) until the channel has a sleeping consumer, then sends one tick."""
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run([sys.executable, "-m", "mmapipc", "inspect", "--json", path], capture_output=True, text=True, timeout=60)
        if json.loads(out.stdout)["live"]["counters"]["consumers_sleeping"] > 0:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the receiver never went to sleep: recv_batch did not block")
        time.sleep(0.02)
    with CLASSES[kind].open(path) as tx:
        rec = np.zeros(1, dtype=tx.dtype)
        rec["size"] = 7
        assert tx.send_batch(rec) == 1


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_recv_batch_waits_by_default(kind: str, shm_path: str, ctx: mp.context.BaseContext) -> None:
    with CLASSES[kind].create(shm_path, 1 << 16, TICK) as rx:
        sender: Any = ctx.Process(target=_send_once_the_receiver_sleeps, args=(kind, shm_path))  # type: ignore[attr-defined]
        sender.start()
        try:
            batch = rx.recv_batch(10, timeout=60.0)  # no `block`: the default must wait
            assert batch["size"].tolist() == [7], "recv_batch returned before the record came"
            del batch
        finally:
            sender.join(60)
            if sender.is_alive():
                sender.kill()
                sender.join()
        assert sender.exitcode == 0
