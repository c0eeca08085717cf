"""Typed topics (``mmapipc.typed.TypedTopic``): a :class:`SharedMemoryTopic` whose header
carries the record schema; the publisher sends records, each subscription receives them.

A :class:`TypedTopic` publishes (``send``, ``send_batch``) and makes subscriptions
(``subscribe``); a :class:`TypedSubscription` receives (``recv``, ``recv_batch``) with the
typed channels' rules. A record from ``recv``, and a batch from ``recv_batch`` (one structured
NumPy array), lie in the topic's slots for an exclusive subscriber of a block-mode topic (held
until the next receive on that subscription, like a typed ring's), and in a copy otherwise.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable

from ._mmapipc import SharedMemoryTopic, TopicSubscriber, create_topic_with_schema
from .schema import Schema
from ._typed_base import SchemaLike, _ByteCalls, _TypedChannel, as_schema

if TYPE_CHECKING:  # pragma: no cover
    import numpy.typing as npt


class TypedTopic(_TypedChannel[SharedMemoryTopic]):
    """A publish-subscribe topic of records of one schema: every subscription receives every
    record published after it started (within a group: one member each)."""

    _kind = "topic"
    _release_on_next = True
    _calls = _ByteCalls(SharedMemoryTopic, create_topic_with_schema, "publish", "publish_batch", None, None)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        capacity: int,
        schema: SchemaLike | Any,
        *,
        mode: int = 0o600,
        max_subscribers: int = 16,
        overflow: str = "block",
    ) -> TypedTopic:
        """Creates a topic of `capacity` bytes whose header carries `schema` (`overflow` and
        `max_subscribers` as for :meth:`SharedMemoryTopic.create`)."""
        if overflow not in ("block", "overwrite"):
            raise ValueError(f"overflow must be 'block' or 'overwrite', got {overflow!r}")
        s = as_schema(schema)
        created = create_topic_with_schema(
            path, capacity, s.to_json(), mode=mode, max_subscribers=max_subscribers, overwrite=overflow == "overwrite"
        )
        return cls(SharedMemoryTopic.open(created), s)

    @property
    def topic(self) -> SharedMemoryTopic:
        """The underlying byte topic."""
        return self._bytes

    def _next_view(self, block: bool, timeout: float | None) -> memoryview | None:
        raise TypeError("a TypedTopic publishes; receive from topic.subscribe()")

    def _fixed_batch(self, max_count: int, size: int, block: bool, timeout: float | None) -> tuple[memoryview, int, int] | None:
        raise TypeError("a TypedTopic publishes; receive from topic.subscribe()")

    def subscribe(self, start: str = "latest", group: str | None = None) -> TypedSubscription:
        """A subscription typed as this handle's reader schema (see
        :meth:`SharedMemoryTopic.subscribe`)."""
        return TypedSubscription(self._bytes.subscribe(start=start, group=group), self._channel, self._reader)


class TypedSubscription(_TypedChannel[TopicSubscriber]):
    """One subscriber of a :class:`TypedTopic` (close it, or use ``with``, to free its slot)."""

    _kind = "topic"
    _release_on_next = True
    _calls = _ByteCalls(TopicSubscriber, None, None, None, None, None)

    def __init__(self, inner: TopicSubscriber, channel: Schema, reader: Schema | None = None) -> None:
        super().__init__(inner, channel, reader)
        self._in_place = True

    @classmethod
    def _create_bytes(cls, path: str | os.PathLike[str], capacity: int, schema_json: str, mode: int) -> TopicSubscriber:
        raise TypeError("create a TypedTopic, then subscribe()")

    @classmethod
    def _open_bytes(cls, path: str | os.PathLike[str], allow_foreign_owner: bool) -> TopicSubscriber:
        raise TypeError("open a TypedTopic, then subscribe()")

    @property
    def subscriber(self) -> TopicSubscriber:
        """The underlying byte subscriber (``lag``, ``dropped``)."""
        return self._bytes

    def _put(self, data: memoryview, block: bool, timeout: float | None) -> bool:
        raise TypeError("a subscription receives; send on the TypedTopic")

    def _put_batch(self, rows: Iterable[memoryview], block: bool, timeout: float | None) -> int:
        raise TypeError("a subscription receives; send on the TypedTopic")

    def _next_view(self, block: bool, timeout: float | None) -> memoryview | None:
        from .errors import Error

        if self._in_place:
            try:
                return self._bytes.recv_view(block=block, timeout=timeout)
            except Error:
                self._in_place = False  # overwrite mode or a group: copies
        data = self._bytes.recv(block=block, timeout=timeout)
        return None if data is None else memoryview(data)

    def _fixed_batch(self, max_count: int, size: int, block: bool, timeout: float | None) -> tuple[memoryview, int, int] | None:
        from .errors import CorruptMessage, Error

        if self._in_place:
            try:
                return self._bytes.recv_fixed_batch(max_count, size, block=block, timeout=timeout)
            except CorruptMessage:
                raise
            except Error:
                self._in_place = False  # overwrite mode or a group: copies
        got = self._bytes.recv_batch(max_count, block=block, timeout=timeout)
        if not got:
            return None
        joined = bytearray(b"".join(got))
        return memoryview(joined), len(got), size

    def recv_batch(self, max_count: int, block: bool = True, timeout: float | None = None) -> npt.NDArray[Any]:
        """Up to `max_count` fixed-size records that are ready (waiting, with ``block``, up to
        `timeout` for the first) as **one structured NumPy array** of the reader's dtype. For an
        exclusive subscriber of a block-mode topic the array lies **over the topic's slots** (no
        copy; held until the next receive, which raises ``BufferError`` if the array, or one made
        from it, is still alive: copy what you keep), and the run stops at the wrap; in overwrite
        mode and in a group it is a copy of the records. An empty array means nothing arrived."""
        return self._recv_batch(max_count, block, timeout)

    @property
    def lag(self) -> int:
        """Records published and not yet received."""
        return self._bytes.lag

    @property
    def dropped(self) -> int:
        """Records lost to overwrite."""
        return self._bytes.dropped
