"""One archived message, in place: :class:`Record` reads a typed channel's message (or any
buffer holding one) field by field without copying, and :func:`image_view` shapes a flat pixel
array as an image. Both are re-exported here from where they live: :class:`Record` beside the
:class:`mmapipc.schema.Schema` whose ``decode`` makes it and that it is read with, the image
helpers in ``mmapipc._image``.
"""

from __future__ import annotations

from ._image import Dim, image_view
from .schema import Record

__all__ = ["Record", "image_view", "Dim"]
