"""Pure-Python helpers for zero-copy views."""

from __future__ import annotations

from types import TracebackType

__all__ = ["ViewBatch"]


class ViewBatch(list):  # type: ignore[type-arg]
    """The list of memoryviews ``SharedMemoryQueue.get_view`` returns.

    A plain ``list`` that is also a context manager: ``with q.get_view() as views:`` releases
    every view on exit, so their slots can be reused. A view used after that raises
    ``ValueError``. A NumPy array made from a view (``numpy.frombuffer(view)``) holds its own
    export of the slot: releasing the view does not free the slot while the array lives, so the
    array never shows recycled bytes; the slot is freed when the array is garbage-collected.
    (An object that exports the memoryview itself, e.g. ``memoryview(view)``, makes
    ``release`` raise ``BufferError``.)

    The binding makes instances without calling the class (an empty list filled in place), so
    this class defines no ``__new__`` or ``__init__``. No ``__dict__`` or weak references
    (``__slots__ = ()``): one is made per ``get_view`` call, and its deallocation is cheaper so.
    """

    __slots__ = ()

    def release(self) -> None:
        """Releases every view (already released ones are skipped)."""
        for v in self:
            v.release()

    def __enter__(self) -> ViewBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
