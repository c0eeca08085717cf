"""Shared fixtures: unique paths for shared-memory files, and child-process helpers."""

from __future__ import annotations

import multiprocessing as mp
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

START_METHODS = ["fork", "spawn"]


@pytest.fixture
def shm_path(tmp_path: Path) -> Iterator[str]:
    """A fresh path for one shared-memory file, removed afterwards if still there."""
    path = str(tmp_path / f"mmapipc-{uuid.uuid4().hex[:12]}")
    yield path
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@pytest.fixture
def devshm_name() -> Iterator[str]:
    """A bare name (lives in /dev/shm), removed afterwards."""
    name = f"mmapipc-test-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        os.unlink(f"/dev/shm/{name}")
    except FileNotFoundError:
        pass


@pytest.fixture(params=START_METHODS)
def ctx(request: pytest.FixtureRequest) -> mp.context.BaseContext:
    """A multiprocessing context for each start method."""
    return mp.get_context(request.param)


def run_child(ctx: mp.context.BaseContext, target: object, *args: object, timeout: float = 60.0) -> int:
    """Runs `target(*args)` in a child process and returns its exit code.

    A negative exit code means the child died from a signal (e.g. SIGSEGV or SIGBUS).
    """
    p = ctx.Process(target=target, args=args)  # type: ignore[attr-defined]
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError(f"child {target} did not finish within {timeout}s")
    assert p.exitcode is not None
    return p.exitcode
