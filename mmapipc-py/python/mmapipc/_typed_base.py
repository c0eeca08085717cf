"""The typed channels' shared base: :class:`_TypedChannel` (open with the schema check, create
with the schema in the header, send, receive, batches) that :class:`mmapipc.typed.TypedRing`,
:class:`mmapipc.typed.TypedQueue` and the typed topic's classes (``_typed_topic``) build on, and
the schema argument they all take (:data:`SchemaLike`, :func:`as_schema`)."""

from __future__ import annotations

import os
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Generic, Iterable, Mapping, NamedTuple, TypeVar, Union, cast

from . import _aio
from ._mmapipc import SharedMemoryQueue, SharedMemoryRing, SharedMemoryTopic, TopicSubscriber, channel_schema
from .errors import Error
from .schema import Record, Schema

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import numpy.typing as npt

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


class _ByteCalls(NamedTuple):
    """A typed channel's byte channel, as the calls :class:`_TypedChannel` makes on it: the
    class (``open``), the function that creates a file with a schema in its header, and the
    names of its send, batch send, in-place receive and fixed-batch receive methods (None: the
    typed class supplies that call itself)."""

    cls: Any
    create_with_schema: Callable[..., Any] | None
    send: str | None
    send_batch: str | None
    recv_view: str | None
    recv_fixed_batch: str | None


_B = TypeVar("_B", SharedMemoryRing, SharedMemoryQueue, SharedMemoryTopic, TopicSubscriber)
_C = TypeVar("_C", bound="_TypedChannel[Any]")


class _TypedChannel(Generic[_B]):
    """What a typed ring and a typed queue share: a byte channel `_B` whose header carries the
    channel's schema, and the reader's schema (the channel's, or an older version of it). The
    subclasses name their byte channel's calls in ``_calls``; a call named None there is the
    subclass's own method (``_create_bytes`` ... ``_fixed_batch``)."""

    _kind: ClassVar[str]
    """``"ring"`` or ``"queue"``: the file kind, as ``channel_schema`` names it."""
    _release_on_next: ClassVar[bool]
    """True when the next receive may reuse a record's slot (a ring): the record is released then."""
    _calls: ClassVar[_ByteCalls]

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
        create = cls._calls.create_with_schema
        assert create is not None
        return cast(_B, cls._calls.cls.open(create(path, capacity, schema_json, mode=mode)))

    @classmethod
    def _open_bytes(cls, path: str | os.PathLike[str], allow_foreign_owner: bool) -> _B:
        """Opens the byte channel."""
        return cast(_B, cls._calls.cls.open(path, allow_foreign_owner=allow_foreign_owner))

    def _call(self, name: str | None, *args: Any, block: bool, timeout: float | None) -> Any:
        """The byte channel's method `name` (from ``_calls``) with `args`, `block` and `timeout`."""
        assert name is not None, "the subclass supplies this call"
        return getattr(self._bytes, name)(*args, block=block, timeout=timeout)

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
        return bool(self._call(self._calls.send, data, block=block, timeout=timeout))

    def _put_batch(self, rows: Iterable[memoryview], block: bool, timeout: float | None) -> int:
        """Writes messages of one size; returns how many."""
        return int(self._call(self._calls.send_batch, rows, block=block, timeout=timeout))

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
        return cast("memoryview | None", self._call(self._calls.recv_view, block=block, timeout=timeout))

    def _fixed_batch(self, max_count: int, size: int, block: bool, timeout: float | None) -> tuple[memoryview, int, int] | None:
        """Up to `max_count` messages of `size` bytes at equal distances: (view, count, stride)."""
        got = self._call(self._calls.recv_fixed_batch, max_count, size, block=block, timeout=timeout)
        return cast("tuple[memoryview, int, int] | None", got)

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
