"""Child-process entry points for tests/test_aio_typed.py (importable, so they work under spawn).

Ticks are numbered: tick i has timestamp i, price i/2, size i, side i % 2 (``typed_helpers.ticks``),
so order and contents are one comparison.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

STOP = 2**63  # the timestamp of the record that ends a stream


def open_typed(path: str, kind: str) -> Any:
    """The typed ring, queue or topic at `path` (market.Tick v1)."""
    from mmapipc.typed import TypedQueue, TypedRing, TypedTopic

    from typed_helpers import TICK_V1

    cls = {"ring": TypedRing, "queue": TypedQueue, "topic": TypedTopic}[kind]
    return cls.open(path, TICK_V1)


def tick_fields(i: int) -> dict[str, Any]:
    import numpy as np

    return {"timestamp_ns": i, "symbol": np.frombuffer(b"SYM\0\0\0\0\0", np.uint8), "price": i / 2, "size": i, "side": i % 2}


def send_async_ticks(path: str, kind: str, n: int, waited: str) -> None:
    """An asyncio producer: ticks 0..n into a typed ring, queue or topic, in turn as a record
    (``send_async(rec)``), as keyword fields (``send_async(**fields)``) and as a batch of 7
    (``send_batch_async``). Creates the file `waited` once a send found the channel full and
    waited for room."""
    from mmapipc import _aio

    from typed_helpers import ticks

    real = _aio.wait_ready

    async def noting(*args: Any, **kwargs: Any) -> bool:
        if not os.path.exists(waited):
            open(waited, "w").close()
        return await real(*args, **kwargs)

    _aio.wait_ready = noting  # type: ignore[assignment]

    async def main() -> None:
        with open_typed(path, kind) as ch:
            recs = ticks(ch.dtype, 0, n)
            i = 0
            while i < n:
                if i % 3 == 0:
                    assert await ch.send_async(recs[i], timeout=60)
                elif i % 3 == 1:
                    assert await ch.send_async(**tick_fields(i), timeout=60)
                else:
                    k = min(7, n - i)
                    assert await ch.send_batch_async(recs[i : i + k], timeout=60) == k
                    i += k
                    continue
                i += 1

    asyncio.run(asyncio.wait_for(main(), 120))


def drain_paced(path: str, kind: str, ready: str, out: str, pause: float) -> None:
    """A consumer of a typed ring, queue or topic (a subscription, made first: a block-mode
    topic then holds the publisher back for it): creates the file `ready`, then receives ticks
    with a pause after each, up to the STOP record and whatever follows within 0.5 s; writes
    the timestamps received (STOP excluded) to `out` as JSON."""
    got: list[int] = []
    with open_typed(path, kind) as ch:
        rx = ch.subscribe() if kind == "topic" else ch
        open(ready, "w").close()
        stopped = False
        while True:
            rec = rx.recv(timeout=0.5 if stopped else 60)
            if rec is None:
                assert stopped, "no record for 60 s"
                break
            t = int(rec.timestamp_ns)
            if t == STOP:
                stopped = True
            else:
                got.append(t)
            del rec
            time.sleep(pause)
        rx.close()
    with open(out + ".tmp", "w") as f:
        json.dump(got, f)
    os.rename(out + ".tmp", out)
