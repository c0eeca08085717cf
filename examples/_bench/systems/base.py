"""What every system under test is made of: a ``System`` and the ends its processes hold.

A system module supplies only what is specific to it:

- ``setup``/``teardown`` (in the parent, around each run): create and remove the channel;
- ``sender``/``receiver`` (in a child): open the channel and return an end that names the
  system's own calls, e.g. ``Sender("ring.write", ring.write, False, wait=(True, t))``;
- for other kinds of loop, ``producer``/``consumer`` returning a ``BatchSender``,
  ``BatchReceiver``, ``IntoReceiver``, ``NumberedSender`` or ``NumberedReceiver``;
- where its ping-pong channel is not two one-way channels, ``pp_setup`` and ``pp_ends``.

Everything else lives once, here and in ``loops``: the barrier, the warm-up, the timed run
bounded by count and time, the end-of-stream message, the check of every message (lost,
duplicated, reordered, torn), the mapping of a timed-out call to ``Stalled``, and the closing.

The loops call an end's ``call`` directly with its one fixed argument (``call(buf, arg)``,
``call(arg)``), so a system whose API is one call per message pays no per-message wrapper: the
ring's producer loop calls ``ring.write(buf, False)`` and nothing else (a system whose call
needs other arguments passes a small function instead). A call that returns ``False`` (a full
ring) or ``None`` (an empty one) is retried once with the end's ``wait`` arguments (the
blocking form), and a second failure is a stall. Systems whose calls block and raise on a
timeout name those exceptions in ``stalls``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar, Optional

from ..common import Params, Stalled
from . import loops
from .loops import Buf as Buf
from .loops import Result as Result
from .loops import Sync as Sync

Errors = tuple[type[BaseException], ...]


def optional(module: str) -> Any:
    """Import a module, or return None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def numpy_missing() -> Optional[str]:
    if optional("numpy") is None:
        return "batched loops need NumPy (pip install numpy)"
    return None


def _nothing() -> None:
    pass


# ----------------------------------------------------------------------------------------------
# Ends: what one process of a run calls, and how it is closed.


class End:
    """One process's end of a channel. ``run`` is its role in a throughput run."""

    #: Who is blamed when a call of this end times out.
    peer: ClassVar[str] = "peer"

    def __init__(self, name: str, *, stalls: Errors = (), close: Callable[[], None] = _nothing,
                 start: Callable[[], None] = _nothing) -> None:
        self.name = name  # the call, for messages: "ring.write"
        self.stalls = stalls  # exceptions of the calls that mean "timed out"
        self.close = close
        self.start = start  # called once after the barrier, before the clock starts

    def stalled(self) -> Stalled:
        return Stalled(f"{self.name} timed out: {self.peer} stalled")

    def run(self, p: Params, sync: Sync) -> Result:
        try:
            return self.loop(p, sync)
        except self.stalls:
            raise self.stalled() from None

    def loop(self, p: Params, sync: Sync) -> Result:
        raise NotImplementedError


class Sender(End):
    """Sends one message per call: ``call(buf, arg)``; ``False`` means full, then
    ``call(buf, *wait)`` (the blocking form) must succeed. ``buf``: the buffer the producer
    stamps and sends (default: ``common.message_buffer``)."""

    peer = "consumer"

    def __init__(self, name: str, call: Callable[[Buf, Any], Any], arg: Any,
                 *, wait: tuple[Any, ...] = (), buf: Any = None, stalls: Errors = (),
                 close: Callable[[], None] = _nothing, start: Callable[[], None] = _nothing,
                 ) -> None:
        super().__init__(name, stalls=stalls, close=close, start=start)
        self.call, self.arg, self.wait, self.buf = call, arg, wait, buf

    def block(self, m: Buf) -> None:
        """After ``call`` found the channel full: the blocking send, or ``Stalled``."""
        if not self.call(m, *self.wait):
            raise self.stalled()

    def send(self, m: Buf) -> None:
        """One message, outside the timed loops (the end-of-stream message)."""
        if self.call(m, self.arg) is False:
            self.block(m)

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.stream_producer(self, p, sync)


class Receiver(End):
    """Receives one message per call: ``call(arg)``; ``None`` means empty, then
    ``call(*wait)`` (the blocking form) must return one. The message supports
    ``struct.unpack_from`` and indexing (bytes, memoryview, ctypes array)."""

    peer = "producer"

    def __init__(self, name: str, call: Callable[[Any], Any], arg: Any,
                 *, wait: tuple[Any, ...] = (), stalls: Errors = (),
                 close: Callable[[], None] = _nothing, start: Callable[[], None] = _nothing,
                 ) -> None:
        super().__init__(name, stalls=stalls, close=close, start=start)
        self.call, self.arg, self.wait = call, arg, wait

    def block(self) -> Buf:
        """After ``call`` found the channel empty: the blocking receive, or ``Stalled``."""
        m = self.call(*self.wait)
        if m is None:
            raise self.stalled()
        return m

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.stream_consumer(self, p, sync)


