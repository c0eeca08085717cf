"""The run loops every system shares: producer, consumer, ping-pong, many-to-many.

Throughput (one producer, one consumer):

- the producer stamps a little-endian u64 sequence number into the first 8 bytes of every
  message (and the low byte of it into the last byte, for messages of 16 bytes and more) before
  handing the message to the system, then sends one ``STOP`` message;
- the consumer reads every message and checks both stamps, so the payload is written by one
  process and read by another, and a lost, reordered or torn message fails the run;
- a run ends after ``Params.warm + Params.count`` messages or ``Params.seconds``, whichever
  comes first; the consumer times from the end of the warm-up to ``STOP``.

Ping-pong echoes a stamped message between two processes and returns the client's round-trip
times. Many-to-many stamps (producer << 40 | seq) and checks each producer's order.

The per-message statements are written out in each loop, calling the end's own ``call`` with
its fixed arguments, so the only Python work per message is the stamp, the check and that call.
"""

from __future__ import annotations

from time import perf_counter, perf_counter_ns
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..common import STAMP, STOP, BenchError, Params, message_buffer

if TYPE_CHECKING:
    from .base import (BatchReceiver, BatchSender, End, IntoReceiver, NumberedReceiver,
                       NumberedSender, Receiver, Sender)

Sync = Callable[[], None]
Result = dict[str, Any]
Buf = Any  # bytes, bytearray, memoryview or ctypes array: whatever the system hands back


