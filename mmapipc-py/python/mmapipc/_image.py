"""Image views over flat pixel arrays: :func:`image_view` shapes a contiguous array as a
``(height, width, channels)`` ndarray without copying, and :data:`Dim` names a size as a number or
an integer field; :meth:`mmapipc.schema.Record.image` (reader) and :meth:`mmapipc.typed.Loan.image`
(writer) use them."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt

__all__ = ["image_view", "Dim"]

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
