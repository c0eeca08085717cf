"""Batched loops: stamping and checking a whole batch at once.

Batched systems (ring, queue, faster-fifo, typed) stamp and check a whole batch with NumPy, as a
user moving batches from Python would: per message the Python-level work is then a few tens of
ns instead of a few hundred, so the numbers show the transport, not the harness. Every message
is still written (its stamp and tail byte) and every byte of every message is read (the join).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ..common import STAMP, STOP, BenchError, Params
from .base import Stamper
from .loops import bad, stop_message, torn


def check_each(msgs: Any, n: int, size: int, tail: bool) -> tuple[int, bool]:
    """Messages n, n+1, ... checked one by one in place: (how many data messages, STOP seen)."""
    unpack = STAMP.unpack_from
    last = size - 1
    k = 0
    for m in msgs:
        s = unpack(m)[0]
        if s != n + k:
            if s == STOP:
                return k, True
            raise bad(n + k, s)
        if len(m) != size or (tail and m[last] != (n + k) & 0xFF):
            raise torn(n + k)
        k += 1
    return k, False


class BatchStamper(Stamper):
    """Producer side: ``batch`` messages in one NumPy block, stamped with vector stores.

    A message's tail byte is ``(n + i) & 0xFF``: it depends only on ``n & 0xFF`` and the
    position ``i`` in the batch. Batches start at multiples of the batch size (all but the last
    are full), so a few blocks, one per value of ``n & 0xFF``, each with its tail bytes written
    once, leave one vector store (the stamps) per batch. A batch starting elsewhere (the last,
    partial one, or with more distinct starts than ``_MAX_BLOCKS``) writes its tails as well.
    """

    #: Blocks with pre-written tail bytes are kept while they total at most this many bytes.
    _CACHE_BYTES = 1 << 20
    _MAX_BLOCKS = 256

    def __init__(self, p: Params) -> None:
        np = importlib.import_module("numpy")
        self.np = np
        self.add = np.add
        self.size = p.size
        self.batch = p.batch
        self.tail = p.tail
        self.base = np.arange(p.batch, dtype=np.uint64)
        self.base8 = self.base.astype(np.uint8)  # wraps mod 256, like the tail byte
        self.cache_ok = p.batch * p.size * 4 <= self._CACHE_BYTES
        # n & 0xFF -> (block, its stamp column, its tail column, a memoryview per message)
        self.blocks: dict[int, tuple[Any, Any, Any, list[memoryview]]] = {}
        self.scratch = self._block()

    def _block(self) -> tuple[Any, Any, Any, list[memoryview]]:
        np = self.np
        block = np.zeros((self.batch, self.size), dtype=np.uint8)
        stamps = block[:, :8].view("<u8")[:, 0]
        tails = block[:, self.size - 1] if self.tail else None
        return block, stamps, tails, [memoryview(block[j]) for j in range(self.batch)]

    def stamp(self, n: int, k: int) -> list[memoryview]:
        """Stamp messages n .. n+k-1 and return their buffers (valid until the next call)."""
        key = n & 0xFF
        entry = self.blocks.get(key) if k == self.batch else None
        if entry is None:
            if k == self.batch and self.cache_ok and len(self.blocks) < self._MAX_BLOCKS:
                entry = self.blocks[key] = self._block()
            else:
                entry = self.scratch
            if entry[2] is not None:
                self.add(self.base8[:k], key, out=entry[2][:k], casting="unsafe")
        _, stamps, _, views = entry
        if k == self.batch:
            self.add(self.base, n, out=stamps, casting="unsafe")
            return views
        self.add(self.base[:k], n, out=stamps[:k], casting="unsafe")
        return views[:k]

    def stop(self) -> bytearray:
        return stop_message(self.size)


class BatchChecker:
    """Consumer side: reads every byte of a batch (one join) and checks every stamp at once."""

    _TAILS = bytes(range(256)) * 2
    #: From this size on, per-message Python work is small next to the message: check each
    #: message in place rather than pay for a join (a copy of the whole batch).
    JOIN_BELOW = 4096

    def __init__(self, p: Params) -> None:
        np = importlib.import_module("numpy")
        self.np = np
        self.size = p.size
        self.tail = p.tail
        self.base = np.arange(max(p.batch, 1) * 4, dtype=np.uint64)

    def _base(self, k: int) -> Any:
        if k > len(self.base):
            self.base = self.np.arange(k, dtype=self.np.uint64)
        return self.base[:k]

    def check(self, msgs: list[Any], n: int) -> tuple[int, bool]:
        """Messages n, n+1, ... in ``msgs``: return (how many data messages, STOP seen)."""
        np, size = self.np, self.size
        if size >= self.JOIN_BELOW:
            return check_each(msgs, n, size, self.tail)
        joined = b"".join(msgs)
        k = len(msgs)
        if len(joined) != k * size:
            raise BenchError(f"a batch of {k} messages holds {len(joined)} bytes, "
                             f"not {k} x {size}: truncated message")
        if self.tail:
            return self._check_tails(joined, k, n)
        if size % 8 == 0 and sys.byteorder == "little":
            # The stamps without NumPy (a few small-array calls cost more than the queue here):
            # every message's stamp as one strided view of the joined batch.
            stamps = memoryview(joined).cast("Q")[:: size // 8]
        else:
            stamps = np.frombuffer(joined, dtype=np.uint8).reshape(k, size)[:, :8].copy()
            stamps = stamps.view("<u8")[:, 0]
        stop = int(stamps[k - 1]) == STOP
        if stop:
            k -= 1
        # The first and the last stamp of the batch, with the count, show nothing lost or
        # duplicated between batches; the tail byte of every message (below: (n + i) & 0xFF at
        # position i) shows each message whole and in its place inside the batch.
        if k and (int(stamps[0]) != n or int(stamps[k - 1]) != n + k - 1):
            at = next(i for i in range(k) if int(stamps[i]) != n + i) if int(stamps[0]) == n else 0
            raise bad(n + at, int(stamps[at]))
        if k and not self.tail:
            # Without tail bytes to check, compare every stamp.
            if isinstance(stamps, memoryview):
                ok = stamps[:k].tolist() == list(range(n, n + k))
            else:
                ok = bool((stamps[:k] - np.uint64(n) == self._base(k)).all())
            if not ok:
                at = next(i for i in range(k) if int(stamps[i]) != n + i)
                raise bad(n + at, int(stamps[at]))
        return k, stop

    def _check_tails(self, joined: bytes, k: int, n: int) -> tuple[int, bool]:
        """``check`` for messages with a tail byte (>= 16 B), ``joined`` holding k whole ones.

        The first and the last stamp of the batch, with the count, show nothing lost or
        duplicated between batches; the tail byte of every message ((n + i) & 0xFF at position
        i) shows each message whole and in its place inside the batch.
        """
        size, unpack = self.size, STAMP.unpack_from
        last = unpack(joined, (k - 1) * size)[0]
        stop = last == STOP
        if stop:
            k -= 1
            if not k:
                return 0, True
            last = unpack(joined, (k - 1) * size)[0]
        if unpack(joined, 0)[0] != n or last != n + k - 1:
            at = next((i for i in range(k) if unpack(joined, i * size)[0] != n + i), k - 1)
            raise bad(n + at, unpack(joined, at * size)[0])
        lo = n & 0xFF
        want = self._TAILS[lo : lo + k] if k <= 256 else bytes((n + i) & 0xFF for i in range(k))
        got = joined[size - 1 : k * size : size]
        if got != want:
            raise torn(n + next(i for i in range(k) if got[i] != want[i]))
        return k, stop
