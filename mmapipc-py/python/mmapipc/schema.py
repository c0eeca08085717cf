"""Message schemas in Python: read a schema (from a channel header or a ``schemas/*.json`` file),
turn it into a NumPy structured dtype, encode records, and decode them in place.

The JSON format is the one the Rust crate writes (``mmapipc::typed::schema::Schema``; FORMAT.md,
"Schema blob")::

    {"name": "market.Tick", "version": 1, "size": 32, "align": 8, "fixed_size": true,
     "format": {"endian": "little", "primitive_align": 8, "pointer_width": 4},
     "fingerprint": "0x...", "fields": [{"name": "price", "type": {"kind": "scalar", "scalar": "f64"},
     "offset": 16, "size": 8}, ...]}

The fingerprint, the canonical text and the compatibility rules are the Rust crate's, called
through ``mmapipc._mmapipc``. This module holds the model (:class:`Schema`, :class:`Field`) and
:meth:`Schema.encode`, and :class:`Record`, which reads one message in place (:meth:`Schema.decode`;
also :mod:`mmapipc.record`). The NumPy dtypes are built in ``mmapipc._dtype``, the image views
(:func:`image_view`, :data:`Dim`, re-exported here) in ``mmapipc._image``.

The bytes a :class:`Record` reads are those of FORMAT.md, "Typed payload": the root struct is the
**last** ``size`` bytes of a message (of the *channel's* size, which may be larger than the
reader's when the channel carries a newer version that appended fields). ``Vec`` fields hold a
relative pointer (``int32``, from the field's own address) and a length (``uint32``); their
elements live earlier in the same message. ``String`` fields are rkyv's 8-byte repr, inline or out
of line. Every pointer is bounds-checked against the message before an array is made: a corrupt
offset raises :class:`mmapipc.CorruptMessage`, it never reads outside the message. The Rust reader
of the same bytes, for ``mmapipc tail``, is ``mmapipc::typed::decode``.
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Union

from ._dtype import TypeDesc, field_dtype, scalar_dtype, struct_dtype
from ._image import Dim, _resolve_dims, image_view
from ._mmapipc import schema_canonical, schema_check_reader, schema_fingerprint, schema_verify
from .errors import CorruptMessage

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import numpy.typing as npt

__all__ = ["Field", "Schema", "Record", "image_view", "Dim"]


def type_name(ty: TypeDesc) -> str:
    """Rust spelling of a type description: ``f64``, ``[u8; 8]``, ``Vec<f32>``, ``String``, a struct name."""
    kind = ty["kind"]
    if kind == "scalar":
        return str(ty["scalar"])
    if kind == "array":
        return f"[{type_name(ty['elem'])}; {ty['len']}]"
    if kind == "vec":
        return f"Vec<{type_name(ty['elem'])}>"
    if kind == "string":
        return "String"
    if kind == "struct":
        return str(ty["name"])
    raise ValueError(f"unknown type kind {kind!r}")


@dataclass(frozen=True)
class Field:
    """One field of an archived struct."""

    name: str
    type: TypeDesc
    offset: int
    size: int

    @property
    def type_name(self) -> str:
        """The Rust spelling of the field's type."""
        return type_name(self.type)

    @property
    def kind(self) -> str:
        """``scalar``, ``array``, ``vec``, ``string`` or ``struct``."""
        return str(self.type["kind"])


