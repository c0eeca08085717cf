"""A queue says how much room producers have and what holds it (views not yet released)."""

from __future__ import annotations

import multiprocessing as mp

import takeover_helpers as h

from mmapipc import SharedMemoryQueue


def test_views_held_elsewhere_are_seen_in_stats(ctx: mp.context.BaseContext, shm_path: str) -> None:
    with SharedMemoryQueue.create(shm_path, 1024) as q:
        assert q.available_write() == 1024
        assert q.stats()["used_bytes"] == 0
        n = 0
        while q.put(b"m" * 100, block=False):
            n += 1
        used = q.stats()["used_bytes"]
        assert used > 1024 - 120 and q.available_write() == 1024 - used
        assert q.put(b"m" * 100, timeout=0.01) is False
        assert q.stats()["view_stalls"] == 0, "full of waiting messages, not of views"
        holding, done = ctx.Event(), ctx.Event()
        p = ctx.Process(target=h.hold_views, args=(shm_path, n, holding, done))  # type: ignore[attr-defined]
        p.start()
        try:
            assert holding.wait(60), "the consumer never took its views"
            assert q.qsize() == 0
            # Everything is consumed, yet no space is free: the views hold it.
            assert q.stats()["used_bytes"] == used
            assert q.available_write() == 1024 - used
            assert q.put(b"p" * 100, timeout=0.05) is False
            stats = q.stats()
            assert stats["view_stalls"] == 1, stats  # one view, however many wait slices
            assert stats["full_waits"] >= 1
        finally:
            done.set()
            p.join(60)
        assert p.exitcode == 0
        assert q.available_write() == 1024
        assert q.put(b"p" * 100, timeout=60) is True
        assert q.stats()["view_stalls"] == 1
