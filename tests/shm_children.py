"""Child-process bodies for test_shared_memory.py (importable under spawn)."""

from __future__ import annotations

import sys

from mmapipc import SharedMemory


def write_values(path: str) -> None:
    with SharedMemory.open(path) as shm:
        shm.write(0, b"from child")
        shm.write_int(16, -123456789)
        shm.write_uint(24, 2**64 - 1)


def check_values(path: str) -> None:
    with SharedMemory.open(path) as shm:
        ok = (
            shm.read(0, 11) == b"from parent"
            and shm.read_int(16) == -42
            and shm.read_uint(24) == 7
        )
    sys.exit(0 if ok else 3)


def write_through_view(path: str) -> None:
    with SharedMemory.open(path) as shm:
        view = shm.get_view(100, 8)
        view[:] = b"VIEWVIEW"
        view.release()


def check_handle(shm: SharedMemory) -> None:
    """Receives a pickled handle (spawn) or an inherited one (fork)."""
    ok = shm.read(0, 6) == b"pickle"
    shm.write(8, b"back")
    shm.close()
    sys.exit(0 if ok else 3)


def open_expecting(path: str, exc_name: str) -> None:
    """Opens a bad file; exits 0 only if the expected exception type was raised."""
    import builtins

    import mmapipc

    expected = getattr(mmapipc, exc_name, None) or getattr(builtins, exc_name)
    try:
        SharedMemory.open(path)
    except expected:
        sys.exit(0)
    except BaseException as e:  # noqa: BLE001 - report what happened instead
        print(f"unexpected {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(4)
    sys.exit(5)


def create_under_file_size_limit(path: str) -> None:
    """With RLIMIT_FSIZE below the requested size, create must fail cleanly (no file left)."""
    import errno
    import os
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
    try:
        SharedMemory.create(path, size=1 << 20)
    except OSError as e:
        ok = e.errno in (errno.ENOSPC, errno.EFBIG) and not os.path.exists(path)
        if not ok:
            print(f"wrong error {e!r} or file left behind", file=sys.stderr)
        sys.exit(0 if ok else 3)
    sys.exit(4)