@dataclass(frozen=True)
class Schema:
    """A message schema: name, version, fingerprint and the archived layout of its fields."""

    name: str
    version: int
    size: int
    align: int
    fixed_size: bool
    fingerprint: str
    fields: tuple[Field, ...]
    format: Mapping[str, Any] = field(default_factory=dict)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """Builds a schema from its JSON object, checking the fingerprint against the layout."""
        try:
            fields = _fields(d["fields"])
            schema = cls(
                name=str(d["name"]),
                version=int(d["version"]),
                size=int(d["size"]),
                align=int(d["align"]),
                fixed_size=bool(d["fixed_size"]),
                fingerprint=str(d["fingerprint"]),
                fields=fields,
                format=dict(d["format"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a valid mmapipc schema: {e!r}") from e
        schema_verify(schema.to_json())
        return schema

    @classmethod
    def from_json(cls, text: Union[str, bytes]) -> Schema:
        """Parses a schema from JSON text."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_file(cls, path: str) -> Schema:
        """Reads a ``schemas/*.json`` file."""
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (same field order as the Rust crate writes)."""
        return {
            "name": self.name,
            "version": self.version,
            "size": self.size,
            "align": self.align,
            "fixed_size": self.fixed_size,
            "format": dict(self.format),
            "fingerprint": self.fingerprint,
            "fields": [{"name": f.name, "type": f.type, "offset": f.offset, "size": f.size} for f in self.fields],
        }

    def to_json(self) -> str:
        """The JSON text of :meth:`to_dict` (what a channel header stores)."""
        return json.dumps(self.to_dict())

    def canonical(self) -> str:
        """The canonical text the fingerprint is computed over (FORMAT.md, "Schema blob")."""
        return schema_canonical(self.to_json())

    def computed_fingerprint(self) -> str:
        """Recomputes the fingerprint from the layout."""
        return schema_fingerprint(self.to_json())

    @property
    def label(self) -> str:
        """``name vN (fingerprint)``."""
        return f"{self.name} v{self.version} ({self.fingerprint})"

    def field(self, name: str) -> Field:
        """The field called `name` (``KeyError`` naming the known fields otherwise)."""
        by_name: dict[str, Field] | None = self.__dict__.get("_by_name")
        if by_name is None:
            by_name = {f.name: f for f in self.fields}
            object.__setattr__(self, "_by_name", by_name)  # frozen dataclass: cache by hand
        f = by_name.get(name)
        if f is None:
            raise KeyError(f"{self.name} has no field {name!r}; fields: {', '.join(f.name for f in self.fields)}")
        return f

    # -- compatibility -----------------------------------------------------------------------

    def check_reader(self, reader: Schema) -> None:
        """Raises :class:`mmapipc.SchemaMismatch` unless `reader` may read a channel of `self`.

        The Rust crate's rules and message (``mmapipc::typed::schema::Schema::check_reader``): equal names
        and format; same version needs the same layout; a newer channel version may be read by an
        older reader if it only appended fields.
        """
        schema_check_reader(self.to_json(), reader.to_json())

    # -- NumPy -------------------------------------------------------------------------------

    @property
    def dtype(self) -> np.dtype[Any]:
        """A NumPy structured dtype of the root struct: exact offsets, ``itemsize == size``,
        little-endian. ``Vec`` fields appear as ``{offset: int32, len: uint32}`` pairs (use
        :class:`Record` to get their arrays), ``String`` fields as 8 raw bytes."""
        cached = self.__dict__.get("_dtype")
        if cached is None:
            cached = struct_dtype(((f.name, f.type, f.offset) for f in self.fields), self.size)
            object.__setattr__(self, "_dtype", cached)  # frozen dataclass: cache by hand
        return cached

    def encode(self, values: Mapping[str, Any] | None = None, /, **fields: Any) -> npt.NDArray[np.uint8]:
        """Builds one archived message (a uint8 array) from field values.

        Values come from a mapping, keyword arguments, or a NumPy structured scalar/record of
        :attr:`dtype`. Every field must be given; ``Vec`` fields take any array-like of their
        element type, ``String`` fields a ``str``. Unknown or missing names raise ``TypeError``,
        values of the wrong shape or type raise ``ValueError`` naming the field.
        """
        import numpy as np

        vals: dict[str, Any] = {}
        if values is not None:
            if isinstance(values, np.void) or (isinstance(values, np.ndarray) and values.dtype.names):
                record: Any = values
                vals.update({n: record[n] for n in record.dtype.names or ()})
            else:
                vals.update(values)
        vals.update(fields)
        names = [f.name for f in self.fields]
        unknown = sorted(set(vals) - set(names))
        if unknown:
            raise TypeError(f"{self.name} has no field(s) {', '.join(unknown)}; fields: {', '.join(names)}")
        missing = [n for n in names if n not in vals]
        if missing:
            raise TypeError(f"{self.name}: missing field(s) {', '.join(missing)}")
        fast = self.__dict__.get("_flat")
        if fast is None:
            fast = self.fixed_size and all(f.kind != "struct" for f in self.fields)
            object.__setattr__(self, "_flat", fast)
        if fast:
            # Fixed-size record: the message is exactly the root struct.
            root_only = np.zeros(1, dtype=self.dtype)
            for f in self.fields:
                try:
                    root_only[f.name] = vals[f.name]
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{self.name}.{f.name} ({f.type_name}): cannot store {vals[f.name]!r}: {e}") from e
            return root_only.view(np.uint8)
        # Out-of-line data first (8-aligned), then the root struct, as rkyv lays it out; the
        # relative pointers and String repr written below are FORMAT.md, "Typed payload".
        blobs: list[tuple[Field, Any, int, int]] = []  # field, bytes array, position, count
        pos = 0
        for f in self.fields:
            if f.kind == "vec":
                elem = np.dtype(field_dtype(f.type["elem"]))
                try:
                    arr = np.ascontiguousarray(vals[f.name], dtype=elem).reshape(-1)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{self.name}.{f.name}: expected an array of {elem}, got {type(vals[f.name]).__name__}: {e}") from e
                pos = (pos + 7) & ~7
                blobs.append((f, arr.view(np.uint8), pos, arr.size))
                pos += arr.nbytes
            elif f.kind == "string":
                v = vals[f.name]
                if not isinstance(v, str):
                    raise ValueError(f"{self.name}.{f.name}: expected str, got {type(v).__name__}")
                raw = np.frombuffer(v.encode("utf-8"), dtype=np.uint8)
                if raw.size > 8:
                    blobs.append((f, raw, pos, raw.size))
                    pos += raw.size
        root = (pos + max(self.align, 1) - 1) // max(self.align, 1) * max(self.align, 1)
        out = np.zeros(root + self.size, dtype=np.uint8)
        for f, raw, at, _count in blobs:
            out[at : at + raw.size] = raw
        rec = out[root:].view(self.dtype)
        blob_at = {f.name: (at, count) for f, _raw, at, count in blobs}
        for f in self.fields:
            v = vals[f.name]
            field_at = root + f.offset
            if f.kind == "vec":
                at, count = blob_at[f.name]
                out[field_at : field_at + 4] = np.frombuffer(np.int32(at - field_at).tobytes(), np.uint8)
                out[field_at + 4 : field_at + 8] = np.frombuffer(np.uint32(count).tobytes(), np.uint8)
            elif f.kind == "string":
                raw_b = v.encode("utf-8")
                if len(raw_b) <= 8:
                    inline = raw_b + b"\xff" * (8 - len(raw_b))
                    out[field_at : field_at + 8] = np.frombuffer(inline, np.uint8)
                else:
                    at, count = blob_at[f.name]
                    enc = 0x80 | (count & 0x3F) | ((count & ~0x3F) << 2)
                    out[field_at : field_at + 4] = np.frombuffer(np.uint32(enc).tobytes(), np.uint8)
                    out[field_at + 4 : field_at + 8] = np.frombuffer(np.int32(at - field_at).tobytes(), np.uint8)
            elif f.kind == "struct" and isinstance(v, Mapping):
                nested = self._nested(f, fixed_size=True)
                out[field_at : field_at + f.size] = nested.encode(v)[-f.size :]
            else:
                try:
                    rec[f.name] = v
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{self.name}.{f.name} ({f.type_name}): cannot store {v!r}: {e}") from e
        return out

    def decode(self, message: Any, root_size: int | None = None) -> Record:
        """A :class:`Record` over `message` (any buffer), in place. `root_size` is the channel's
        root size when it carries a newer version than this schema (default: ``self.size``)."""
        return Record(self, message, root_size)

    def _nested(self, f: Field, *, fixed_size: bool) -> Schema:
        """The schema of the nested struct in field `f`: its name and layout, no version or
        fingerprint (a part of this schema, never a channel's)."""
        ty = f.type
        return Schema(str(ty["name"]), 0, int(ty["size"]), int(ty["align"]), fixed_size, "", _fields(ty["fields"]), self.format)


VEC = struct.Struct("<iI")
"""A ``Vec`` field: relative pointer, element count (FORMAT.md, "Typed payload")."""


def _elem_dtype(elem: TypeDesc) -> np.dtype[Any]:
    """The dtype of a ``Vec``'s elements (cached for scalars: read on every ``Vec`` access)."""
    import numpy as np

    if elem.get("kind") == "scalar":
        return _scalar_elem(str(elem["scalar"]))
    dt: np.dtype[Any] = np.dtype(field_dtype(elem))
    return dt


@functools.lru_cache(maxsize=None)
def _scalar_elem(name: str) -> np.dtype[Any]:
    import numpy as np

    return np.dtype(scalar_dtype(name))


def _fields(raw: Iterable[Mapping[str, Any]]) -> tuple[Field, ...]:
    """Fields from their JSON objects."""
    return tuple(Field(str(f["name"]), f["type"], int(f["offset"]), int(f["size"])) for f in raw)


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
            rel, count = VEC.unpack_from(self._buf.data, at)
            elem = _elem_dtype(ty["elem"])
            start = at + rel
            if start < 0 or start + elem.itemsize * count > len(self._buf):
                start = self._rel(at, elem.itemsize, count)  # raises, naming the bounds
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