class FirstViewReceiver(Receiver):
    """A ``Receiver`` whose ``call`` returns a list holding the message (the queue's
    ``get_view()``, one view per call), released when the next result replaces it."""

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.first_view_consumer(self, p, sync)


class IntoReceiver(End):
    """Copies each message into one reused buffer: ``call(buf, arg)`` returns its length, or
    ``None`` when empty (then ``call(buf, *wait)``). ``buf`` defaults to
    ``common.message_buffer``."""

    peer = "producer"

    def __init__(self, name: str, call: Callable[[Any, Any], Optional[int]], arg: Any,
                 *, wait: tuple[Any, ...] = (), buf: Any = None, stalls: Errors = (),
                 close: Callable[[], None] = _nothing) -> None:
        super().__init__(name, stalls=stalls, close=close)
        self.call, self.arg, self.wait, self.buf = call, arg, wait, buf

    def block(self, buf: Any) -> int:
        """After ``call`` found the channel empty: the blocking receive, or ``Stalled``."""
        k = self.call(buf, *self.wait)
        if k is None:
            raise self.stalled()
        return k

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.into_consumer(self, p, sync)


class Stamper:
    """Fills a batch of messages n .. n+k-1 (``batch.BatchStamper`` for raw bytes)."""

    def stamp(self, n: int, k: int) -> list[Any]:
        raise NotImplementedError

    def stop(self) -> Any:
        """The end-of-stream message."""
        raise NotImplementedError


class BatchSender(End):
    """Sends a batch per call: ``call(batch, *args)`` returns how many it took (``None``: all);
    the rest goes with ``call(rest, *wait)`` until taken, and a call that takes none is a
    stall. The end-of-stream message goes alone, the same way."""

    peer = "consumer"

    def __init__(self, name: str, call: Callable[..., Optional[int]], args: tuple[Any, ...],
                 stamper: Stamper, *, wait: tuple[Any, ...] = (), stalls: Errors = (),
                 close: Callable[[], None] = _nothing) -> None:
        super().__init__(name, stalls=stalls, close=close)
        self.call, self.args, self.wait, self.stamper = call, args, wait, stamper

    def send(self, batch: list[Any]) -> None:
        k = len(batch)
        done = self.call(batch, *self.args)
        while done is not None and done < k:
            more = self.call(batch[done:], *self.wait)
            if not more:
                raise self.stalled()
            done += more

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.batch_producer(self, p, sync)


Check = Callable[[Any, int], tuple[int, bool]]


def _unchecked(msgs: Any, n: int) -> tuple[int, bool]:
    raise AssertionError("a BatchReceiver with its own take has no check")


class BatchReceiver(End):
    """Receives a batch per call: ``call(*args)`` returns the messages (empty: a stall), which
    ``check(msgs, n)`` verifies as messages n, n+1, ... (returning how many data messages and
    whether the end-of-stream message came); ``release(msgs)`` afterwards if given. A system
    whose batches need more than that passes its own ``take(n) -> (count, stop seen)``."""

    peer = "producer"

    def __init__(self, name: str, call: Callable[..., Any] = _nothing, args: tuple[Any, ...] = (),
                 *, check: Optional[Check] = None,
                 release: Optional[Callable[[Any], None]] = None,
                 take: Optional[Callable[[int], tuple[int, bool]]] = None, stalls: Errors = (),
                 close: Callable[[], None] = _nothing) -> None:
        super().__init__(name, stalls=stalls, close=close)
        if check is None and take is None:
            raise TypeError("a BatchReceiver needs a check (or its own take)")
        self.call, self.args, self.release = call, args, release
        self.check: Check = check or _unchecked
        self.take: Callable[[int], tuple[int, bool]] = take or self._take

    def _take(self, n: int) -> tuple[int, bool]:
        msgs = self.call(*self.args)
        if not msgs:
            raise self.stalled()
        try:
            return self.check(msgs, n)
        finally:
            if self.release is not None:
                self.release(msgs)

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.batch_consumer(self, p, sync)


class NumberedSender(End):
    """For messages that are not byte buffers (typed records): ``send(n)`` builds and sends
    message n, or the end-of-stream message for ``STOP``, and raises ``Stalled`` itself."""

    peer = "consumer"

    def __init__(self, name: str, send: Callable[[int], None], *,
                 close: Callable[[], None] = _nothing) -> None:
        super().__init__(name, close=close)
        self.send = send

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.numbered_producer(self, p, sync)


class NumberedReceiver(End):
    """The consumer's side of ``NumberedSender``: ``recv()`` returns the next message's stamp."""

    peer = "producer"

    def __init__(self, name: str, recv: Callable[[], int], *,
                 close: Callable[[], None] = _nothing) -> None:
        super().__init__(name, close=close)
        self.recv = recv

    def loop(self, p: Params, sync: Sync) -> Result:
        return loops.numbered_consumer(self, p, sync)


