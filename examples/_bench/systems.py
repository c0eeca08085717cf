"""Every system under test: mmapipc's ring and queue, and the peers users compare them with.

Each system implements its own producer and consumer loop, written the way a careful user of
that API would write it, so no system pays for a generic per-message abstraction:

- the producer stamps a little-endian u64 sequence number into the first 8 bytes of every
  message (and the low byte of it into the last byte, for messages of 16 bytes and more) before
  handing the message to the system, then sends one ``STOP`` message;
- the consumer reads every message and checks both stamps, so the payload is written by one
  process and read by another, and a lost, reordered or torn message fails the run;
- a run ends after ``Params.count`` messages or ``Params.seconds``, whichever comes first.

Ping-pong (``pp_*``) echoes a stamped message back and forth between two processes and returns
the round-trip times the client measured.

A system whose library is missing reports why from ``unavailable()`` and the harness skips it.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import queue as queue_mod
import sys
from time import perf_counter, perf_counter_ns
from typing import Any, Callable, Optional

from .common import STAMP, STOP, BenchError, Params, Stalled, message_buffer, shm_dir, unique_name

Sync = Callable[[], None]
Result = dict[str, Any]
Buf = Any  # bytes, bytearray or memoryview: whatever the system hands back


def _optional(module: str) -> Any:
    """Import a module, or return None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _mmapipc_attr(name: str) -> Any:
    mod = _optional("mmapipc")
    return None if mod is None else getattr(mod, name, None)


