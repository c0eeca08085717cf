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
:meth:`Schema.encode`; the NumPy dtypes are built in ``mmapipc._dtype``, and records are read by
:class:`Record` (:mod:`mmapipc.record`, re-exported here with :func:`image_view` and
:data:`Dim`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Union

from ._dtype import TypeDesc, field_dtype, struct_dtype
from ._mmapipc import schema_canonical, schema_check_reader, schema_fingerprint, schema_verify
from .record import Dim, Record, image_view

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
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}; fields: {', '.join(f.name for f in self.fields)}")

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


def _fields(raw: Iterable[Mapping[str, Any]]) -> tuple[Field, ...]:
    """Fields from their JSON objects."""
    return tuple(Field(str(f["name"]), f["type"], int(f["offset"]), int(f["size"])) for f in raw)
