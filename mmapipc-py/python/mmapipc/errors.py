"""The exceptions mmapipc raises for its own conditions.

Standard conditions use the standard exceptions: a missing file is ``FileNotFoundError``, a
taken path on ``create`` is ``FileExistsError``, bad arguments are ``ValueError``/``TypeError``,
out-of-range offsets ``IndexError``. Everything specific to mmapipc derives from :class:`Error`.
A timeout is not an exception: blocking calls return ``False``, ``None`` or a short count.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "CorruptHeader",
    "NotReady",
    "IncompatibleLayout",
    "SchemaMismatch",
    "AlreadyAttached",
    "CorruptMessage",
    "BufferTooShort",
]


class Error(Exception):
    """Base class of every mmapipc-specific error."""


class CorruptHeader(Error):
    """The file is not a valid mmapipc file: empty, truncated, bad magic or inconsistent header,
    or a ring's or queue's shared state (positions, record framing) is inconsistent."""


class NotReady(Error):
    """The file's creator has not finished initialising it (or died while doing so)."""


class IncompatibleLayout(Error):
    """The file is valid but not usable here: other layout version, ABI, or kind of object."""


class SchemaMismatch(IncompatibleLayout):
    """A typed channel holds messages of a different schema than the one asked for."""


class CorruptMessage(Error):
    """A message in shared memory failed validation (bad lengths, offsets or bytes), or a
    fixed-size batch met a message of another size (taken and discarded)."""


class AlreadyAttached(Error):
    """A ring role is in use: another handle, thread or live process is producing (or consuming) right now."""


class BufferTooShort(Error, ValueError):
    """``read_into``/``get_into``: the message is larger than the buffer given.

    As with :meth:`multiprocessing.connection.Connection.recv_bytes_into`, the message is not
    lost: it has been taken from the channel and is ``args[0]`` (``bytes``).
    """
