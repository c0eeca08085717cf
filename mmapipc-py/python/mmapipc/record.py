"""One archived message, in place: :class:`Record` reads a typed channel's message (or any
buffer holding one) field by field without copying, and :func:`image_view` shapes a flat pixel
array as an image.

The bytes are those of FORMAT.md, "Typed payload": the root struct is the **last** ``size``
bytes of a message (of the *channel's* size, which may be larger than the reader's when the
channel carries a newer version that appended fields). ``Vec`` fields hold a relative pointer
(``int32``, from the field's own address) and a length (``uint32``); their elements live earlier
in the same message. ``String`` fields are rkyv's 8-byte repr, inline or out of line. Every
pointer is bounds-checked against the message before an array is made: a corrupt offset raises
:class:`mmapipc.CorruptMessage`, it never reads outside the message. The Rust reader of the same
bytes, for ``mmapipc tail``, is ``mmapipc::typed::decode``.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Callable, Union

from ._dtype import field_dtype, scalar_dtype
from .errors import CorruptMessage

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import numpy.typing as npt

    from .schema import Field, Schema

__all__ = ["Record", "image_view", "Dim"]

Dim = Union[int, str]
"""An image dimension for :meth:`Record.image`: a number, or the name of an integer field that
holds it (e.g. ``"height"``)."""


def image_view(
    pixels: npt.NDArray[Any],
    height: int,
    width: int,
    channels: int | None = 3,
    stride: int | None = None,
    *,
    what: str = "pixels",
) -> npt.NDArray[Any]:
    """A ``(height, width, channels)`` ndarray over the flat, contiguous array `pixels`, without
    copying: row ``y`` starts ``y * stride`` **bytes** into `pixels` (``stride=None``: rows are
    packed, ``width * channels * itemsize`` bytes apart; a larger stride gives a strided view
    that skips each row's padding). ``channels=None`` gives a 2-D ``(height, width)`` view.

    The geometry is checked against the array before any view is made: negative sizes, a stride
    shorter than a row (or not a multiple of the element size), or rows that would reach past
    the end of `pixels` raise ``ValueError`` (naming `what`), so a corrupt header can never make
    the view read outside the array. The view is writable exactly when `pixels` is, and keeps
    `pixels` (and so the slot) alive.
    """
    import numpy as np

    flat = pixels.reshape(-1) if pixels.ndim != 1 else pixels
    if flat.dtype.fields is not None or not flat.flags.c_contiguous:
        raise TypeError(f"{what}: an image needs a contiguous array of scalars, got {pixels.dtype} {pixels.shape}")
    item = flat.dtype.itemsize
    c = 1 if channels is None else channels
    if height < 0 or width < 0 or c < 1:
        raise ValueError(f"{what}: invalid image size {height}x{width}x{c}")
    row = width * c * item
    step = row if stride is None else stride
    if step < row:
        raise ValueError(f"{what}: row stride {step} B is shorter than a row of {width}x{c} {flat.dtype} ({row} B)")
    if step % item:
        raise ValueError(f"{what}: row stride {step} B is not a multiple of the {item}-byte {flat.dtype} elements")
    need = (height - 1) * step + row if height and row else 0
    if need > flat.nbytes:
        raise ValueError(
            f"{what}: a {height}x{width}x{c} image with a row stride of {step} B needs {need} B, "
            f"the array has {flat.nbytes} B"
        )
    shape: tuple[int, ...] = (height, width) if channels is None else (height, width, c)
    strides: tuple[int, ...] = (step, item) if channels is None else (step, c * item, item)
    # NumPy re-checks the extent against the buffer; the view's base keeps `flat` alive.
    return np.ndarray(shape=shape, dtype=flat.dtype, buffer=flat, offset=0, strides=strides)


def _resolve_dims(
    owner: str, lookup: Callable[[str], Any], height: Dim, width: Dim, channels: Dim | None, stride: Dim | None
) -> tuple[int, int, int | None, int | None]:
    """Image sizes given as numbers or field names, as ints (`lookup(name)` reads a field)."""

    def one(label: str, v: Dim) -> int:
        value = lookup(v) if isinstance(v, str) else v
        try:
            return operator.index(value)
        except TypeError:
            where = f"{owner}: field {v!r} ({label})" if isinstance(v, str) else label
            raise TypeError(f"{where} is not an integer: {value!r}") from None

    return (
        one("height", height),
        one("width", width),
        None if channels is None else one("channels", channels),
        None if stride is None else one("stride", stride),
    )


class Record:
    """One archived message, read in place.

    ``rec["price"]`` (or ``rec.price``) returns a NumPy scalar for scalar fields, an ``ndarray``
    over the message for fixed arrays and ``Vec`` fields, ``str`` for ``String`` fields, and a
    nested :class:`Record` for nested structs. Nothing is copied except strings.
    """

    __slots__ = ("_schema", "_buf", "_root", "_np")

    def __init__(self, schema: Schema, message: Any, root_size: int | None = None, _root: int | None = None) -> None:
        import numpy as np

        self._np = np
        self._schema = schema
        self._buf = np.frombuffer(message, dtype=np.uint8)
        size = schema.size if root_size is None else int(root_size)
        if _root is None:
            if size < schema.size:
                raise CorruptMessage(f"root size {size} is smaller than {schema.label}'s {schema.size} bytes")
            _root = len(self._buf) - size
            if _root < 0:
                raise CorruptMessage(f"message of {len(self._buf)} bytes is shorter than its root struct ({size} bytes)")
        self._root = _root

    @property
    def schema(self) -> Schema:
        """The schema this record is read with."""
        return self._schema

    @property
    def buffer(self) -> npt.NDArray[np.uint8]:
        """The message bytes (a view)."""
        return self._buf

    def _field_at(self, f: Field) -> int:
        return self._root + f.offset

    def _rel(self, at: int, elem_size: int, count: int, base: int | None = None) -> int:
        """Resolves the relative pointer stored at `at` (relative to `base`, default `at`) to
        `count` elements of `elem_size` bytes, bounds-checked against the message."""
        np = self._np
        rel = int(self._buf[at : at + 4].view(np.dtype("<i4"))[0])
        start = (at if base is None else base) + rel
        end = start + elem_size * count
        if start < 0 or end > len(self._buf) or count < 0:
            raise CorruptMessage(
                f"{self._schema.name}: relative pointer at byte {at} points to {start}..{end}, outside the {len(self._buf)}-byte message"
            )
        return start

    def get(self, name: str) -> Any:
        """The value of field `name` (see the class docs)."""
        if self._buf is None:
            raise ValueError(f"{self._schema.name} record was released (records from recv() are valid until the next receive)")
        return self._value(self._schema.field(name))

    def image(
        self,
        field: str,
        *,
        height: Dim = "height",
        width: Dim = "width",
        channels: Dim | None = 3,
        stride: Dim | None = None,
    ) -> npt.NDArray[Any]:
        """Field `field` (a ``Vec`` or fixed array of scalars, e.g. a frame's ``pixels``) as a
        ``(height, width, channels)`` ndarray over the message, without copying.

        Each size is a number or the name of an integer field of this record holding it
        (defaults: the fields ``height`` and ``width``, 3 channels). `stride` is the distance
        between rows in **bytes** (a field name such as ``"stride"``, a number, or None for
        packed rows); when it is larger than a row the result is a strided view that skips the
        padding. ``channels=None`` gives ``(height, width)``. Sizes that would reach past the
        array (a corrupt header) raise ``ValueError``; nothing outside the message is ever read.
        See :func:`image_view`::

            rgb = rec.image("pixels", stride="stride")     # (h, w, 3) uint8, in place
        """
        f = self._schema.field(field)
        if f.kind not in ("vec", "array"):
            raise TypeError(f"{self._schema.name}.{field} is {f.type_name}, not an array")
        pixels = self.get(field)
        dims = _resolve_dims(self._schema.name, self.get, height, width, channels, stride)
        return image_view(pixels, *dims, what=f"{self._schema.name}.{field}")

    def release(self) -> None:
        """Drops this record's reference to the message memory; later access raises ValueError.
        Arrays already taken from it keep the memory exported until they are gone."""
        self._buf = None  # type: ignore[assignment]

    def _value(self, f: Field) -> Any:
        # The byte layout read here (root at the end, relative pointers, String repr):
        # FORMAT.md, "Typed payload".
        np = self._np
        at = self._field_at(f)
        ty = f.type
        kind = ty["kind"]
        if kind == "scalar":
            return self._buf[at : at + f.size].view(np.dtype(scalar_dtype(str(ty["scalar"]))))[0]
        if kind == "array":
            dt = np.dtype(field_dtype(ty))
            return self._buf[at : at + f.size].view(dt.base).reshape(dt.shape)
        if kind == "vec":
            count = int(self._buf[at + 4 : at + 8].view(np.dtype("<u4"))[0])
            elem = np.dtype(field_dtype(ty["elem"]))
            start = self._rel(at, elem.itemsize, count)
            if start % elem.alignment:
                raise CorruptMessage(f"{self._schema.name}.{f.name}: misaligned array at byte {start}")
            return self._buf[start : start + elem.itemsize * count].view(elem)
        if kind == "string":
            raw = self._buf[at : at + 8]
            if raw[0] & 0xC0 != 0x80:  # inline: up to 8 bytes, 0xff-terminated
                data = bytes(raw)
                end = data.find(b"\xff")
                text = data if end < 0 else data[:end]
            else:
                enc = int(raw[:4].view(np.dtype("<u4"))[0])
                length = (enc & 0x3F) | ((enc & ~0xFF) >> 2)
                # Out of line: length word, then an offset relative to the start of the repr.
                start = self._rel(at + 4, 1, length, base=at)
                text = bytes(self._buf[start : start + length])
            try:
                return text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorruptMessage(f"{self._schema.name}.{f.name}: invalid UTF-8") from e
        if kind == "struct":
            nested = self._schema._nested(f, fixed_size=False)
            return Record(nested, self._buf, _root=at)
        raise CorruptMessage(f"unknown field kind {kind!r}")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.get(name)
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def to_dict(self) -> dict[str, Any]:
        """All fields as Python values (arrays stay ndarrays)."""
        out: dict[str, Any] = {}
        if self._buf is None:
            raise ValueError(f"{self._schema.name} record was released")
        for f in self._schema.fields:
            v = self._value(f)
            out[f.name] = v.to_dict() if isinstance(v, Record) else v
        return out

    def __repr__(self) -> str:
        if self._buf is None:
            return f"Record({self._schema.name}, released)"
        return f"Record({self._schema.name}, {self.to_dict()!r})"
