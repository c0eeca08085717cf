"""NumPy dtypes for archived layouts: a schema's type descriptions (FORMAT.md, "Schema blob") as
little-endian structured dtypes with the schema's exact offsets and sizes.

Works on the JSON type descriptions alone (``{"kind": "scalar", "scalar": "f64"}``, ...), so
:mod:`mmapipc.schema` (the model and the record reader) and the image helpers can use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["TypeDesc", "scalar_dtype", "field_dtype", "struct_dtype"]

TypeDesc = Mapping[str, Any]
"""A field's type description, as the schema JSON gives it."""

_SCALARS: dict[str, str] = {
    "u8": "u1",
    "u16": "<u2",
    "u32": "<u4",
    "u64": "<u8",
    "i8": "i1",
    "i16": "<i2",
    "i32": "<i4",
    "i64": "<i8",
    "f32": "<f4",
    "f64": "<f8",
    "bool": "?",
}


#: ``struct`` codes of the same scalars (little-endian with ``<``: no implicit padding).
STRUCT_CODES: dict[str, str] = {
    "u8": "B",
    "u16": "H",
    "u32": "I",
    "u64": "Q",
    "i8": "b",
    "i16": "h",
    "i32": "i",
    "i64": "q",
    "f32": "f",
    "f64": "d",
    "bool": "?",
}


def scalar_dtype(name: str) -> str:
    """The NumPy type string of a schema scalar (``"f64"`` -> ``"<f8"``)."""
    try:
        return _SCALARS[name]
    except KeyError:
        raise ValueError(f"unknown scalar type {name!r}") from None


def field_dtype(ty: TypeDesc) -> Any:
    """The dtype spec of one field: a scalar's type string, ``(elem, (len,))`` for an array, an
    ``{offset: int32, len: uint32}`` pair for a ``Vec`` (its elements live elsewhere), 8 raw bytes
    for a ``String``, a structured dtype for a nested struct."""
    kind = ty["kind"]
    if kind == "scalar":
        return scalar_dtype(str(ty["scalar"]))
    if kind == "array":
        return (field_dtype(ty["elem"]), (int(ty["len"]),))
    if kind == "vec":
        return [("offset", "<i4"), ("len", "<u4")]
    if kind == "string":
        return "V8"
    if kind == "struct":
        return struct_dtype(((str(f["name"]), f["type"], int(f["offset"])) for f in ty["fields"]), int(ty["size"]))
    raise ValueError(f"unknown type kind {kind!r}")


def struct_dtype(fields: Iterable[tuple[str, TypeDesc, int]], size: int) -> np.dtype[Any]:
    """A structured dtype of `size` bytes with each ``(name, type, offset)`` field at its offset."""
    import numpy as np

    names: list[str] = []
    formats: list[Any] = []
    offsets: list[int] = []
    for name, ty, offset in fields:
        names.append(name)
        formats.append(field_dtype(ty))
        offsets.append(offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})
