"""mmapipc: zero-copy inter-process messaging over memory-mapped files.

>>> from mmapipc import SharedMemory, SharedMemoryRing
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._mmapipc import (
    LAYOUT_VERSION,
    SharedBuffer,
    SharedMemory,
    SharedMemoryQueue,
    SharedMemoryRing,
    SharedMemoryTopic,
    TopicSubscriber,
)
from ._aio import install as _install_aio
from ._views import ViewBatch
from .errors import (
    AlreadyAttached,
    BufferTooShort,
    CorruptHeader,
    CorruptMessage,
    Error,
    IncompatibleLayout,
    NotReady,
    SchemaMismatch,
)

_install_aio()

try:
    __version__ = version("mmapipc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "LAYOUT_VERSION",
    "SharedBuffer",
    "SharedMemory",
    "SharedMemoryRing",
    "SharedMemoryQueue",
    "SharedMemoryTopic",
    "TopicSubscriber",
    "ViewBatch",
    "Error",
    "CorruptHeader",
    "CorruptMessage",
    "NotReady",
    "IncompatibleLayout",
    "SchemaMismatch",
    "AlreadyAttached",
    "BufferTooShort",
]
