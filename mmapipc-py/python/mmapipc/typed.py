"""Typed channels in Python: records described by a schema, read in place as NumPy data.

A typed channel is a byte channel whose file header carries the message schema (written by a
Rust ``TypedRing<T>`` or by :meth:`TypedRing.create`). Opening one needs no generated code::

    from mmapipc.typed import TypedRing

    with TypedRing.open("/dev/shm/ticks") as ticks:
        print(ticks.schema.name, ticks.schema.version, ticks.dtype)
        rec = ticks.recv(timeout=1.0)          # a Record over the slot, no copy
        if rec is not None:
            print(rec.price, rec["size"])

Every receive (``recv``, ``recv_batch``) and send of a typed channel blocks by default (up to
``timeout``; ``block=False`` returns at once), for rings and queues alike.

Records returned by :meth:`TypedRing.recv` point into the ring's slot: they stay valid until the
next ``recv``/``recv_batch`` on the same handle (or ``close``); after that the record raises
``ValueError``, and an array taken from it that is still alive makes the next receive raise
``BufferError`` rather than let it see recycled bytes. Copy what you keep
(``rec.to_dict()``, ``np.array(rec.pixels)``).

:class:`TypedRing` and :class:`TypedQueue` share one implementation (``_TypedChannel``: open with
the schema check, create with the schema in the header, send, receive, batches) and supply only
their byte channel's calls. The message bytes they write and read are FORMAT.md, "Typed
payload" (written by :meth:`Schema.encode`, read by :class:`mmapipc.record.Record`).
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Iterable, Mapping, TypeVar, Union

from . import _aio
from ._dtype import field_dtype
from ._mmapipc import (
    SharedMemoryQueue,
    SharedMemoryRing,
    SharedMemoryTopic,
    TopicSubscriber,
    channel_schema,
    create_queue_with_schema,
    create_ring_with_schema,
)
from .errors import Error
from .record import Dim, Record, _resolve_dims, image_view
from .schema import Schema

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import numpy.typing as npt

__all__ = ["TypedRing", "TypedQueue", "TypedTopic", "TypedSubscription", "Loan", "SchemaLike"]

SchemaLike = Union[Schema, str, "os.PathLike[str]", Mapping[str, Any]]


def as_schema(schema: SchemaLike | Any) -> Schema:
    """A :class:`Schema` from a Schema, a JSON file path, a JSON object, or a generated module
    or class that has a ``SCHEMA``/``schema`` attribute."""
    if isinstance(schema, Schema):
        return schema
    for attr in ("SCHEMA", "schema"):
        inner = getattr(schema, attr, None)
        if isinstance(inner, Schema):
            return inner
    if isinstance(schema, Mapping):
        return Schema.from_dict(schema)
    if isinstance(schema, (str, os.PathLike)):
        return Schema.from_file(os.fspath(schema))
    raise TypeError(f"expected a Schema, a schema file path or a generated module, got {type(schema).__name__}")


_B = TypeVar("_B", SharedMemoryRing, SharedMemoryQueue, SharedMemoryTopic, TopicSubscriber)
_C = TypeVar("_C", bound="_TypedChannel[Any]")


class _TypedChannel(Generic[_B]):
    """What a typed ring and a typed queue share: a byte channel `_B` whose header carries the
    channel's schema, and the reader's schema (the channel's, or an older version of it). The
    subclasses supply the byte channel's calls (``_create_bytes`` ... ``_fixed_batch``)."""

    _kind: ClassVar[str]
    """``"ring"`` or ``"queue"``: the file kind, as ``channel_schema`` names it."""
    _release_on_next: ClassVar[bool]
    """True when the next receive may reuse a record's slot (a ring): the record is released then."""

    def __init__(self, inner: _B, channel: Schema, reader: Schema | None = None) -> None:
        self._bytes: _B = inner
        self._channel = channel
        self._reader = reader or channel
        self._last: Record | None = None

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def create(cls: type[_C], path: str | os.PathLike[str], capacity: int, schema: SchemaLike | Any, *, mode: int = 0o600) -> _C:
        """Creates a channel of `capacity` bytes whose header carries `schema`."""
        s = as_schema(schema)
        return cls(cls._create_bytes(path, capacity, s.to_json(), mode), s)

    @classmethod
    def open(cls: type[_C], path: str | os.PathLike[str], schema: SchemaLike | Any | None = None, *, allow_foreign_owner: bool = False) -> _C:
        """Opens a typed channel. With `schema`, checks that it may read the channel (the same
        rules as Rust: same name and layout, or a newer channel version that only appended
        fields) and raises :class:`mmapipc.SchemaMismatch` with a field-by-field diff otherwise."""
        channel, reader = _open_schemas(path, cls._kind, schema, allow_foreign_owner)
        return cls(cls._open_bytes(path, allow_foreign_owner), channel, reader)

    @classmethod
    def _create_bytes(cls, path: str | os.PathLike[str], capacity: int, schema_json: str, mode: int) -> _B:
        """Creates the byte channel with `schema_json` in its header and opens it."""
        raise NotImplementedError

    @classmethod
    def _open_bytes(cls, path: str | os.PathLike[str], allow_foreign_owner: bool) -> _B:
        """Opens the byte channel."""
        raise NotImplementedError

    # -- properties --------------------------------------------------------------------------

    @property
    def schema(self) -> Schema:
        """The schema stored in the channel."""
        return self._channel

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy structured dtype of the reader's view of a record."""
        return self._reader.dtype

    # -- send --------------------------------------------------------------------------------

    def send(
        self,
        values: Mapping[str, Any] | Any = None,
        /,
        *,
        block: bool = True,
        timeout: float | None = None,
        **fields: Any,
    ) -> bool:
        """Sends one record given as a mapping, a NumPy record of :attr:`dtype`, or keyword
        arguments (a field literally named ``block`` or ``timeout`` must go in the mapping).
        Returns False if it timed out (or the channel is full with ``block=False``)."""
        _check_writer(self._channel, self._reader)
        return self._put(self._channel.encode(values, **fields).data, block, timeout)

    def send_batch(self, records: Any, block: bool = True, timeout: float | None = None) -> int:
        """Sends fixed-size records given as a NumPy structured array (or anything convertible
        to one of :attr:`dtype`), with one index publication (a ring) or one lock acquisition
        per wait (a queue) per batch; returns how many were sent (fewer on timeout, or when the
        channel is full with ``block=False``)."""
        return self._put_batch(self._rows(records), block, timeout)

    async def send_async(self, values: Mapping[str, Any] | Any = None, /, *, timeout: float | None = None, **fields: Any) -> bool:
        """:meth:`send` for asyncio: waits for room (up to `timeout` seconds, None: as long as
        it takes) without blocking the loop (see ``mmapipc._aio``); False on timeout. The
        record is written by one non-blocking send after a wake-up, never across an ``await``,
        so a cancelled await either sent the whole record or sent nothing."""
        _check_writer(self._channel, self._reader)
        data = self._channel.encode(values, **fields).data
        return await _aio.send(self._bytes, lambda: self._put(data, False, None), _aio._nbytes(data), timeout)

    async def send_batch_async(self, records: Any, timeout: float | None = None) -> int:
        """:meth:`send_batch` for asyncio: sends every record, in order, waiting for room
        between non-blocking batch sends; returns how many were sent (fewer after `timeout`
        seconds). A cancelled await has sent a prefix of `records` (whole records): use
        `timeout` to learn how many."""
        rows = self._rows(records)
        sent = 0

        def attempt() -> bool:
            nonlocal sent
            if sent < len(rows):
                sent += self._put_batch(rows[sent:], False, None)
            return sent == len(rows)

        await _aio.send(self._bytes, attempt, self._channel.size, timeout)
        return sent

    def _rows(self, records: Any) -> list[memoryview]:
        """One memoryview per record of a structured array of the channel's dtype."""
        import numpy as np

        channel = self._channel
        _check_writer(channel, self._reader)
        if not channel.fixed_size:
            raise TypeError(f"{channel.name} has variable-size fields (Vec/String); send records one by one")
        arr = np.ascontiguousarray(records, dtype=channel.dtype).reshape(-1)
        raw = arr.view(np.uint8).reshape(arr.size, channel.size)
        return [memoryview(row) for row in raw]  # type: ignore[arg-type]

    def _put(self, data: memoryview, block: bool, timeout: float | None) -> bool:
        """Writes one message."""
        raise NotImplementedError

    def _put_batch(self, rows: Iterable[memoryview], block: bool, timeout: float | None) -> int:
        """Writes messages of one size; returns how many."""
        raise NotImplementedError

    # -- receive -----------------------------------------------------------------------------

    def recv(self, block: bool = True, timeout: float | None = None) -> Record | None:
        """The next record, in place, or None on timeout: how long it stays valid is the
        channel's rule (see the class docs). A corrupt message raises
        :class:`mmapipc.CorruptMessage` when a field is read."""
        self._release_last()
        view = self._next_view(block, timeout)
        if view is None:
            return None
        record = Record(self._reader, view, self._channel.size)
        if self._release_on_next:
            self._last = record
        return record

    async def recv_async(self, timeout: float | None = None) -> Record | None:
        """:meth:`recv` for asyncio: the next record, or None after `timeout` seconds, without
        blocking the loop (see ``mmapipc._aio``). A cancelled await takes nothing."""
        return await _aio.receive(self._bytes, lambda: self.recv(block=False), _aio._some, timeout)

    def __aiter__(self: _C) -> _C:
        return self

    async def __anext__(self) -> Record:
        rec = await self.recv_async()
        assert rec is not None
        return rec

    async def recv_batch_async(self, max_count: int, timeout: float | None = None) -> npt.NDArray[Any]:
        """``recv_batch`` for asyncio: at least one record unless `timeout` passed (then empty)."""
        recv_batch = getattr(self, "recv_batch")
        return await _aio.receive(self._bytes, lambda: recv_batch(max_count, block=False), _aio._nonempty, timeout)

    def _release_last(self) -> None:
        """The previous record's slot is about to be reused: make the record unusable, so stale
        data can never be read through it (arrays taken from it make the next read raise
        BufferError instead)."""
        if self._last is not None:
            self._last.release()
            self._last = None

    def _recv_batch(self, max_count: int, block: bool, timeout: float | None) -> npt.NDArray[Any]:
        """Up to `max_count` fixed-size records as one structured array over their slots."""
        import numpy as np

        self._release_last()
        if not self._channel.fixed_size:
            raise TypeError(f"{self._channel.name} has variable-size fields (Vec/String); use recv()")
        got = self._fixed_batch(max_count, self._channel.size, block, timeout)
        if got is None:
            return np.empty(0, dtype=self._reader.dtype)
        view, count, stride = got
        return np.ndarray(shape=(count,), dtype=self._reader.dtype, buffer=view, offset=0, strides=(stride,))

    def _next_view(self, block: bool, timeout: float | None) -> memoryview | None:
        """The next message, in its slot."""
        raise NotImplementedError

    def _fixed_batch(self, max_count: int, size: int, block: bool, timeout: float | None) -> tuple[memoryview, int, int] | None:
        """Up to `max_count` messages of `size` bytes at equal distances: (view, count, stride)."""
        raise NotImplementedError

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the handle (never removes the file)."""
        self._release_last()
        self._bytes.close()

    def unlink(self) -> None:
        """Removes the file."""
        self._bytes.unlink()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._bytes.path!r}, {self._channel.label})"


class TypedRing(_TypedChannel[SharedMemoryRing]):
    """A single-producer single-consumer ring of records of one schema. A record from
    :meth:`recv` is valid until the next receive on this handle (see the module docs); a batch
    from :meth:`recv_batch` must be gone before the next receive."""

    _kind = "ring"
    _release_on_next = True

    @classmethod
    def _create_bytes(cls, path: str | os.PathLike[str], capacity: int, schema_json: str, mode: int) -> SharedMemoryRing:
        return SharedMemoryRing.open(create_ring_with_schema(path, capacity, schema_json, mode=mode))

    @classmethod
    def _open_bytes(cls, path: str | os.PathLike[str], allow_foreign_owner: bool) -> SharedMemoryRing:
        return SharedMemoryRing.open(path, allow_foreign_owner=allow_foreign_owner)

    @property
    def ring(self) -> SharedMemoryRing:
        """The underlying byte ring."""
        return self._bytes

    def _put(self, data: memoryview, block: bool, timeout: float | None) -> bool:
        return self._bytes.write(data, block=block, timeout=timeout)

    def _put_batch(self, rows: Iterable[memoryview], block: bool, timeout: float | None) -> int:
        return self._bytes.write_batch(rows, block=block, timeout=timeout)

    def _next_view(self, block: bool, timeout: float | None) -> memoryview | None:
        return self._bytes.read_view(block=block, timeout=timeout)

    def _fixed_batch(self, max_count: int, size: int, block: bool, timeout: float | None) -> tuple[memoryview, int, int] | None:
        return self._bytes.read_fixed_batch(max_count, size, block=block, timeout=timeout)

    def loan(
        self,
        field: str,
        count: int,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        block: bool = True,
        timeout: float | None = None,
        **fields: Any,
    ) -> Loan | None:
        """Reserves a slot for one record whose ``Vec`` field `field` (e.g. a frame's
        ``pixels``) holds `count` elements, to be filled **in place**: write into
        :attr:`Loan.array`, then :meth:`Loan.commit`. The other fields come from `values` /
        keyword arguments as for :meth:`send`. None if no room came in time."""
        import numpy as np

        _check_writer(self._channel, self._reader)
        f = self._channel.field(field)
        if f.kind != "vec":
            raise TypeError(f"{self._channel.name}.{field} is {f.type_name}, not a Vec")
        elem = np.dtype(field_dtype(f.type["elem"]))
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        array_bytes = (count * elem.itemsize + 7) & ~7
        header = self._channel.encode({**(values or {}), **fields, field: np.empty(0, elem)})
        total = array_bytes + header.size
        view = self._bytes.loan(total, block=block, timeout=timeout)
        if view is None:
            return None
        buf = np.frombuffer(view, dtype=np.uint8)
        buf[array_bytes:] = header
        # The Vec field (FORMAT.md, "Typed payload": relative pointer, then count) points at the
        # array, which starts the slot.
        field_at = array_bytes + header.size - self._channel.size + f.offset
        buf[field_at : field_at + 4] = np.frombuffer(np.int32(-field_at).tobytes(), np.uint8)
        buf[field_at + 4 : field_at + 8] = np.frombuffer(np.uint32(count).tobytes(), np.uint8)
        return Loan(self._bytes, buf[: count * elem.itemsize].view(elem), {**(values or {}), **fields}, f"{self._channel.name}.{field}")

    def recv_batch(self, max_count: int, block: bool = True, timeout: float | None = None) -> npt.NDArray[Any]:
        """Up to `max_count` fixed-size records as **one structured array over the ring's slots**
        (no copy): ``batch["price"].mean()`` reads the shared memory directly. Waits (with
        ``block``, the default of every typed receive, up to `timeout`) for the first record;
        ``block=False`` returns at once. An empty array means nothing arrived.

        The array is read-only and holds its slots until it is gone: drop it (``del batch``)
        before the next receive on this handle, or that receive raises ``BufferError``; copy
        (``batch.copy()``) what you keep. A batch stops at the ring's wrap, so it may hold fewer
        records than are available."""
        return self._recv_batch(max_count, block, timeout)


class TypedQueue(_TypedChannel[SharedMemoryQueue]):
    """A many-producer many-consumer queue of records of one schema (each record goes to exactly
    one consumer). Records from :meth:`recv` and batches from :meth:`recv_batch` are views of
    their slots: a slot is held until the record (or batch) and every array taken from it are
    gone (no ordering constraint between them)."""

    _kind = "queue"
    _release_on_next = False

    @classmethod
    def _create_bytes(cls, path: str | os.PathLike[str], capacity: int, schema_json: str, mode: int) -> SharedMemoryQueue:
        return SharedMemoryQueue.open(create_queue_with_schema(path, capacity, schema_json, mode=mode))

    @classmethod
    def _open_bytes(cls, path: str | os.PathLike[str], allow_foreign_owner: bool) -> SharedMemoryQueue:
        return SharedMemoryQueue.open(path, allow_foreign_owner=allow_foreign_owner)

    @property
    def queue(self) -> SharedMemoryQueue:
        """The underlying byte queue."""
        return self._bytes

    def _put(self, data: memoryview, block: bool, timeout: float | None) -> bool:
        return self._bytes.put(data, block=block, timeout=timeout)

    def _put_batch(self, rows: Iterable[memoryview], block: bool, timeout: float | None) -> int:
        return self._bytes.put_batch(rows, block=block, timeout=timeout)

    def _next_view(self, block: bool, timeout: float | None) -> memoryview | None:
        views = self._bytes.get_view(block=block, timeout=timeout, max_count=1)
        return views[0] if views else None

    def _fixed_batch(self, max_count: int, size: int, block: bool, timeout: float | None) -> tuple[memoryview, int, int] | None:
        return self._bytes.get_fixed_batch(max_count, size, block=block, timeout=timeout)

    def recv_batch(self, max_count: int, block: bool = True, timeout: float | None = None) -> npt.NDArray[Any]:
        """Up to `max_count` fixed-size records as **one structured array over the queue's
        slots** (no copy): ``batch["price"].mean()`` reads the shared memory directly. Waits
        (with ``block``, the default of every typed receive, up to `timeout`) for the first
        record; ``block=False`` returns at once. An empty array means nothing arrived.

        The array is read-only and **holds its slots** until it and every array made from it
        (``batch["price"]``, slices, views) are gone: producers do not reuse them before, and
        since space is reclaimed in ring order a batch kept for long holds back the space after
        it too. Drop it (``del batch``) when done, copy (``batch.copy()``) what you keep. Unlike
        a ring batch, a queue batch may be kept while you receive more.

        A batch is the run of records that lie at equal distances in the queue: it stops at the
        ring's wrap, so it may hold fewer records than are waiting (the rest come with the next
        call). Records go to exactly one consumer, batch or not. Raises ``TypeError`` for a
        schema with variable-size fields (use :meth:`recv`), and
        :class:`mmapipc.CorruptMessage` (after discarding it) for a message that is not a
        record of the channel's size."""
        return self._recv_batch(max_count, block, timeout)


