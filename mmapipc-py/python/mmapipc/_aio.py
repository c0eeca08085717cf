"""asyncio for rings, queues, topics and typed channels: ``await ring.read_async()``,
``await sub.recv_async()``, ``async for``.

Every await tries the non-blocking call first and returns its result at once when there is
one (no loop machinery: the coroutine never suspends). Only when the channel is empty (or full,
for a send) does it arm the handle's readiness descriptor (``fileno()``: an eventfd that the
process's waiter thread makes readable when a peer publishes, see docs/async.md), wait for it
with ``loop.add_reader``, and try again. A message is taken only by the synchronous call after
the wait, never before an ``await``, so a cancelled await takes nothing: the message stays for
the next receive. The last waiter on a descriptor to leave (done, timed out or cancelled)
removes its reader and the registration.

Before waiting on the descriptor, a wait polls the channel for up to 50 us when the loop has
nothing else to run (see :data:`SPIN`), as the blocking calls do.

Works with any asyncio loop that implements ``add_reader`` (the default selector loop,
uvloop). :func:`install` attaches the methods to the classes; ``mmapipc`` calls it on import.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Optional, Set, Tuple, TypeVar, Union

from ._mmapipc import (
    SharedMemoryQueue,
    SharedMemoryRing,
    SharedMemoryTopic,
    TopicSubscriber,
    ready_arm,
    ready_disarm,
    ready_fileno,
)

__all__ = ["install", "receive", "send", "wait_ready"]

T = TypeVar("T")
Channel = Union[SharedMemoryRing, SharedMemoryQueue, SharedMemoryTopic, TopicSubscriber]

# Futures waiting on one descriptor of one loop: one reader callback wakes them all (a second
# `add_reader` on the same descriptor would replace the first waiter's callback).
_waiting: Dict[Tuple[asyncio.AbstractEventLoop, int], Set["asyncio.Future[None]"]] = {}


def _wake_all(key: Tuple[asyncio.AbstractEventLoop, int]) -> None:
    for fut in _waiting.get(key, ()):
        if not fut.done():
            fut.set_result(None)


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


#: Poll a channel found empty (or full) for up to 50 us before waiting on its descriptor, as a
#: blocking call does, when the loop has nothing else ready to run (with loops that do not say,
#: such as uvloop: always). A peer that answers within that time then costs no thread wake-ups:
#: this is what keeps an asyncio round trip near a blocking one. Set to False to never poll.
SPIN = True


def _idle(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether no callback is waiting to run on `loop` (True if the loop does not say). A
    cancelled handle does not count: a reader removed after its descriptor fired leaves one."""
    ready = getattr(loop, "_ready", None)
    return ready is None or all(h.cancelled() for h in ready)


async def wait_ready(handle: Channel, writable: bool = False, size: int = 0, deadline: Optional[float] = None) -> bool:
    """Waits until `handle`'s side (readable, or `writable` for a message of `size` bytes) may be
    ready: True, or False once `deadline` (the running loop's ``time()``) has passed."""
    loop = asyncio.get_running_loop()
    if ready_arm(handle, writable, size, SPIN and _idle(loop)):
        # Ready now, or the side is busy in another thread's call: let the loop run once before
        # the caller tries again, so that a side held elsewhere never stalls the loop, and keep
        # to the deadline.
        await asyncio.sleep(0)
        return deadline is None or loop.time() < deadline
    fd = ready_fileno(handle, writable)
    key = (loop, fd)
    futs = _waiting.get(key)
    if futs is None:
        futs = _waiting[key] = set()
        loop.add_reader(fd, _wake_all, key)
    fut: asyncio.Future[None] = loop.create_future()
    futs.add(fut)
    timer = loop.call_at(deadline, _wake, fut) if deadline is not None else None
    try:
        await fut
    finally:
        if timer is not None:
            timer.cancel()
        futs.discard(fut)
        if not futs:
            del _waiting[key]
            loop.remove_reader(fd)
            ready_disarm(handle, writable)
    return deadline is None or loop.time() < deadline