def clock_chunk(size: int) -> int:
    """How many messages to send between two looks at the clock (about every 1 MiB)."""
    return max(1, min(1024, (1 << 20) // size))


def bad(n: int, s: int) -> BenchError:
    return BenchError(f"expected message #{n}, received #{s}: lost, reordered or duplicated")


def torn(n: int) -> BenchError:
    return BenchError(f"message #{n}: the tail byte does not match the stamp (torn or truncated)")


def stop_message(size: int) -> bytearray:
    """The end-of-stream message: ``size`` bytes stamped ``STOP``."""
    buf = bytearray(size)
    STAMP.pack_into(buf, 0, STOP)
    return buf


class Clock:
    """A producer's bounds: messages 0 .. total-1 in chunks, until the count or the time is up.

    ``chunks`` meets the barrier, starts the end and the clock, then yields (first, end) of each
    chunk; the producer sends those messages and the clock is looked at between chunks.
    """

    def __init__(self, p: Params, sync: Sync, end: End, total: int) -> None:
        self.p, self.sync, self.end, self.total = p, sync, end, total
        self.t0 = 0.0
        self.sent = 0

    def chunks(self, chunk: int) -> Iterator[tuple[int, int]]:
        self.sync()
        self.end.start()
        self.t0 = perf_counter()
        deadline = self.t0 + self.p.seconds
        total = self.total
        n = 0
        while n < total:
            end = min(total, n + chunk)
            yield n, end
            n = self.sent = end
            if perf_counter() >= deadline:
                break

    def result(self) -> Result:
        return {"sent": self.sent, "t0": self.t0}


def _received(n: int, tw: float, **extra: Any) -> Result:
    return {"received": n, "t_warm": tw, "t_end": perf_counter(), **extra}


# ----------------------------------------------------------------------------------------------
# Throughput: one message per call


def stream_producer(tx: Sender, p: Params, sync: Sync) -> Result:
    buf = message_buffer(p.size) if tx.buf is None else tx.buf
    pack = STAMP.pack_into
    call, a, block = tx.call, tx.arg, tx.block
    last = p.size - 1
    tail = p.tail
    clock = Clock(p, sync, tx, p.warm + p.count)
    for n, end in clock.chunks(clock_chunk(p.size)):
        while n < end:
            pack(buf, 0, n)
            if tail:
                buf[last] = n & 0xFF
            if call(buf, a) is False:
                block(buf)
            n += 1
    tx.send(stop_message(p.size))
    return clock.result()


def stream_consumer(rx: Receiver, p: Params, sync: Sync) -> Result:
    call, a, block = rx.call, rx.arg, rx.block
    unpack = STAMP.unpack_from
    last = p.size - 1
    tail = p.tail
    warm = p.warm
    sync()
    rx.start()
    n = 0
    tw = 0.0
    while True:
        m = call(a)
        if m is None:
            m = block()
        s = unpack(m)[0]
        if s != n:
            if s == STOP:
                break
            raise bad(n, s)
        if tail and m[last] != n & 0xFF:
            raise torn(n)
        n += 1
        if n == warm:
            tw = perf_counter()
    return _received(n, tw)


def first_view_consumer(rx: Receiver, p: Params, sync: Sync) -> Result:
    """``stream_consumer`` for a call that returns a list of one view (the queue's
    ``get_view()``): the message is its first item, checked in place; the list and the view are
    let go right after the check, before the next call (which releases the view's slot), as
    the iceoryx2 consumer lets go of its sample before the next ``receive``: a producer waiting
    for that slot need not wait for the next message to arrive."""
    call, a, block = rx.call, rx.arg, rx.block
    unpack = STAMP.unpack_from
    last = p.size - 1
    tail = p.tail
    warm = p.warm
    sync()
    rx.start()
    n = 0
    tw = 0.0
    while True:
        vs = call(a)
        if vs is None:
            vs = block()
        m = vs[0]
        s = unpack(m)[0]
        if s != n:
            if s == STOP:
                break
            raise bad(n, s)
        if tail and m[last] != n & 0xFF:
            raise torn(n)
        vs = m = None
        n += 1
        if n == warm:
            tw = perf_counter()
    return _received(n, tw)


def into_consumer(rx: IntoReceiver, p: Params, sync: Sync) -> Result:
    """Every message copied into one reused buffer, stamp, length and tail byte checked there."""
    buf = message_buffer(p.size) if rx.buf is None else rx.buf
    call, a, block = rx.call, rx.arg, rx.block
    unpack = STAMP.unpack_from
    size = p.size
    last = size - 1
    tail = p.tail
    warm = p.warm
    sync()
    rx.start()
    n = 0
    tw = 0.0
    while True:
        k = call(buf, a)
        if k is None:
            k = block(buf)
        s = unpack(buf)[0]
        if s != n:
            if s == STOP:
                break
            raise bad(n, s)
        if k != size or (tail and buf[last] != n & 0xFF):
            raise torn(n)
        n += 1
        if n == warm:
            tw = perf_counter()
    return _received(n, tw)


def numbered_producer(tx: NumberedSender, p: Params, sync: Sync) -> Result:
    send = tx.send
    clock = Clock(p, sync, tx, p.warm + p.count)
    for n, end in clock.chunks(clock_chunk(p.size)):
        while n < end:
            send(n)
            n += 1
    send(STOP)
    return clock.result()


def numbered_consumer(rx: NumberedReceiver, p: Params, sync: Sync) -> Result:
    recv = rx.recv
    warm = p.warm
    sync()
    rx.start()
    n = 0
    tw = 0.0
    while True:
        s = recv()
        if s != n:
            if s == STOP:
                break
            raise bad(n, s)
        n += 1
        if n == warm:
            tw = perf_counter()
    return _received(n, tw)


# ----------------------------------------------------------------------------------------------
# Throughput: batches (stamped and checked per batch; see batch.py)


def batch_producer(tx: BatchSender, p: Params, sync: Sync) -> Result:
    stamp, send = tx.stamper.stamp, tx.send
    clock = Clock(p, sync, tx, p.warm + p.count)
    for n, end in clock.chunks(p.batch):
        send(stamp(n, end - n))
    send([tx.stamper.stop()])
    return clock.result()


def batch_consumer(rx: BatchReceiver, p: Params, sync: Sync) -> Result:
    take = rx.take
    warm = p.warm
    sync()
    rx.start()
    n = 0
    tw = 0.0
    n_warm = 0
    stop = False
    while not stop:
        k, stop = take(n)
        n += k
        if not n_warm and n >= warm:
            tw, n_warm = perf_counter(), n
    return _received(n, tw, n_warm=n_warm)


# ----------------------------------------------------------------------------------------------
# Ping-pong


def pingpong_client(tx: Sender, rx: Receiver, p: Params, sync: Sync) -> Result:
    buf = bytearray(p.size) if tx.buf is None else tx.buf
    send, sa, sblock = tx.call, tx.arg, tx.block
    recv, ra, rblock = rx.call, rx.arg, rx.block
    pack = STAMP.pack_into
    unpack = STAMP.unpack_from
    rtts: list[int] = []
    append = rtts.append
    sync()
    tx.start()
    rx.start()
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
        if send(buf, sa) is False:
            sblock(buf)
        m = recv(ra)
        if m is None:
            m = rblock()
        dt = perf_counter_ns() - t
        if unpack(m)[0] != i:
            raise bad(i, unpack(m)[0])
        if i >= warm:
            append(dt)
        elif i & 15 == 0 and perf_counter() >= warm_until:
            warm = i + 1
            total = warm + p.count
        i += 1
        if i & 63 == 0 and perf_counter() >= deadline:
            break
    pack(buf, 0, STOP)
    tx.send(buf)
    return {"rtt_ns": rtts}


def pingpong_server(tx: Sender, rx: Receiver, p: Params, sync: Sync) -> Result:
    send, sa, sblock = tx.call, tx.arg, tx.block
    recv, ra, rblock = rx.call, rx.arg, rx.block
    unpack = STAMP.unpack_from
    sync()
    tx.start()
    rx.start()
    n = 0
    while True:
        m = recv(ra)
        if m is None:
            m = rblock()
        if unpack(m)[0] == STOP:
            break
        if send(m, sa) is False:
            sblock(m)
        n += 1
    return {"echoed": n}


# ----------------------------------------------------------------------------------------------
# Many producers, many consumers: each producer stamps (producer << 40 | seq) and sends one STOP
# at its end; each consumer stops at the first STOP it takes (as many STOPs as consumers), and
# checks that every producer's messages reach it in that producer's order.

PRODUCER_SHIFT = 40
SEQ_MASK = (1 << PRODUCER_SHIFT) - 1


def mpmc_producer(tx: Sender, p: Params, sync: Sync, producer: int) -> Result:
    buf = bytearray(p.size)
    pack = STAMP.pack_into
    call, a, block = tx.call, tx.arg, tx.block
    tag = producer << PRODUCER_SHIFT
    clock = Clock(p, sync, tx, p.count)
    for n, end in clock.chunks(clock_chunk(p.size)):
        while n < end:
            pack(buf, 0, tag | n)
            if call(buf, a) is False:
                block(buf)
            n += 1
    tx.send(stop_message(p.size))
    return clock.result()


def mpmc_consumer(rx: Receiver, p: Params, sync: Sync) -> Result:
    call, a, block = rx.call, rx.arg, rx.block
    unpack = STAMP.unpack_from
    last: dict[int, int] = {}
    sync()
    rx.start()
    n = 0
    while True:
        m = call(a)
        if m is None:
            m = block()
        s = unpack(m)[0]
        if s == STOP:
            break
        producer, seq = s >> PRODUCER_SHIFT, s & SEQ_MASK
        if seq <= last.get(producer, -1):
            raise BenchError(f"producer {producer}: message #{seq} after #{last[producer]}")
        last[producer] = seq
        n += 1
    return {"received": n, "t_end": perf_counter()}
