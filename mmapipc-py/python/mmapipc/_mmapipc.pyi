"""Type stubs for the native module ``mmapipc._mmapipc``."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Callable, Iterable, NoReturn, final

from typing_extensions import Buffer, Self

from ._views import ViewBatch

LAYOUT_VERSION: int

def create_ring_with_schema(path: _Path, capacity: int, schema_json: str, *, mode: int = 0o600) -> str:
    """Creates a ring carrying `schema_json` in its header; returns the resolved path."""

def create_queue_with_schema(path: _Path, capacity: int, schema_json: str, *, mode: int = 0o600) -> str:
    """Creates a queue carrying `schema_json` in its header; returns the resolved path."""

def create_topic_with_schema(
    path: _Path,
    capacity: int,
    schema_json: str,
    *,
    mode: int = 0o600,
    max_subscribers: int = 16,
    overwrite: bool = False,
) -> str:
    """Creates a topic carrying `schema_json` in its header; returns the resolved path."""

def channel_schema(path: _Path, kind: str, *, allow_foreign_owner: bool = False) -> str | None:
    """The schema JSON stored in a channel file, or None for an untyped channel."""

def cli_main(argv: list[str]) -> int:
    """Runs the `mmapipc` command-line tool; returns its exit code."""

_Path = str | os.PathLike[str]

@final
class SharedBuffer:
    """A span of shared memory exported through the buffer protocol."""

    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __release_buffer__(self, buffer: memoryview, /) -> None: ...
    def __len__(self) -> int: ...

class _Handle:
    """What every handle class shares (the binding's ``handle_pymethods!``); stubs only, the
    classes have no common base at run time."""

    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def unlink(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

@final
class SharedMemory(_Handle):
    """A raw shared-memory region backed by a file. Safe to share between threads; ``close()``
    from any thread drops the mapping once no call uses it (views keep it alive)."""

    @classmethod
    def create(cls, path: _Path, size: int, *, mode: int = 0o600) -> SharedMemory: ...
    @classmethod
    def open(cls, path: _Path, *, allow_foreign_owner: bool = False) -> SharedMemory: ...
    @property
    def size(self) -> int: ...
    def write(self, offset: int, data: Buffer) -> None: ...
    def read(self, offset: int, length: int) -> bytes: ...
    def write_int(self, offset: int, value: int) -> None: ...
    def read_int(self, offset: int) -> int: ...
    def write_uint(self, offset: int, value: int) -> None: ...
    def read_uint(self, offset: int) -> int: ...
    def get_view(self, offset: int, size: int) -> memoryview: ...
    def __len__(self) -> int: ...
    def __reduce__(self) -> tuple[Callable[..., SharedMemory], tuple[str]]: ...

@final
class SharedMemoryRing(_Handle):
    """A lock-free single-producer single-consumer ring of byte messages in shared memory.

    One producer and one consumer at a time: each write claims the producer role and each read
    (or ``clear``) the consumer role for the duration of the call, so handles, threads and
    processes take turns; a call while another handle or process is in a call as that role
    raises ``AlreadyAttached`` (a dead holder is taken over). A ``loan`` keeps the producer role
    until ``commit``/``abort``; a ``read_view`` memoryview keeps the consumer role and its slot
    until it is released or the next read/read_view/read_batch/clear/close on this handle, which
    releases it (``BufferError`` if an array still exports it).

    Threads may share a handle: producer and consumer calls run concurrently, two calls on one
    side take turns (a blocking call waits for its turn within its timeout, a non-blocking one
    returns False/None/[] at once if the side is busy). ``close()`` from another thread wakes
    blocked calls, which raise ``ValueError``.
    """

    @classmethod
    def create(cls, path: _Path, capacity: int, *, mode: int = 0o600) -> SharedMemoryRing: ...
    @classmethod
    def open(cls, path: _Path, *, allow_foreign_owner: bool = False) -> SharedMemoryRing: ...
    def write(self, data: Buffer, block: bool = False, timeout: float | None = None) -> bool: ...
    def write_batch(self, messages: Iterable[Buffer], block: bool = False, timeout: float | None = None) -> int: ...
    def read(self, block: bool = False, timeout: float | None = None) -> bytes | None: ...
    def read_into(self, buffer: Buffer, block: bool = False, timeout: float | None = None) -> int | None: ...
    def loan(self, size: int, block: bool = False, timeout: float | None = None) -> memoryview | None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def read_view(self, block: bool = False, timeout: float | None = None) -> memoryview | None: ...
    def read_batch(self, max_count: int, block: bool = False, timeout: float | None = None) -> list[bytes]: ...
    def read_fixed_batch(
        self, max_count: int, size: int, block: bool = False, timeout: float | None = None
    ) -> tuple[memoryview, int, int] | None: ...
    def available_write(self) -> int: ...
    def available_read(self) -> int: ...
    def clear(self) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_message_size(self) -> int: ...
    def __len__(self) -> int: ...
    def __reduce__(self) -> tuple[Callable[..., SharedMemoryRing], tuple[str]]: ...
    # asyncio and readiness descriptors (mmapipc/_aio.py attaches these on import).
    def fileno(self, writable: bool = False) -> int:
        """The readiness eventfd of the reading side (or, `writable`, the writing side): readable
        once the side may make progress after `arm()`. Another number in a forked child."""
    def arm(self, writable: bool = False, size: int = 0) -> bool:
        """Drains `fileno(writable)` and registers interest (`size`: the message to write). True:
        ready now (retry the call). False: the descriptor becomes readable once it may be."""
    async def read_async(self, timeout: float | None = None) -> bytes | None:
        """`read()` without blocking the event loop: the next message, or None after `timeout`."""
    async def read_batch_async(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """Up to `max_count` messages, at least one unless `timeout` passed (then [])."""
    async def write_async(self, data: Buffer, timeout: float | None = None) -> bool:
        """`write()` that waits for room without blocking the loop; False after `timeout`."""
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> bytes: ...

@final
class SharedMemoryQueue(_Handle):
    """A bounded, crash-safe multi-producer multi-consumer queue of byte messages. Safe to share
    between threads; ``close()`` from another thread makes blocked calls raise ``ValueError``
    within one wait slice (50 ms)."""

    @classmethod
    def create(
        cls,
        path: _Path,
        capacity: int,
        *,
        mode: int = 0o600,
        recovery_bound: float = 1.0,
        prefault: bool = False,
    ) -> SharedMemoryQueue: ...
    @classmethod
    def open(
        cls,
        path: _Path,
        *,
        allow_foreign_owner: bool = False,
        recovery_bound: float = 1.0,
        prefault: bool = False,
    ) -> SharedMemoryQueue: ...
    def put(self, data: Buffer, block: bool = True, timeout: float | None = None) -> bool: ...
    def put_batch(self, messages: Iterable[Buffer], block: bool = True, timeout: float | None = None) -> int: ...
    def loan(self, size: int, block: bool = True, timeout: float | None = None) -> memoryview | None:
        """A writable memoryview of a reserved slot of ``size`` bytes (None if no room in time);
        ``commit()`` publishes it, ``abort()`` or dropping the memoryview abandons it. While it is
        out this process holds the queue's producer lock."""
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> bytes | None: ...
    def get_into(self, buffer: Buffer, block: bool = True, timeout: float | None = None) -> int | None: ...
    def get_batch(self, max_count: int, block: bool = True, timeout: float | None = None) -> list[bytes]: ...
    def get_view(
        self, block: bool = True, timeout: float | None = None, *, max_count: int | None = 1
    ) -> ViewBatch | None:
        """One message (``max_count`` up to N, ``None``: all available) as a ``ViewBatch`` of
        read-only memoryviews into the slots, or None on timeout / empty (block=False)."""
    def get_fixed_batch(
        self, max_count: int, size: int, block: bool = True, timeout: float | None = None
    ) -> tuple[memoryview, int, int] | None: ...
    def release(self, views: Iterable[memoryview]) -> None: ...
    def qsize(self) -> int: ...
    def empty(self) -> bool: ...
    def available_write(self) -> int: ...
    def clear(self) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_message_size(self) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def __len__(self) -> int: ...
    def __reduce__(self) -> tuple[Callable[..., SharedMemoryQueue], tuple[str]]: ...
    # asyncio and readiness descriptors (mmapipc/_aio.py attaches these on import).
    def fileno(self, writable: bool = False) -> int:
        """The readiness eventfd of the getting side (or, `writable`, the putting side), as
        `SharedMemoryRing.fileno`."""
    def arm(self, writable: bool = False, size: int = 0) -> bool:
        """As `SharedMemoryRing.arm`."""
    async def get_async(self, timeout: float | None = None) -> bytes | None:
        """`get()` without blocking the event loop: the next message, or None after `timeout`."""
    async def get_batch_async(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """Up to `max_count` messages, at least one unless `timeout` passed (then [])."""
    async def put_async(self, data: Buffer, timeout: float | None = None) -> bool:
        """`put()` that waits for room without blocking the loop; False after `timeout`."""
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> bytes: ...

# Message schemas: the Rust crate's fingerprint, canonical text and compatibility rules.

def schema_canonical(schema_json: str) -> str:
    """The canonical text of the layout in `schema_json` (what the fingerprint hashes)."""

def schema_fingerprint(schema_json: str) -> str:
    """The fingerprint computed from the layout in `schema_json`."""

def schema_verify(schema_json: str) -> None:
    """Raises ValueError unless the stored fingerprint matches the layout."""

def schema_check_reader(channel_json: str, reader_json: str) -> None:
    """Raises mmapipc.SchemaMismatch unless a reader of `reader_json` may read a channel of `channel_json`."""

# Publish-subscribe: one publisher, many subscribers and consumer groups.

@final
class SharedMemoryTopic(_Handle):
    """A publish-subscribe topic in shared memory: one publisher, many subscribers, each of
    which sees every message published after it subscribed; consumer groups share a cursor."""

    @classmethod
    def create(
        cls,
        path: _Path,
        capacity: int,
        *,
        max_subscribers: int = 16,
        overflow: str = "block",
        mode: int = 0o600,
    ) -> SharedMemoryTopic: ...
    @classmethod
    def open(cls, path: _Path, *, allow_foreign_owner: bool = False) -> SharedMemoryTopic: ...
    def publish(self, data: Buffer, block: bool = True, timeout: float | None = None) -> bool: ...
    def publish_batch(self, messages: Iterable[Buffer], block: bool = True, timeout: float | None = None) -> int: ...
    def subscribe(self, start: str = "latest", group: str | None = None) -> TopicSubscriber: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_message_size(self) -> int: ...
    @property
    def max_subscribers(self) -> int: ...
    @property
    def overflow(self) -> str: ...
    def stats(self) -> dict[str, int]: ...
    def subscribers(self) -> list[dict[str, Any]]: ...
    def __reduce__(self) -> tuple[Callable[..., SharedMemoryTopic], tuple[str]]: ...
    # asyncio and readiness descriptors (mmapipc/_aio.py attaches these on import).
    def fileno(self) -> int:
        """The publisher's readiness eventfd: readable once a message may fit after `arm()`
        (block mode). Another number in a forked child."""
    def arm(self, size: int = 0) -> bool:
        """Drains `fileno()` and registers interest in room for `size` bytes (claiming the
        publisher role). True: room now (retry). False: the descriptor becomes readable once
        there may be."""
    async def publish_async(self, data: Buffer, timeout: float | None = None) -> bool:
        """`publish()` that waits for room without blocking the loop; False after `timeout`."""

@final
class TopicSubscriber(_Handle):
    """One subscriber of a SharedMemoryTopic; iterating blocks for the next message."""

    def recv(self, block: bool = True, timeout: float | None = None) -> bytes | None: ...
    def recv_batch(self, max_count: int, block: bool = True, timeout: float | None = None) -> list[bytes]: ...
    def recv_view(self, block: bool = True, timeout: float | None = None) -> memoryview | None: ...
    def recv_into(self, buffer: Buffer, block: bool = True, timeout: float | None = None) -> int | None: ...
    def recv_fixed_batch(
        self, max_count: int, size: int, block: bool = True, timeout: float | None = None
    ) -> tuple[memoryview, int, int] | None: ...
    @property
    def lag(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def messages(self) -> int: ...
    @property
    def group(self) -> str | None: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> bytes: ...
    def __reduce__(self) -> NoReturn: ...
    # asyncio and readiness descriptors (mmapipc/_aio.py attaches these on import).
    def fileno(self) -> int:
        """The readiness eventfd: readable once a message may be ready after `arm()`. Another
        number in a forked child."""
    def arm(self) -> bool:
        """Drains `fileno()` and registers interest. True: a message may be ready now (retry).
        False: the descriptor becomes readable once one may be."""
    async def recv_async(self, timeout: float | None = None) -> bytes | None:
        """`recv()` without blocking the event loop: the next message, or None after `timeout`."""
    async def recv_batch_async(self, max_count: int, timeout: float | None = None) -> list[bytes]:
        """Up to `max_count` messages, at least one unless `timeout` passed (then [])."""
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> bytes:
        """The next message; the iteration ends when the subscriber is closed."""

# Readiness descriptors (used by mmapipc/_aio.py; the methods above wrap them).

_Ready = SharedMemoryRing | SharedMemoryQueue | SharedMemoryTopic | TopicSubscriber

def ready_fileno(handle: _Ready, writable: bool = False) -> int:
    """The handle's readiness eventfd for reading (or, `writable`, for writing)."""

def ready_arm(handle: _Ready, writable: bool = False, size: int = 0, spin: bool = False) -> bool:
    """Drains the descriptor and registers interest in the side (`size`: the message to write).
    True: ready now (nothing registered; retry the call). False: the descriptor becomes
    readable once the side may be ready. With `spin`, first polls the side as a blocking call
    does (up to 50 us, the GIL released)."""

def ready_disarm(handle: _Ready, writable: bool = False) -> None:
    """Drops the registration of the side, if any."""

def ready_armed(handle: _Ready, writable: bool = False) -> bool:
    """Whether the side has a registration that has not fired (for tests)."""

def ready_threads() -> int:
    """Waiter threads this process runs for readiness descriptors (for tests)."""