def _deadline(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("timeout must be non-negative")
    return asyncio.get_running_loop().time() + timeout


async def receive(handle: Channel, attempt: Callable[[], T], got: Callable[[T], bool], timeout: Optional[float]) -> T:
    """`attempt()` (a non-blocking receive) until `got(result)`, waiting for readability in
    between; after `timeout` seconds, the last attempt's result."""
    r = attempt()
    if got(r):
        return r
    deadline = _deadline(timeout)
    while True:
        more = await wait_ready(handle, False, 0, deadline)
        r = attempt()
        if got(r) or not more:
            return r


async def send(handle: Channel, attempt: Callable[[], bool], size: int, timeout: Optional[float]) -> bool:
    """`attempt()` (a non-blocking send of `size` bytes) until it returns True, waiting for room
    in between; False after `timeout` seconds."""
    if attempt():
        return True
    deadline = _deadline(timeout)
    while True:
        more = await wait_ready(handle, True, size, deadline)
        if attempt():
            return True
        if not more:
            return False


def _some(x: object) -> bool:
    return x is not None


def _nonempty(x: Any) -> bool:
    return len(x) > 0


def _nbytes(data: Any) -> int:
    return len(data) if isinstance(data, bytes) else memoryview(data).nbytes


# -- the methods attached to the classes (docs in _mmapipc.pyi) --------------------------------


def _fileno(self: Channel, writable: bool = False) -> int:
    return ready_fileno(self, writable)


def _arm(self: Channel, writable: bool = False, size: int = 0) -> bool:
    return ready_arm(self, writable, size, False)


async def _ring_read_async(self: SharedMemoryRing, timeout: Optional[float] = None) -> Optional[bytes]:
    return await receive(self, self.read, _some, timeout)


async def _ring_read_batch_async(self: SharedMemoryRing, max_count: int, timeout: Optional[float] = None) -> list[bytes]:
    return await receive(self, lambda: self.read_batch(max_count), _nonempty, timeout)


async def _ring_write_async(self: SharedMemoryRing, data: Any, timeout: Optional[float] = None) -> bool:
    return await send(self, lambda: self.write(data), _nbytes(data), timeout)


async def _queue_get_async(self: SharedMemoryQueue, timeout: Optional[float] = None) -> Optional[bytes]:
    return await receive(self, lambda: self.get(block=False), _some, timeout)


async def _queue_get_batch_async(self: SharedMemoryQueue, max_count: int, timeout: Optional[float] = None) -> list[bytes]:
    return await receive(self, lambda: self.get_batch(max_count, block=False), _nonempty, timeout)


async def _queue_put_async(self: SharedMemoryQueue, data: Any, timeout: Optional[float] = None) -> bool:
    return await send(self, lambda: self.put(data, block=False), _nbytes(data), timeout)


def _aiter(self: T) -> T:
    return self


async def _ring_anext(self: SharedMemoryRing) -> bytes:
    m = await receive(self, self.read, _some, None)
    assert m is not None
    return m


async def _queue_anext(self: SharedMemoryQueue) -> bytes:
    m = await receive(self, lambda: self.get(block=False), _some, None)
    assert m is not None
    return m


async def _sub_recv_async(self: TopicSubscriber, timeout: Optional[float] = None) -> Optional[bytes]:
    return await receive(self, lambda: self.recv(block=False), _some, timeout)


async def _sub_recv_batch_async(self: TopicSubscriber, max_count: int, timeout: Optional[float] = None) -> list[bytes]:
    return await receive(self, lambda: self.recv_batch(max_count, block=False), _nonempty, timeout)


async def _sub_anext(self: TopicSubscriber) -> bytes:
    """The next message; the iteration ends when the subscriber is closed (as ``__next__``)."""
    if self.closed:
        raise StopAsyncIteration
    try:
        m = await receive(self, lambda: self.recv(block=False), _some, None)
    except ValueError:
        if self.closed:
            raise StopAsyncIteration from None
        raise
    assert m is not None
    return m


async def _topic_publish_async(self: SharedMemoryTopic, data: Any, timeout: Optional[float] = None) -> bool:
    return await send(self, lambda: self.publish(data, block=False), _nbytes(data), timeout)


def _topic_fileno(self: SharedMemoryTopic) -> int:
    return ready_fileno(self, True)


def _topic_arm(self: SharedMemoryTopic, size: int = 0) -> bool:
    return ready_arm(self, True, size, False)


def _sub_fileno(self: TopicSubscriber) -> int:
    return ready_fileno(self, False)


def _sub_arm(self: TopicSubscriber) -> bool:
    return ready_arm(self, False, 0, False)


def install() -> None:
    """Attaches ``fileno``, ``arm`` and the async methods to the ring, queue and topic classes."""
    methods: Dict[type, Dict[str, Any]] = {
        SharedMemoryRing: {
            "read_async": _ring_read_async,
            "read_batch_async": _ring_read_batch_async,
            "write_async": _ring_write_async,
            "__anext__": _ring_anext,
        },
        SharedMemoryQueue: {
            "get_async": _queue_get_async,
            "get_batch_async": _queue_get_batch_async,
            "put_async": _queue_put_async,
            "__anext__": _queue_anext,
        },
    }
    for cls, table in methods.items():
        table.update({"fileno": _fileno, "arm": _arm, "__aiter__": _aiter})
        for name, fn in table.items():
            setattr(cls, name, fn)
    topic_methods: Dict[type, Dict[str, Any]] = {
        TopicSubscriber: {
            "recv_async": _sub_recv_async,
            "recv_batch_async": _sub_recv_batch_async,
            "fileno": _sub_fileno,
            "arm": _sub_arm,
            "__aiter__": _aiter,
            "__anext__": _sub_anext,
        },
        SharedMemoryTopic: {"publish_async": _topic_publish_async, "fileno": _topic_fileno, "arm": _topic_arm},
    }
    for cls, table in topic_methods.items():
        for name, fn in table.items():
            setattr(cls, name, fn)