# ----------------------------------------------------------------------------------------------
# Systems


def _run(end: End, p: Params, sync: Sync) -> Result:
    try:
        return end.run(p, sync)
    finally:
        end.close()


class System:
    """One system under test. Subclasses supply the channel and its ends (see the module doc)."""

    key: str = ""
    label: str = ""
    family: str = "peer"  # "mmapipc" or "peer"
    method: str = ""  # one line: which calls the loops use
    throughput: bool = True
    pingpong: bool = False
    batched: bool = False
    typed: bool = False
    mpmc: bool = False  # many producers, many consumers on one channel
    #: One producer, N consumer processes each receiving every message (``fanout_*``).
    fanout: bool = False
    #: The module the system needs and the distribution that installs it.
    requires: tuple[str, str] = ("", "")
    #: Throughput rows below this message size are skipped (frame-only systems).
    min_size: int = 0

    def too_small(self, size: int) -> Optional[str]:
        """None when throughput rows of ``size`` bytes apply to this system, else why not."""
        if size and size < self.min_size:
            return f"frames only: measured from {self.min_size >> 20} MiB on"
        return None

    def unavailable(self) -> Optional[str]:
        """None when the system can run here, else why not."""
        module, dist = self.requires
        if module and optional(module) is None:
            return f"{dist} is not installed (pip install {dist})"
        return None

    # --- in the parent, around a run
    def setup(self, p: Params) -> Any:
        raise NotImplementedError

    def teardown(self, h: Any) -> None:
        pass

    def pp_setup(self, p: Params) -> Any:
        """Ping-pong: one channel each way, (client to server, server to client)."""
        a = self.setup(p)
        try:
            return (a, self.setup(p))
        except BaseException:
            self.teardown(a)
            raise

    def pp_teardown(self, h: Any) -> None:
        for one in h:
            self.teardown(one)

    def fanout_setup(self, p: Params, consumers: int) -> Any:
        """Fan-out: the channel for one producer and ``consumers`` consumers of every message."""
        return self.setup(p)

    # --- in a child: the ends
    def sender(self, h: Any, p: Params) -> Sender:
        raise NotImplementedError

    def receiver(self, h: Any, p: Params) -> Receiver:
        raise NotImplementedError

    def producer(self, h: Any, p: Params) -> End:
        return self.sender(h, p)

    def consumer(self, h: Any, p: Params) -> End:
        return self.receiver(h, p)

    def fanout_consumer(self, h: Any, p: Params, consumer: int) -> End:
        """Fan-out consumer number ``consumer`` (each one of them receives every message)."""
        return self.consumer(h, p)

    def pp_ends(self, h: Any, p: Params, server: bool) -> tuple[Sender, Receiver]:
        """The ping-pong server's or client's (sender, receiver) on ``pp_setup``'s channels."""
        ab, ba = h
        tx = self.sender(ba if server else ab, p)
        try:
            return tx, self.receiver(ab if server else ba, p)
        except BaseException:
            tx.close()
            raise

    # --- the roles the runner starts; the same for every system
    def produce(self, h: Any, p: Params, sync: Sync) -> Result:
        return _run(self.producer(h, p), p, sync)

    def consume(self, h: Any, p: Params, sync: Sync) -> Result:
        return _run(self.consumer(h, p), p, sync)

    def fan_consume(self, h: Any, p: Params, sync: Sync, consumer: int) -> Result:
        return _run(self.fanout_consumer(h, p, consumer), p, sync)

    def pp_server(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pingpong(h, p, sync, True)

    def pp_client(self, h: Any, p: Params, sync: Sync) -> Result:
        return self._pingpong(h, p, sync, False)

    def _pingpong(self, h: Any, p: Params, sync: Sync, server: bool) -> Result:
        tx, rx = self.pp_ends(h, p, server)
        try:
            role = loops.pingpong_server if server else loops.pingpong_client
            return role(tx, rx, p, sync)
        except tx.stalls + rx.stalls:
            raise Stalled(f"{tx.name} / {rx.name} timed out") from None
        finally:
            tx.close()
            rx.close()

    def mp_produce(self, h: Any, p: Params, sync: Sync, producer: int) -> Result:
        tx = self.sender(h, p)
        try:
            return loops.mpmc_producer(tx, p, sync, producer)
        except tx.stalls:
            raise tx.stalled() from None
        finally:
            tx.close()

    def mp_consume(self, h: Any, p: Params, sync: Sync) -> Result:
        rx = self.receiver(h, p)
        try:
            return loops.mpmc_consumer(rx, p, sync)
        except rx.stalls:
            raise rx.stalled() from None
        finally:
            rx.close()