class Loan:
    """A slot reserved in a typed ring, with one array inside it to fill before :meth:`commit`.

    ``loan.array`` is an ndarray over the slot (e.g. a frame's pixels; ``loan.image(...)`` shapes
    it as (height, width, channels)): ``np.copyto`` into it, or generate straight into it. Arrays
    made from it must be gone when you call :meth:`commit` (``del`` them), or it raises
    ``BufferError``: a published message must not change under its reader.
    """

    def __init__(
        self, ring: SharedMemoryRing, array: npt.NDArray[Any], header: Mapping[str, Any] | None = None, what: str = "pixels"
    ) -> None:
        self._ring = ring
        self._array: npt.NDArray[Any] | None = array
        self._header = dict(header or {})
        self._what = what

    @property
    def array(self) -> npt.NDArray[Any]:
        """The array inside the slot."""
        if self._array is None:
            raise ValueError("this loan was committed or aborted")
        return self._array

    def image(
        self,
        *,
        height: Dim = "height",
        width: Dim = "width",
        channels: Dim | None = 3,
        stride: Dim | None = None,
    ) -> npt.NDArray[Any]:
        """:attr:`array` as a writable ``(height, width, channels)`` ndarray over the slot, the
        writer's side of :meth:`mmapipc.schema.Record.image`: sizes are numbers or names of the
        header fields given to :meth:`TypedRing.loan`, `stride` is in bytes (None: packed
        rows), and sizes that do not fit the loaned array raise ``ValueError``::

            loan = ring.loan("pixels", stride * h, header)
            np.copyto(loan.image(stride="stride"), frame)   # frame: (h, w, 3) uint8
            loan.commit()
        """

        def lookup(name: str) -> Any:
            try:
                return self._header[name]
            except KeyError:
                raise KeyError(f"{name!r} is not a header field of this loan; given: {', '.join(self._header)}") from None

        dims = _resolve_dims(f"the header of this {self._what} loan", lookup, height, width, channels, stride)
        return image_view(self.array, *dims, what=self._what)

    def commit(self) -> None:
        """Publishes the record."""
        self._array = None
        self._ring.commit()

    def abort(self) -> None:
        """Drops the slot; nothing is published."""
        self._array = None
        self._ring.abort()


def _open_schemas(path: str | os.PathLike[str], kind: str, schema: SchemaLike | Any | None, allow_foreign_owner: bool) -> tuple[Schema, Schema | None]:
    """The channel's schema from its header, and the reader's (checked against it) if given."""
    text = channel_schema(path, kind, allow_foreign_owner=allow_foreign_owner)
    if text is None:
        byte_class = {"ring": "SharedMemoryRing", "queue": "SharedMemoryQueue"}.get(kind, "SharedMemoryTopic")
        raise Error(f"{os.fspath(path)}: untyped {kind} (no schema in its header); use {byte_class}")
    channel = Schema.from_json(text)
    if schema is None:
        return channel, None
    reader = as_schema(schema)
    channel.check_reader(reader)
    return channel, reader


def _check_writer(channel: Schema, reader: Schema) -> None:
    """Only a handle of the channel's own version may write (an older reader reads a prefix)."""
    if reader.version != channel.version:
        raise Error(f"this handle is typed {reader.label}; only a v{channel.version} producer may write this channel")


# The typed topic (its own module, over _TypedChannel above).
from ._typed_topic import TypedSubscription, TypedTopic  # noqa: E402