def clock_chunk(size: int) -> int:
    """How many messages to send between two looks at the clock (about every 1 MiB)."""
    return max(1, min(1024, (1 << 20) // size))


def _bad(n: int, s: int) -> BenchError:
    return BenchError(f"expected message #{n}, received #{s}: lost, reordered or duplicated")


def _torn(n: int) -> BenchError:
    return BenchError(f"message #{n}: the tail byte does not match the stamp (torn or truncated)")


# ----------------------------------------------------------------------------------------------
# Batched systems (ring, queue, faster-fifo) stamp and check a whole batch with NumPy, as a user
# moving batches from Python would: per message the Python-level work is then a few tens of ns
# instead of a few hundred, so the numbers show the transport, not the harness. Every message is
# still written (its stamp and tail byte) and every byte of every message is read (the join).


class BatchStamper:
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


class BatchChecker:
    """Consumer side: reads every byte of a batch (one join) and checks every stamp at once."""

    _TAILS = bytes(range(256)) * 2
    #: From this size on, per-message Python work is small next to the message: check each
    #: message in place rather than pay for a join (a copy of the whole batch).
    JOIN_BELOW = 4096

    def _each(self, msgs: list[Any], n: int) -> tuple[int, bool]:
        unpack = STAMP.unpack_from
        last = self.size - 1
        k = 0
        for m in msgs:
            s = unpack(m)[0]
            if s != n + k:
                if s == STOP:
                    return k, True
                raise _bad(n + k, s)
            if len(m) != self.size or m[last] != (n + k) & 0xFF:
                raise _torn(n + k)
            k += 1
        return k, False

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
            return self._each(msgs, n)
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
            bad = next(i for i in range(k) if int(stamps[i]) != n + i) if int(stamps[0]) == n else 0
            raise _bad(n + bad, int(stamps[bad]))
        if k and not self.tail:
            # Without tail bytes to check, compare every stamp.
            if isinstance(stamps, memoryview):
                ok = stamps[:k].tolist() == list(range(n, n + k))
            else:
                ok = bool((stamps[:k] - np.uint64(n) == self._base(k)).all())
            if not ok:
                bad = next(i for i in range(k) if int(stamps[i]) != n + i)
                raise _bad(n + bad, int(stamps[bad]))
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
            bad = next((i for i in range(k) if unpack(joined, i * size)[0] != n + i), k - 1)
            raise _bad(n + bad, unpack(joined, bad * size)[0])
        lo = n & 0xFF
        want = self._TAILS[lo : lo + k] if k <= 256 else bytes((n + i) & 0xFF for i in range(k))
        got = joined[size - 1 : k * size : size]
        if got != want:
            raise _torn(n + next(i for i in range(k) if got[i] != want[i]))
        return k, stop


def _numpy_missing() -> Optional[str]:
    if _optional("numpy") is None:
        return "batched loops need NumPy (pip install numpy)"
    return None


class System:
    """One system under test. Subclasses override what they support."""

    key: str = ""
    label: str = ""
    family: str = "peer"  # "mmapipc" or "peer"
    method: str = ""  # one line: which calls the loops use
    throughput: bool = True
    pingpong: bool = False
    batched: bool = False
    typed: bool = False

    def unavailable(self) -> Optional[str]:
        """None when the system can run here, else why not."""
        return None

    # --- throughput: setup runs in the parent before the fork, produce/consume in two children.
    def setup(self, p: Params) -> Any:
        raise NotImplementedError

    def teardown(self, h: Any) -> None:
        pass

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        raise NotImplementedError

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        raise NotImplementedError

    # --- ping-pong latency: same shape.
    def pp_setup(self, p: Params) -> Any:
        raise NotImplementedError

    def pp_teardown(self, h: Any) -> None:
        self.teardown(h)

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        raise NotImplementedError

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        raise NotImplementedError

    # --- many producers / many consumers (queues only): messages stamped (producer << 40 | seq).
    mpmc: bool = False

    def mp_send(self, h: Any, p: Params) -> tuple[Callable[[Buf], Any], Callable[[], None]]:
        """In a producer: (send one message, close)."""
        raise NotImplementedError

    def mp_recv(self, h: Any, p: Params) -> tuple[Callable[[], Buf], Callable[[], None]]:
        """In a consumer: (receive one message, close)."""
        raise NotImplementedError

    def mp_produce(self, h: Any, p: Params, sync: Sync, producer: int) -> Result:
        send, close = self.mp_send(h, p)
        try:
            return mpmc_producer(send, p, sync, producer)
        finally:
            close()

    def mp_consume(self, h: Any, p: Params, sync: Sync) -> Result:
        recv, close = self.mp_recv(h, p)
        try:
            return mpmc_consumer(recv, p, sync)
        finally:
            close()


# ----------------------------------------------------------------------------------------------
# Many producers, many consumers: each producer stamps (producer << 40 | seq) and sends one STOP
# at its end; each consumer stops at the first STOP it takes (as many STOPs as consumers), and
# checks that every producer's messages reach it in that producer's order.

PRODUCER_SHIFT = 40
SEQ_MASK = (1 << PRODUCER_SHIFT) - 1


def mpmc_producer(send: Callable[[Buf], Any], p: Params, sync: Sync, producer: int) -> Result:
    buf = bytearray(p.size)
    pack = STAMP.pack_into
    tag = producer << PRODUCER_SHIFT
    chunk = clock_chunk(p.size)
    total = p.count
    sync()
    t0 = perf_counter()
    deadline = t0 + p.seconds
    n = 0
    while n < total:
        end = min(total, n + chunk)
        while n < end:
            pack(buf, 0, tag | n)
            send(buf)
            n += 1
        if perf_counter() >= deadline:
            break
    pack(buf, 0, STOP)
    send(buf)
    return {"sent": n, "t0": t0}


def mpmc_consumer(recv: Callable[[], Buf], p: Params, sync: Sync) -> Result:
    unpack = STAMP.unpack_from
    last: dict[int, int] = {}
    sync()
    n = 0
    while True:
        s = unpack(recv())[0]
        if s == STOP:
            break
        producer, seq = s >> PRODUCER_SHIFT, s & SEQ_MASK
        if seq <= last.get(producer, -1):
            raise BenchError(f"producer {producer}: message #{seq} after #{last[producer]}")
        last[producer] = seq
        n += 1
    return {"received": n, "t_end": perf_counter()}


# ----------------------------------------------------------------------------------------------
# Generic ping-pong loops (one closure call per operation; used by every system alike).


def pingpong_client(
    send: Callable[[Buf], None], recv: Callable[[], Buf], p: Params, sync: Sync
) -> Result:
    buf = bytearray(p.size)
    pack = STAMP.pack_into
    unpack = STAMP.unpack_from
    rtts: list[int] = []
    append = rtts.append
    sync()
    start = perf_counter()
    deadline = start + p.seconds
    # The warm-up ends after p.warm round trips or a tenth of the time, whichever comes first,
    # so a slow system still gets timed round trips.
    warm_until = start + p.seconds / 10
    warm = p.warm
    total = warm + p.count
    i = 0
    while i < total:
        pack(buf, 0, i)
        t = perf_counter_ns()
        send(buf)
        m = recv()
        dt = perf_counter_ns() - t
        if unpack(m)[0] != i:
            raise _bad(i, unpack(m)[0])
        if i >= warm:
            append(dt)
        elif i & 15 == 0 and perf_counter() >= warm_until:
            warm = i + 1
            total = warm + p.count
        i += 1
        if i & 63 == 0 and perf_counter() >= deadline:
            break
    pack(buf, 0, STOP)
    send(buf)
    return {"rtt_ns": rtts}


def pingpong_server(
    send: Callable[[Buf], None], recv: Callable[[], Buf], p: Params, sync: Sync
) -> Result:
    unpack = STAMP.unpack_from
    sync()
    n = 0
    while True:
        m = recv()
        if unpack(m)[0] == STOP:
            break
        send(m)
        n += 1
    return {"echoed": n}


# ----------------------------------------------------------------------------------------------
# mmapipc SharedMemoryRing (SPSC)


class _MmapBase(System):
    family = "mmapipc"
    cls_name = ""
    needs: tuple[str, ...] = ()

    def cls(self) -> Any:
        return _mmapipc_attr(self.cls_name)

    def unavailable(self) -> Optional[str]:
        if _optional("mmapipc") is None:
            return "mmapipc is not installed (pip install -e .)"
        c = self.cls()
        if c is None:
            return f"mmapipc.{self.cls_name} is not available in this build"
        missing = [m for m in self.needs if not hasattr(c, m)]
        if missing:
            return f"mmapipc.{self.cls_name} has no {', '.join(missing)} in this build"
        return None

    def _create(self, p: Params, tag: str) -> str:
        path = os.path.join(shm_dir(), unique_name(tag))
        obj = self.cls().create(path, p.capacity)
        try:
            mms = getattr(obj, "max_message_size", None)
            if isinstance(mms, int) and p.size > mms:
                raise BenchError(
                    f"{p.size} B messages exceed max_message_size {mms} of a {p.capacity} B {tag}"
                )
        finally:
            obj.close()
        return path

    def setup(self, p: Params) -> Any:
        return self._create(p, self.cls_name.lower())

    def teardown(self, h: Any) -> None:
        for path in h if isinstance(h, tuple) else (h,):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def pp_setup(self, p: Params) -> Any:
        a = self._create(p, "pp-a")
        try:
            return (a, self._create(p, "pp-b"))
        except BaseException:
            self.teardown(a)
            raise


class RingSingle(_MmapBase):
    key = "ring"
    label = "mmapipc ring"
    cls_name = "SharedMemoryRing"
    method = "write(buf) / read(); on full/empty write(buf, True, t) / read(True, t)"
    pingpong = True

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        r = self.cls().open(h)
        try:
            buf = message_buffer(p.size)
            pack = STAMP.pack_into
            write = r.write
            tmo = p.stall
            last = p.size - 1
            tail = p.tail
            chunk = clock_chunk(p.size)
            total = p.warm + p.count
            sync()
            t0 = perf_counter()
            deadline = t0 + p.seconds
            n = 0
            while n < total:
                end = min(total, n + chunk)
                while n < end:
                    pack(buf, 0, n)
                    if tail:
                        buf[last] = n & 0xFF
                    if not write(buf) and not write(buf, True, tmo):
                        raise Stalled("ring.write(block=True) timed out: consumer stalled")
                    n += 1
                if perf_counter() >= deadline:
                    break
            pack(buf, 0, STOP)
            if not write(buf, True, tmo):
                raise Stalled("ring.write(STOP) timed out")
            return {"sent": n, "t0": t0}
        finally:
            r.close()

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        r = self.cls().open(h)
        try:
            read = r.read
            unpack = STAMP.unpack_from
            tmo = p.stall
            last = p.size - 1
            tail = p.tail
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            while True:
                m = read()
                if m is None:
                    m = read(True, tmo)
                    if m is None:
                        raise Stalled("ring.read(block=True) timed out: producer stalled")
                s = unpack(m)[0]
                if s != n:
                    if s == STOP:
                        break
                    raise _bad(n, s)
                if tail and m[last] != n & 0xFF:
                    raise _torn(n)
                n += 1
                if n == warm:
                    tw = perf_counter()
            return {"received": n, "t_warm": tw, "t_end": perf_counter()}
        finally:
            r.close()

    def _pp(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        cls = self.cls()
        a, b = cls.open(h[0]), cls.open(h[1])
        tx, rx = (b, a) if server else (a, b)
        write, read, tmo = tx.write, rx.read, p.stall

        def send(m: Buf) -> None:
            if not write(m) and not write(m, True, tmo):
                raise Stalled("ring.write timed out")

        def recv() -> Buf:
            m = read()
            if m is None:
                m = read(True, tmo)
                if m is None:
                    raise Stalled("ring.read timed out")
            return m

        try:
            if server:
                return pingpong_server(send, recv, p, sync)
            return pingpong_client(send, recv, p, sync)
        finally:
            a.close()
            b.close()

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, False)


class RingBatch(RingSingle):
    key = "ring-batch"
    label = "mmapipc ring batch"
    method = ("write_batch(list_of_64, True, t) / read_batch(64, True, t), stamped and checked "
              "per batch")
    pingpong = False
    batched = True
    needs = ("write_batch", "read_batch")

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or _numpy_missing()

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        r = self.cls().open(h)
        try:
            bsz = p.batch
            stamper = BatchStamper(p)
            write, write_batch = r.write, r.write_batch
            tmo = p.stall
            total = p.warm + p.count
            sync()
            t0 = perf_counter()
            deadline = t0 + p.seconds
            n = 0
            while n < total:
                k = min(bsz, total - n)
                batch = stamper.stamp(n, k)
                # Blocking: writes what fits, waits for room, goes on (one call per batch).
                if write_batch(batch, True, tmo) != k:
                    raise Stalled("ring.write_batch(block=True) timed out: consumer stalled")
                n += k
                if perf_counter() >= deadline:
                    break
            stop = bytearray(p.size)
            STAMP.pack_into(stop, 0, STOP)
            if not write(stop, True, tmo):
                raise Stalled("ring.write(STOP) timed out")
            return {"sent": n, "t0": t0}
        finally:
            r.close()

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        r = self.cls().open(h)
        try:
            read_batch = r.read_batch
            bsz = p.batch
            check = BatchChecker(p).check
            tmo = p.stall
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            n_warm = 0
            stop = False
            while not stop:
                # Blocking: everything ready (up to bsz), waiting only while there is nothing.
                msgs = read_batch(bsz, True, tmo)
                if not msgs:
                    raise Stalled("ring.read_batch(block=True) timed out: producer stalled")
                k, stop = check(msgs, n)
                n += k
                if not n_warm and n >= warm:
                    tw, n_warm = perf_counter(), n
            return {"received": n, "t_warm": tw, "n_warm": n_warm, "t_end": perf_counter()}
        finally:
            r.close()


class RingView(RingSingle):
    key = "ring-view"
    label = "mmapipc ring view"
    method = "write(buf) / read_view() (zero-copy; checks stamp and tail in place)"
    pingpong = False
    needs = ("read_view",)

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        r = self.cls().open(h)
        try:
            read_view = r.read_view
            unpack = STAMP.unpack_from
            tmo = p.stall
            last = p.size - 1
            tail = p.tail
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            while True:
                v = read_view()
                if v is None:
                    v = read_view(True, tmo)
                    if v is None:
                        raise Stalled("ring.read_view(block=True) timed out: producer stalled")
                s = unpack(v)[0]
                if s != n:
                    if s == STOP:
                        break
                    raise _bad(n, s)
                if tail and v[last] != n & 0xFF:
                    raise _torn(n)
                n += 1
                if n == warm:
                    tw = perf_counter()
            return {"received": n, "t_warm": tw, "t_end": perf_counter()}
        finally:
            del read_view
            r.close()


# ----------------------------------------------------------------------------------------------
# mmapipc SharedMemoryQueue (MPMC), measured here with one producer and one consumer


class QueueSingle(_MmapBase):
    key = "queue"
    label = "mmapipc queue"
    cls_name = "SharedMemoryQueue"
    method = "put(buf, False) / get(False); on full/empty put(buf, True, t) / get(True, t)"
    pingpong = True

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        q = self.cls().open(h)
        try:
            buf = message_buffer(p.size)
            pack = STAMP.pack_into
            put = q.put
            tmo = p.stall
            last = p.size - 1
            tail = p.tail
            chunk = clock_chunk(p.size)
            total = p.warm + p.count
            sync()
            t0 = perf_counter()
            deadline = t0 + p.seconds
            n = 0
            while n < total:
                end = min(total, n + chunk)
                while n < end:
                    pack(buf, 0, n)
                    if tail:
                        buf[last] = n & 0xFF
                    if not put(buf, False) and not put(buf, True, tmo):
                        raise Stalled("queue.put(block=True) timed out: consumer stalled")
                    n += 1
                if perf_counter() >= deadline:
                    break
            pack(buf, 0, STOP)
            if not put(buf, True, tmo):
                raise Stalled("queue.put(STOP) timed out")
            return {"sent": n, "t0": t0}
        finally:
            q.close()

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        q = self.cls().open(h)
        try:
            get = q.get
            unpack = STAMP.unpack_from
            tmo = p.stall
            last = p.size - 1
            tail = p.tail
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            while True:
                m = get(False)
                if m is None:
                    m = get(True, tmo)
                    if m is None:
                        raise Stalled("queue.get(block=True) timed out: producer stalled")
                s = unpack(m)[0]
                if s != n:
                    if s == STOP:
                        break
                    raise _bad(n, s)
                if tail and m[last] != n & 0xFF:
                    raise _torn(n)
                n += 1
                if n == warm:
                    tw = perf_counter()
            return {"received": n, "t_warm": tw, "t_end": perf_counter()}
        finally:
            q.close()

    def _pp(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        cls = self.cls()
        a, b = cls.open(h[0]), cls.open(h[1])
        tx, rx = (b, a) if server else (a, b)
        put, get, tmo = tx.put, rx.get, p.stall

        def send(m: Buf) -> None:
            if not put(m, False) and not put(m, True, tmo):
                raise Stalled("queue.put timed out")

        def recv() -> Buf:
            m = get(False)
            if m is None:
                m = get(True, tmo)
                if m is None:
                    raise Stalled("queue.get timed out")
            return m

        try:
            if server:
                return pingpong_server(send, recv, p, sync)
            return pingpong_client(send, recv, p, sync)
        finally:
            a.close()
            b.close()

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, False)

    mpmc = True

    def mp_send(self, h: Any, p: Params) -> tuple[Callable[[Buf], Any], Callable[[], None]]:
        q = self.cls().open(h)
        put, tmo = q.put, p.stall

        def send(m: Buf) -> None:
            if not put(m, False) and not put(m, True, tmo):
                raise Stalled("queue.put timed out: consumers stalled")

        return send, q.close

    def mp_recv(self, h: Any, p: Params) -> tuple[Callable[[], Buf], Callable[[], None]]:
        q = self.cls().open(h)
        get, tmo = q.get, p.stall

        def recv() -> Buf:
            m = get(False)
            if m is None:
                m = get(True, tmo)
                if m is None:
                    raise Stalled("queue.get timed out: producers stalled")
            return m

        return recv, q.close


class QueueBatch(QueueSingle):
    key = "queue-batch"
    label = "mmapipc queue batch"
    mpmc = False
    method = ("put_batch(list_of_64, True, t) / get_batch(64, True, t), stamped and checked "
              "per batch with NumPy")
    pingpong = False
    batched = True
    needs = ("put_batch", "get_batch")

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or _numpy_missing()

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        q = self.cls().open(h)
        try:
            bsz = p.batch
            stamper = BatchStamper(p)
            put, put_batch = q.put, q.put_batch
            tmo = p.stall
            total = p.warm + p.count
            sync()
            t0 = perf_counter()
            deadline = t0 + p.seconds
            n = 0
            while n < total:
                k = min(bsz, total - n)
                batch = stamper.stamp(n, k)
                done = put_batch(batch, True, tmo)
                while done < k:
                    more = put_batch(batch[done:], True, tmo)
                    if not more:
                        raise Stalled("queue.put_batch(block=True) timed out: consumer stalled")
                    done += more
                n += k
                if perf_counter() >= deadline:
                    break
            stop = bytearray(p.size)
            STAMP.pack_into(stop, 0, STOP)
            if not put(stop, True, tmo):
                raise Stalled("queue.put(STOP) timed out")
            return {"sent": n, "t0": t0}
        finally:
            q.close()

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        q = self.cls().open(h)
        try:
            get_batch = q.get_batch
            bsz = p.batch
            check = BatchChecker(p).check
            tmo = p.stall
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            n_warm = 0
            stop = False
            while not stop:
                msgs = get_batch(bsz, True, tmo)
                if not msgs:
                    raise Stalled("queue.get_batch(block=True) timed out: producer stalled")
                k, stop = check(msgs, n)
                n += k
                if not n_warm and n >= warm:
                    tw, n_warm = perf_counter(), n
            return {"received": n, "t_warm": tw, "n_warm": n_warm, "t_end": perf_counter()}
        finally:
            q.close()


class QueueView(QueueSingle):
    key = "queue-view"
    label = "mmapipc queue view"
    mpmc = False
    method = "put(buf) / get_view(True, t) + release(views) (zero-copy, checked in place)"
    pingpong = False
    needs = ("get_view", "release")

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        q = self.cls().open(h)
        try:
            get_view, release = q.get_view, q.release
            unpack = STAMP.unpack_from
            tmo = p.stall
            last = p.size - 1
            tail = p.tail
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            stop = False
            while not stop:
                views = get_view(True, tmo)
                if not views:
                    raise Stalled("queue.get_view(block=True) timed out: producer stalled")
                try:
                    for v in views:
                        s = unpack(v)[0]
                        if s != n:
                            if s == STOP:
                                stop = True
                                break
                            raise _bad(n, s)
                        if tail and v[last] != n & 0xFF:
                            raise _torn(n)
                        n += 1
                        if n == warm:
                            tw = perf_counter()
                finally:
                    release(views)
                    del views
            return {"received": n, "t_warm": tw, "t_end": perf_counter()}
        finally:
            q.close()


def _consume_into(recv_into: Callable[..., Optional[int]], p: Params, sync: Sync, name: str) -> Result:
    """Consumer loop of the ``*-into`` systems: every message copied into one reused buffer
    (``recv_into(buf, block, timeout)``, the ring's ``read_into`` or the queue's ``get_into``),
    stamp and tail byte checked there."""
    buf = message_buffer(p.size)
    unpack = STAMP.unpack_from
    tmo = p.stall
    size = p.size
    last = size - 1
    tail = p.tail
    warm = p.warm
    sync()
    n = 0
    tw = 0.0
    while True:
        k = recv_into(buf, False, None)
        if k is None:
            k = recv_into(buf, True, tmo)
            if k is None:
                raise Stalled(f"{name}(block=True) timed out: producer stalled")
        s = unpack(buf)[0]
        if s != n:
            if s == STOP:
                break
            raise _bad(n, s)
        if k != size or (tail and buf[last] != n & 0xFF):
            raise _torn(n)
        n += 1
        if n == warm:
            tw = perf_counter()
    return {"received": n, "t_warm": tw, "t_end": perf_counter()}


class RingInto(RingSingle):
    key = "ring-into"
    label = "mmapipc ring read_into"
    method = "write(buf) / read_into(buffer): one reused buffer, no allocation per message"
    pingpong = False
    needs = ("read_into",)

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        r = self.cls().open(h)
        try:
            return _consume_into(r.read_into, p, sync, "ring.read_into")
        finally:
            r.close()


class QueueInto(QueueSingle):
    key = "queue-into"
    label = "mmapipc queue get_into"
    mpmc = False
    method = "put(buf) / get_into(buffer): one reused buffer, no allocation per message"
    pingpong = False
    needs = ("get_into",)

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        q = self.cls().open(h)
        try:
            return _consume_into(q.get_into, p, sync, "queue.get_into")
        finally:
            q.close()


# ----------------------------------------------------------------------------------------------
# Peers


class MpQueue(System):
    key = "mp-queue"
    label = "multiprocessing.Queue"
    method = "put(bytes(buf)) / get(True, t); maxsize bounds the buffer like the others"
    pingpong = True

    def setup(self, p: Params) -> Any:
        import multiprocessing as mp

        return mp.get_context("fork").Queue(maxsize=p.depth)

    def teardown(self, h: Any) -> None:
        for q in h if isinstance(h, tuple) else (h,):
            q.close()
            q.cancel_join_thread()

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        buf = message_buffer(p.size)
        pack = STAMP.pack_into
        put = h.put
        tmo = p.stall
        last = p.size - 1
        tail = p.tail
        chunk = clock_chunk(p.size)
        total = p.warm + p.count
        sync()
        t0 = perf_counter()
        deadline = t0 + p.seconds
        n = 0
        try:
            while n < total:
                end = min(total, n + chunk)
                while n < end:
                    pack(buf, 0, n)
                    if tail:
                        buf[last] = n & 0xFF
                    # The feeder thread pickles later: hand over an immutable copy.
                    put(bytes(buf), True, tmo)
                    n += 1
                if perf_counter() >= deadline:
                    break
            pack(buf, 0, STOP)
            put(bytes(buf), True, tmo)
        except queue_mod.Full:
            raise Stalled("multiprocessing.Queue.put timed out: consumer stalled") from None
        h.close()
        h.join_thread()
        return {"sent": n, "t0": t0}

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        get = h.get
        unpack = STAMP.unpack_from
        tmo = p.stall
        last = p.size - 1
        tail = p.tail
        warm = p.warm
        sync()
        n = 0
        tw = 0.0
        try:
            while True:
                m = get(True, tmo)
                s = unpack(m)[0]
                if s != n:
                    if s == STOP:
                        break
                    raise _bad(n, s)
                if tail and m[last] != n & 0xFF:
                    raise _torn(n)
                n += 1
                if n == warm:
                    tw = perf_counter()
        except queue_mod.Empty:
            raise Stalled("multiprocessing.Queue.get timed out: producer stalled") from None
        return {"received": n, "t_warm": tw, "t_end": perf_counter()}

    mpmc = True

    def mp_send(self, h: Any, p: Params) -> tuple[Callable[[Buf], Any], Callable[[], None]]:
        put, tmo = h.put, p.stall

        def send(m: Buf) -> None:
            try:
                put(bytes(m), True, tmo)
            except queue_mod.Full:
                raise Stalled("multiprocessing.Queue.put timed out") from None

        def close() -> None:
            h.close()
            h.join_thread()

        return send, close

    def mp_recv(self, h: Any, p: Params) -> tuple[Callable[[], Buf], Callable[[], None]]:
        get, tmo = h.get, p.stall

        def recv() -> Buf:
            try:
                return get(True, tmo)
            except queue_mod.Empty:
                raise Stalled("multiprocessing.Queue.get timed out") from None

        return recv, lambda: None

    def pp_setup(self, p: Params) -> Any:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        return (ctx.Queue(maxsize=p.depth), ctx.Queue(maxsize=p.depth))

    def _pp(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        tx, rx = (h[1], h[0]) if server else (h[0], h[1])
        put, get, tmo = tx.put, rx.get, p.stall

        def send(m: Buf) -> None:
            put(bytes(m), True, tmo)

        def recv() -> Buf:
            return get(True, tmo)

        try:
            if server:
                return pingpong_server(send, recv, p, sync)
            return pingpong_client(send, recv, p, sync)
        except (queue_mod.Empty, queue_mod.Full):
            raise Stalled("multiprocessing.Queue timed out") from None

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, False)


class MpPipe(System):
    key = "mp-pipe"
    label = "multiprocessing.Pipe"
    method = "send_bytes(buf) / recv_bytes_into(preallocated buffer)"
    pingpong = True

    def setup(self, p: Params) -> Any:
        import multiprocessing as mp

        return mp.get_context("fork").Pipe(duplex=False)  # (reader, writer)

    def teardown(self, h: Any) -> None:
        for c in h:
            c.close()

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        w = h[1]
        buf = message_buffer(p.size)
        pack = STAMP.pack_into
        send = w.send_bytes
        last = p.size - 1
        tail = p.tail
        chunk = clock_chunk(p.size)
        total = p.warm + p.count
        sync()
        t0 = perf_counter()
        deadline = t0 + p.seconds
        n = 0
        while n < total:
            end = min(total, n + chunk)
            while n < end:
                pack(buf, 0, n)
                if tail:
                    buf[last] = n & 0xFF
                send(buf)
                n += 1
            if perf_counter() >= deadline:
                break
        pack(buf, 0, STOP)
        send(buf)
        return {"sent": n, "t0": t0}

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        r = h[0]
        buf = bytearray(p.size)
        recv_into = r.recv_bytes_into
        unpack = STAMP.unpack_from
        last = p.size - 1
        tail = p.tail
        warm = p.warm
        size = p.size
        sync()
        n = 0
        tw = 0.0
        while True:
            if recv_into(buf) != size:
                raise BenchError("multiprocessing.Pipe delivered a message of the wrong size")
            s = unpack(buf)[0]
            if s != n:
                if s == STOP:
                    break
                raise _bad(n, s)
            if tail and buf[last] != n & 0xFF:
                raise _torn(n)
            n += 1
            if n == warm:
                tw = perf_counter()
        return {"received": n, "t_warm": tw, "t_end": perf_counter()}

    def pp_setup(self, p: Params) -> Any:
        import multiprocessing as mp

        return mp.get_context("fork").Pipe(duplex=True)

    def _pp(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        c = h[1] if server else h[0]
        send = c.send_bytes
        rbuf = bytearray(p.size)
        recv_into = c.recv_bytes_into

        def recv() -> Buf:
            recv_into(rbuf)
            return rbuf

        if server:
            return pingpong_server(send, recv, p, sync)
        return pingpong_client(send, recv, p, sync)

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, False)


class FasterFifo(System):
    key = "faster-fifo"
    label = "faster-fifo"
    method = "put(buf) / get(True, t), raw bytes (dumps=bytes, loads=bytes: no pickle)"
    pingpong = True

    def unavailable(self) -> Optional[str]:
        if _optional("faster_fifo") is None:
            return "faster-fifo is not installed (pip install faster-fifo)"
        return None

    def _make(self, p: Params) -> Any:
        ff = importlib.import_module("faster_fifo")
        # Room for the same number of messages as the other systems, plus framing.
        return ff.Queue(max_size_bytes=p.capacity + 64 * p.depth, loads=bytes, dumps=bytes)

    def setup(self, p: Params) -> Any:
        return self._make(p)

    def teardown(self, h: Any) -> None:
        for q in h if isinstance(h, tuple) else (h,):
            close = getattr(q, "close", None)
            if close is not None:
                close()

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        buf = message_buffer(p.size)
        pack = STAMP.pack_into
        put = h.put
        tmo = p.stall
        last = p.size - 1
        tail = p.tail
        chunk = clock_chunk(p.size)
        total = p.warm + p.count
        sync()
        t0 = perf_counter()
        deadline = t0 + p.seconds
        n = 0
        try:
            while n < total:
                end = min(total, n + chunk)
                while n < end:
                    pack(buf, 0, n)
                    if tail:
                        buf[last] = n & 0xFF
                    put(buf, True, tmo)
                    n += 1
                if perf_counter() >= deadline:
                    break
            pack(buf, 0, STOP)
            put(buf, True, tmo)
        except queue_mod.Full:
            raise Stalled("faster_fifo.Queue.put timed out: consumer stalled") from None
        return {"sent": n, "t0": t0}

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        get = h.get
        unpack = STAMP.unpack_from
        tmo = p.stall
        last = p.size - 1
        tail = p.tail
        warm = p.warm
        sync()
        n = 0
        tw = 0.0
        try:
            while True:
                m = get(True, tmo)
                s = unpack(m)[0]
                if s != n:
                    if s == STOP:
                        break
                    raise _bad(n, s)
                if tail and m[last] != n & 0xFF:
                    raise _torn(n)
                n += 1
                if n == warm:
                    tw = perf_counter()
        except queue_mod.Empty:
            raise Stalled("faster_fifo.Queue.get timed out: producer stalled") from None
        return {"received": n, "t_warm": tw, "t_end": perf_counter()}

    mpmc = True

    def mp_send(self, h: Any, p: Params) -> tuple[Callable[[Buf], Any], Callable[[], None]]:
        put, tmo = h.put, p.stall

        def send(m: Buf) -> None:
            try:
                put(m, True, tmo)
            except queue_mod.Full:
                raise Stalled("faster_fifo.Queue.put timed out") from None

        return send, lambda: None

    def mp_recv(self, h: Any, p: Params) -> tuple[Callable[[], Buf], Callable[[], None]]:
        get, tmo = h.get, p.stall

        def recv() -> Buf:
            try:
                return get(True, tmo)
            except queue_mod.Empty:
                raise Stalled("faster_fifo.Queue.get timed out") from None

        return recv, lambda: None

    def pp_setup(self, p: Params) -> Any:
        return (self._make(p), self._make(p))

    def _pp(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        tx, rx = (h[1], h[0]) if server else (h[0], h[1])
        put, get, tmo = tx.put, rx.get, p.stall

        def send(m: Buf) -> None:
            put(m, True, tmo)

        def recv() -> Buf:
            return get(True, tmo)

        try:
            if server:
                return pingpong_server(send, recv, p, sync)
            return pingpong_client(send, recv, p, sync)
        except (queue_mod.Empty, queue_mod.Full):
            raise Stalled("faster_fifo timed out") from None

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, False)


class FasterFifoBatch(FasterFifo):
    key = "faster-fifo-batch"
    label = "faster-fifo batch"
    mpmc = False
    method = ("put_many(list_of_64, True, t) / get_many(True, t, max_messages_to_get=64), "
              "stamped and checked per batch with NumPy")
    pingpong = False
    batched = True

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or _numpy_missing()

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        bsz = p.batch
        stamper = BatchStamper(p)
        put_many = h.put_many
        tmo = p.stall
        total = p.warm + p.count
        sync()
        t0 = perf_counter()
        deadline = t0 + p.seconds
        n = 0
        try:
            while n < total:
                k = min(bsz, total - n)
                put_many(stamper.stamp(n, k), True, tmo)
                n += k
                if perf_counter() >= deadline:
                    break
            stop = bytearray(p.size)
            STAMP.pack_into(stop, 0, STOP)
            put_many([stop], True, tmo)
        except queue_mod.Full:
            raise Stalled("faster_fifo.Queue.put_many timed out: consumer stalled") from None
        return {"sent": n, "t0": t0}

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        get_many = h.get_many
        bsz = p.batch
        check = BatchChecker(p).check
        tmo = p.stall
        warm = p.warm
        sync()
        n = 0
        tw = 0.0
        n_warm = 0
        stop = False
        try:
            while not stop:
                k, stop = check(get_many(True, tmo, bsz), n)
                n += k
                if not n_warm and n >= warm:
                    tw, n_warm = perf_counter(), n
        except queue_mod.Empty:
            raise Stalled("faster_fifo.Queue.get_many timed out: producer stalled") from None
        return {"received": n, "t_warm": tw, "n_warm": n_warm, "t_end": perf_counter()}


class Zmq(System):
    key = "zmq"
    label = "pyzmq ipc PUSH/PULL"
    method = "PUSH send(buf) / PULL recv(); recv(copy=False) from 64 KiB up; HWM = depth"
    pingpong = True

    def unavailable(self) -> Optional[str]:
        if _optional("zmq") is None:
            return "pyzmq is not installed (pip install pyzmq)"
        return None

    def setup(self, p: Params) -> Any:
        path = os.path.join("/tmp", unique_name("zmq") + ".sock")
        return f"ipc://{path}"

    def teardown(self, h: Any) -> None:
        try:
            os.unlink(h[len("ipc://") :])
        except FileNotFoundError:
            pass

    def _socket(self, kind: str, p: Params) -> tuple[Any, Any]:
        zmq = importlib.import_module("zmq")
        ctx = zmq.Context()
        s = ctx.socket(getattr(zmq, kind))
        s.setsockopt(zmq.SNDHWM, p.depth)
        s.setsockopt(zmq.RCVHWM, p.depth)
        s.setsockopt(zmq.SNDTIMEO, int(p.stall * 1000))
        s.setsockopt(zmq.RCVTIMEO, int(p.stall * 1000))
        s.setsockopt(zmq.LINGER, int(p.stall * 1000))
        return ctx, s

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        zmq = importlib.import_module("zmq")
        ctx, sock = self._socket("PUSH", p)
        try:
            sock.connect(h)
            buf = message_buffer(p.size)
            pack = STAMP.pack_into
            send = sock.send
            last = p.size - 1
            tail = p.tail
            chunk = clock_chunk(p.size)
            total = p.warm + p.count
            sync()
            t0 = perf_counter()
            deadline = t0 + p.seconds
            n = 0
            try:
                while n < total:
                    end = min(total, n + chunk)
                    while n < end:
                        pack(buf, 0, n)
                        if tail:
                            buf[last] = n & 0xFF
                        send(buf)  # copies now: buf is reused for the next message
                        n += 1
                    if perf_counter() >= deadline:
                        break
                pack(buf, 0, STOP)
                send(buf)
            except zmq.Again:
                raise Stalled("zmq send timed out: consumer stalled") from None
            return {"sent": n, "t0": t0}
        finally:
            sock.close()
            ctx.term()

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        zmq = importlib.import_module("zmq")
        ctx, sock = self._socket("PULL", p)
        try:
            sock.bind(h)
            recv = sock.recv
            copy = p.size < 65536
            unpack = STAMP.unpack_from
            last = p.size - 1
            tail = p.tail
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            try:
                while True:
                    m = recv(0, copy)
                    if not copy:
                        m = m.buffer
                    s = unpack(m)[0]
                    if s != n:
                        if s == STOP:
                            break
                        raise _bad(n, s)
                    if tail and m[last] != n & 0xFF:
                        raise _torn(n)
                    n += 1
                    if n == warm:
                        tw = perf_counter()
            except zmq.Again:
                raise Stalled("zmq recv timed out: producer stalled") from None
            return {"received": n, "t_warm": tw, "t_end": perf_counter()}
        finally:
            sock.close()
            ctx.term()

    def pp_setup(self, p: Params) -> Any:
        return self.setup(p)

    def _pp(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        zmq = importlib.import_module("zmq")
        ctx, sock = self._socket("PAIR", p)
        try:
            if server:
                sock.bind(h)
            else:
                sock.connect(h)
            send, recv = sock.send, sock.recv
            try:
                if server:
                    return pingpong_server(send, recv, p, sync)
                return pingpong_client(send, recv, p, sync)
            except zmq.Again:
                raise Stalled("zmq timed out") from None
        finally:
            sock.close()
            ctx.term()

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, False)


class Iceoryx2(System):
    key = "iceoryx2"
    label = "iceoryx2 pub/sub"
    method = (
        "loan_slice_uninit + memmove + send / receive + read in place (polling); "
        "resend when send() reached no subscriber (full buffer)"
    )

    def unavailable(self) -> Optional[str]:
        if _optional("iceoryx2") is None:
            return "iceoryx2 is not installed (pip install iceoryx2)"
        return None

    def setup(self, p: Params) -> Any:
        return "mmapipc-bench/" + unique_name("iox")

    pingpong = True

    def pp_setup(self, p: Params) -> Any:
        return (self.setup(p) + "-ping", self.setup(p) + "-pong")

    def _pp(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        iox, node, tx_svc = self._service(h[1] if server else h[0], p)
        _iox, _node, rx_svc = self._service(h[0] if server else h[1], p)
        pub = (
            tx_svc.publisher_builder()
            .initial_max_slice_len(p.size)
            .backpressure_strategy(iox.BackpressureStrategy.RetryUntilDelivered)
            .create()
        )
        sub = rx_svc.subscriber_builder().create()
        loan, receive, memmove = pub.loan_slice_uninit, sub.receive, ctypes.memmove
        size = p.size
        give_up = [0.0]

        def send(m: Buf) -> None:
            src = m if isinstance(m, bytes) else bytes(m)
            while True:
                smp = loan(size)
                memmove(smp.payload_ptr, src, size)
                if smp.assume_init().send():
                    return
                if perf_counter() > give_up[0]:
                    raise Stalled("iceoryx2 send reached no subscriber")

        def recv() -> Buf:
            while True:
                smp = receive()
                if smp is not None:
                    data = ctypes.string_at(smp.payload_ptr, size)
                    smp.delete()
                    return data
                if perf_counter() > give_up[0]:
                    raise Stalled("iceoryx2 receive: nothing arrived")

        def synced() -> None:
            sync()
            pub.update_connections()
            give_up[0] = perf_counter() + p.seconds + p.stall

        if server:
            return pingpong_server(send, recv, p, synced)
        return pingpong_client(send, recv, p, synced)

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pp(h, p, sync, False)

    def _service(self, h: Any, p: Params) -> tuple[Any, Any, Any]:
        iox = importlib.import_module("iceoryx2")
        iox.set_log_level(iox.LogLevel.Error)
        node = iox.NodeBuilder.new().create(iox.ServiceType.Ipc)
        depth = max(2, min(p.depth, 256))
        svc = (
            node.service_builder(iox.ServiceName.new(h))
            .publish_subscribe(iox.Slice[ctypes.c_uint8])
            .enable_safe_overflow(False)
            .subscriber_max_buffer_size(depth)
            .history_size(0)
            .subscriber_max_borrowed_samples(2)
            .open_or_create()
        )
        return iox, node, svc

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        iox, node, svc = self._service(h, p)
        pub = (
            svc.publisher_builder()
            .initial_max_slice_len(p.size)
            .backpressure_strategy(iox.BackpressureStrategy.RetryUntilDelivered)
            .create()
        )
        buf = message_buffer(p.size)
        src = (ctypes.c_char * p.size).from_buffer(buf)
        memmove = ctypes.memmove
        loan = pub.loan_slice_uninit
        pack = STAMP.pack_into
        size = p.size
        last = size - 1
        tail = p.tail
        chunk = clock_chunk(size)
        total = p.warm + p.count

        def send_one() -> None:
            tries = 0
            while True:
                smp = loan(size)
                memmove(smp.payload_ptr, src, size)
                # send() returns how many subscribers got it; 0 means the subscriber's buffer
                # was full and the sample was dropped, so send it again.
                if smp.assume_init().send():
                    return
                tries += 1
                if tries & 1023 == 0 and perf_counter() > give_up:
                    raise Stalled("iceoryx2 send reached no subscriber: consumer stalled")

        sync()
        pub.update_connections()
        t0 = perf_counter()
        deadline = t0 + p.seconds
        give_up = deadline + p.stall
        n = 0
        while n < total:
            end = min(total, n + chunk)
            while n < end:
                pack(buf, 0, n)
                if tail:
                    buf[last] = n & 0xFF
                send_one()
                n += 1
            if perf_counter() >= deadline:
                break
        pack(buf, 0, STOP)
        send_one()
        del src
        return {"sent": n, "t0": t0}

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        _iox, node, svc = self._service(h, p)
        sub = svc.subscriber_builder().create()
        receive = sub.receive
        u64 = ctypes.c_uint64.from_address
        u8 = ctypes.c_uint8.from_address
        last = p.size - 1
        tail = p.tail
        warm = p.warm
        sync()
        n = 0
        tw = 0.0
        idle = 0
        give_up = perf_counter() + p.seconds + p.stall
        while True:
            smp = receive()
            if smp is None:
                idle += 1
                if idle & 4095 == 0 and perf_counter() > give_up:
                    raise Stalled("iceoryx2 receive: nothing arrived: producer stalled")
                continue
            ptr = smp.payload_ptr
            s = u64(ptr).value
            if s != n:
                if s == STOP:
                    break
                raise _bad(n, s)
            if tail and u8(ptr + last).value != n & 0xFF:
                raise _torn(n)
            smp.delete()
            n += 1
            if n == warm:
                tw = perf_counter()
        return {"received": n, "t_warm": tw, "t_end": perf_counter()}


# ----------------------------------------------------------------------------------------------
# mmapipc typed rings (mmapipc.typed.TypedRing): records of a schema, here market.Tick v1 (32 B,
# ``timestamp_ns`` u64 at offset 0 carries the stamp). Measured at the record's size only.

TICK_SCHEMA = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "schemas", "market", "tick.v1.json",
)
TICK_SIZE = 32


class TypedRing(_MmapBase):
    key = "typed"
    label = "mmapipc typed ring"
    method = ("TypedRing.send(dict) (encode per record) / recv() (record in place, field read)")
    typed = True

    def unavailable(self) -> Optional[str]:
        if _optional("mmapipc") is None:
            return "mmapipc is not installed (pip install -e .)"
        if _optional("mmapipc.typed") is None or self._typed() is None:
            return "mmapipc.typed.TypedRing is not available in this build"
        if not os.path.exists(TICK_SCHEMA):
            return f"schema file {TICK_SCHEMA} not found"
        return _numpy_missing()

    def _typed(self) -> Any:
        mod = _optional("mmapipc.typed")
        return None if mod is None else getattr(mod, "TypedRing", None)

    def setup(self, p: Params) -> Any:
        if p.size != TICK_SIZE:
            raise BenchError(f"typed rings are measured with {TICK_SIZE}-byte market.Tick records")
        path = os.path.join(shm_dir(), unique_name("typed"))
        self._typed().create(path, p.capacity, TICK_SCHEMA).close()
        return path

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        tr = self._typed().open(h)
        try:
            send = tr.send
            tmo = p.stall
            rec: dict[str, Any] = {"timestamp_ns": 0, "symbol": list(b"MMAPIPC\0"), "price": 101.25,
                                   "size": 100, "side": 1}
            chunk = clock_chunk(p.size)
            total = p.warm + p.count
            sync()
            t0 = perf_counter()
            deadline = t0 + p.seconds
            n = 0
            while n < total:
                end = min(total, n + chunk)
                while n < end:
                    rec["timestamp_ns"] = n
                    if not send(rec, block=False) and not send(rec, block=True, timeout=tmo):
                        raise Stalled("TypedRing.send timed out: consumer stalled")
                    n += 1
                if perf_counter() >= deadline:
                    break
            rec["timestamp_ns"] = STOP
            if not send(rec, block=True, timeout=tmo):
                raise Stalled("TypedRing.send(STOP) timed out")
            return {"sent": n, "t0": t0}
        finally:
            tr.close()

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        tr = self._typed().open(h, TICK_SCHEMA)
        try:
            recv = tr.recv
            tmo = p.stall
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            while True:
                r = recv(False)
                if r is None:
                    r = recv(True, tmo)
                    if r is None:
                        raise Stalled("TypedRing.recv timed out: producer stalled")
                s = int(r.timestamp_ns)
                del r  # a view of the slot: the next receive reuses it
                if s != n:
                    if s == STOP:
                        break
                    raise _bad(n, s)
                n += 1
                if n == warm:
                    tw = perf_counter()
            return {"received": n, "t_warm": tw, "t_end": perf_counter()}
        finally:
            tr.close()


class TypedRingBatch(TypedRing):
    key = "typed-batch"
    label = "mmapipc typed ring batch"
    method = ("records filled in a NumPy structured array, ring.write_batch(rows) / "
              "recv_batch(64) -> structured array, fields checked vectorised")
    batched = True

    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        np = importlib.import_module("numpy")
        tr = self._typed().open(h)
        try:
            bsz = p.batch
            recs = np.zeros(bsz, dtype=tr.dtype)
            recs["symbol"] = np.frombuffer(b"MMAPIPC\0", dtype=np.uint8)
            recs["price"], recs["size"], recs["side"] = 101.25, 100, 1
            stamps = recs["timestamp_ns"]
            rows = recs.view(np.uint8).reshape(bsz, -1)
            views = [memoryview(rows[j]) for j in range(bsz)]
            base = np.arange(bsz, dtype=np.uint64)
            ring = tr.ring
            write, write_batch = ring.write, ring.write_batch
            tmo = p.stall
            total = p.warm + p.count
            sync()
            t0 = perf_counter()
            deadline = t0 + p.seconds
            n = 0
            while n < total:
                k = min(bsz, total - n)
                np.add(base[:k], n, out=stamps[:k], casting="unsafe")
                batch = views if k == bsz else views[:k]
                done = write_batch(batch)
                while done < k:
                    if not write(batch[done], True, tmo):
                        raise Stalled("ring.write(block=True) timed out: consumer stalled")
                    done += 1
                    if done < k:
                        done += write_batch(batch[done:])
                n += k
                if perf_counter() >= deadline:
                    break
            stamps[0] = STOP
            if not write(views[0], True, tmo):
                raise Stalled("ring.write(STOP) timed out")
            return {"sent": n, "t0": t0}
        finally:
            tr.close()

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        np = importlib.import_module("numpy")
        tr = self._typed().open(h, TICK_SCHEMA)
        try:
            recv, recv_batch = tr.recv, tr.recv_batch
            bsz = p.batch
            base = np.arange(bsz, dtype=np.uint64)
            stop_val = np.uint64(STOP)
            tmo = p.stall
            warm = p.warm
            sync()
            n = 0
            tw = 0.0
            n_warm = 0
            while True:
                arr = recv_batch(bsz, False)
                if len(arr) == 0:
                    r = recv(True, tmo)
                    if r is None:
                        raise Stalled("TypedRing.recv timed out: producer stalled")
                    s = int(r.timestamp_ns)
                    del r  # the record is a view of the slot: let the next receive reuse it
                    if s == STOP:
                        break
                    if s != n:
                        raise _bad(n, s)
                    n += 1
                    continue
                ts = arr["timestamp_ns"]
                k = len(ts)
                stop = bool(ts[k - 1] == stop_val)
                if stop:
                    k -= 1
                if k and not bool((ts[:k] - np.uint64(n) == base[:k]).all()):
                    bad = int(np.flatnonzero(ts[:k] != base[:k] + np.uint64(n))[0])
                    raise _bad(n + bad, int(ts[bad]))
                n += k
                # The array may be a view of the ring's slots: drop it before the next receive.
                del arr, ts
                if not n_warm and n >= warm:
                    tw, n_warm = perf_counter(), n
                if stop:
                    break
            return {"received": n, "t_warm": tw, "n_warm": n_warm, "t_end": perf_counter()}
        finally:
            tr.close()


TYPED_SYSTEMS: list[System] = [TypedRing(), TypedRingBatch()]


ALL_SYSTEMS: list[System] = [
    RingSingle(),
    RingBatch(),
    RingView(),
    RingInto(),
    QueueSingle(),
    QueueBatch(),
    QueueView(),
    QueueInto(),
    MpQueue(),
    MpPipe(),
    FasterFifo(),
    FasterFifoBatch(),
    Zmq(),
    Iceoryx2(),
]

BY_KEY: dict[str, System] = {s.key: s for s in ALL_SYSTEMS + TYPED_SYSTEMS}
