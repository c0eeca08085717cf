"""Parameters, message stamping and small utilities shared by every benchmark."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import signal
import struct
import uuid
from dataclasses import asdict, dataclass
from typing import Any

KiB = 1024
MiB = 1024 * 1024

#: Every message starts with a little-endian u64 sequence number written by the producer.
STAMP = struct.Struct("<Q")
#: The sequence number of the end-of-stream message (sent once, after the timed messages).
STOP = 0xFFFF_FFFF_FFFF_FFFF


class BenchError(RuntimeError):
    """A system misbehaved during a run (stalled, lost, reordered or corrupted a message)."""


class Stalled(BenchError):
    """A blocking call did not complete within the stall timeout."""


@dataclass(frozen=True)
class Params:
    """What one throughput or ping-pong run may do."""

    size: int  # message size in bytes (>= 8: the stamp)
    count: int  # at most this many timed messages (or round trips)
    seconds: float  # ... and at most this long: whichever bound comes first
    capacity: int  # bytes of buffer for systems that take a byte capacity
    depth: int  # messages of buffer for systems that take a message count
    batch: int  # batch size for batched systems
    warm: int  # messages (round trips) excluded from the measurement at the start
    stall: float  # a blocking call that waits this long means the peer stalled

    @property
    def tail(self) -> bool:
        """Whether the last byte carries a check byte (messages of 16 bytes and more)."""
        return self.size >= 16

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: From this size on, a producer's message buffer is a NumPy array (a frame or a tensor).
FRAME_FROM = MiB


def message_buffer(size: int) -> Any:
    """The writable buffer every producer fills and sends, the same for every system.

    A ``bytearray`` for small messages. From ``FRAME_FROM`` on, a NumPy ``uint8`` array when
    NumPy is installed: what a video or ML producer holds, and the same kind of memory as the
    memcpy reference's source (NumPy asks for transparent huge pages for large arrays, which
    makes reading the source faster than reading a ``bytearray``'s 4 KiB pages).
    """
    if size >= FRAME_FROM:
        try:
            import numpy as np
        except ImportError:
            return bytearray(size)
        return np.zeros(size, dtype=np.uint8)
    return bytearray(size)


def next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def make_params(
    size: int,
    *,
    seconds: float,
    max_count: int,
    max_bytes: int,
    stall: float,
    batch: int = 64,
) -> Params:
    """Parameters for one size: bounded by count, by bytes moved and by time."""
    if size < 8:
        raise ValueError(f"message size {size} B is smaller than the 8-byte stamp")
    if size >= MiB:
        # Large messages (frames, tensors): room for two plus framing, double buffering, the
        # usual setting for frames (the producer fills one while the consumer reads the other).
        capacity = -(-2 * (size + 4096) // 4096) * 4096
    else:
        capacity = max(MiB, next_pow2(4 * size))
    count = max(16, min(max_count, max_bytes // size))
    depth = max(2, min(1024, capacity // size))
    b = max(1, min(batch, capacity // (4 * size)))
    warm = max(1, min(count // 20, 2000))
    return Params(size, count, seconds, capacity, depth, b, warm, stall)


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)(i?[bB])?\s*$")


def parse_size(text: str) -> int:
    """``64`` -> 64, ``1K``/``1KiB`` -> 1024, ``8M``/``8MiB`` -> 8 MiB."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (try 64, 1K, 64KiB, 8M)")
    mult = {"": 1, "k": KiB, "m": MiB, "g": 1024 * MiB}[m.group(2).lower()]
    return int(m.group(1)) * mult


def fmt_size(n: int) -> str:
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    return f"{n} B"


def fmt_rate(x: float) -> str:
    """msg/s with a unit prefix: 1.23 M, 45.6 k."""
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def unique_name(tag: str) -> str:
    return f"mmapipc-bench-{os.getpid()}-{tag}-{uuid.uuid4().hex[:8]}"


def shm_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"


def die_with_parent() -> None:
    """In a child: get SIGKILLed when the parent dies (Linux), so no benchmark child is orphaned."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's cleanup still kills us
        pass
