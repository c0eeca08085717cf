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

:class:`TypedRing` and :class:`TypedQueue` share one implementation (``_TypedChannel`` in
``mmapipc._typed_base``: open with the schema check, create with the schema in the header, send,
receive, batches) and supply only their byte channel's calls. The message bytes they write and
read are FORMAT.md, "Typed payload" (written by :meth:`Schema.encode`, read by
:class:`mmapipc.record.Record`).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Mapping

from ._dtype import STRUCT_CODES, field_dtype
from ._image import Dim, _resolve_dims, image_view
from ._mmapipc import SharedMemoryQueue, SharedMemoryRing, create_queue_with_schema, create_ring_with_schema
from ._typed_base import SchemaLike, _ByteCalls, _check_writer, _TypedChannel
from ._typed_topic import TypedSubscription, TypedTopic
from .schema import VEC, Field, Schema

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt

__all__ = ["TypedRing", "TypedQueue", "TypedTopic", "TypedSubscription", "Loan", "SchemaLike"]


class TypedRing(_TypedChannel[SharedMemoryRing]):
    """A single-producer single-consumer ring of records of one schema. A record from
    :meth:`recv` is valid until the next receive on this handle (see the module docs); a batch
    from :meth:`recv_batch` must be gone before the next receive."""

    _kind = "ring"
    _release_on_next = True
    _calls = _ByteCalls(SharedMemoryRing, create_ring_with_schema, "write", "write_batch", "read_view", "read_fixed_batch")

    def __init__(self, inner: SharedMemoryRing, channel: Schema, reader: Schema | None = None) -> None:
        super().__init__(inner, channel, reader)
        self._loan_plans: dict[str, _LoanPlan] = {}

    @property
    def ring(self) -> SharedMemoryRing:
        """The underlying byte ring."""
        return self._bytes

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
        plan = self._loan_plans.get(field) or self._loan_plan(field)
        f, elem = plan.field, plan.elem
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        vals = {**values, **fields} if values else fields
        array_bytes = (count * elem.itemsize + 7) & ~7
        # The record: the array (which starts the slot), then the root struct, whose Vec field
        # (FORMAT.md, "Typed payload": relative pointer, then count) points back at the array.
        header: Any = plan.header(vals, array_bytes + f.offset, count) if vals.keys() == plan.names else None
        if header is None:  # other kinds of fields, or names to report: the general encoder
            header = self._channel.encode({**vals, field: np.empty(0, elem)})
            field_at = array_bytes + header.size - self._channel.size + f.offset
            header[field_at - array_bytes : field_at - array_bytes + 8] = np.frombuffer(
                VEC.pack(-field_at, count), np.uint8
            )
        view = self._bytes.loan(array_bytes + len(header), block=block, timeout=timeout)
        if view is None:
            return None
        view[array_bytes:] = header
        array = np.frombuffer(view, dtype=np.uint8, count=count * elem.itemsize).view(elem)
        return Loan(self._bytes, array, vals, plan.what)

    def _loan_plan(self, field: str) -> _LoanPlan:
        """What :meth:`loan` works out once per field: checks it is a Vec."""
        f = self._channel.field(field)
        if f.kind != "vec":
            raise TypeError(f"{self._channel.name}.{field} is {f.type_name}, not a Vec")
        plan = self._loan_plans[field] = _LoanPlan(self._channel, f)
        return plan

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
    _calls = _ByteCalls(SharedMemoryQueue, create_queue_with_schema, "put", "put_batch", None, "get_fixed_batch")

    @property
    def queue(self) -> SharedMemoryQueue:
        """The underlying byte queue."""
        return self._bytes

    def _next_view(self, block: bool, timeout: float | None) -> memoryview | None:
        views = self._bytes.get_view(block=block, timeout=timeout, max_count=1)
        return views[0] if views else None

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


class _LoanPlan:
    """A loan's fixed part for one ``Vec`` field of a schema: the field, its element type, the
    names of the other fields, and, when those are all scalars, a ``struct`` layout of the whole
    root struct (the Vec's relative pointer and count included) that :meth:`header` packs in
    one call instead of running the general :meth:`Schema.encode` for every record."""

    __slots__ = ("field", "elem", "names", "what", "_root", "_order")

    def __init__(self, schema: Schema, f: Field) -> None:
        import numpy as np

        self.field = f
        self.elem = np.dtype(field_dtype(f.type["elem"]))
        self.names = frozenset(g.name for g in schema.fields if g.name != f.name)
        self.what = f"{schema.name}.{f.name}"
        self._root: struct.Struct | None = None
        self._order: list[str | None] = []  # field names in offset order; None: the Vec
        fmt, at = "<", 0
        for g in sorted(schema.fields, key=lambda g: g.offset):
            code = VEC.format[1:] if g is f else STRUCT_CODES.get(str(g.type.get("scalar"))) if g.kind == "scalar" else None
            if code is None or g.offset < at:
                return  # another kind of field: the general encoder
            fmt += "x" * (g.offset - at) + code
            self._order.append(None if g is f else g.name)
            at = g.offset + g.size
        fmt += "x" * (schema.size - at)
        if struct.calcsize(fmt) == schema.size:
            self._root = struct.Struct(fmt)

    def header(self, vals: Mapping[str, Any], field_at: int, count: int) -> bytes | None:
        """The root struct of a record with `vals` (every other field, by name) whose Vec lies
        `field_at` bytes before the Vec field's own position and holds `count` elements; None
        when the general encoder must do it (other field kinds, or a value it should report)."""
        if self._root is None:
            return None
        try:
            return self._root.pack(*_args(self._order, vals, field_at, count))
        except struct.error:
            return None  # the general encoder raises the error naming the field


def _args(order: list[str | None], vals: Mapping[str, Any], field_at: int, count: int) -> list[Any]:
    """The values to pack for `order`: each field's, and the Vec's pointer and count."""
    out: list[Any] = []
    for n in order:
        if n is None:
            out += (-field_at, count)
        else:
            out.append(vals[n])
    return out


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
