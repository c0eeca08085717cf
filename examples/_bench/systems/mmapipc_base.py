"""What mmapipc's systems share: the class they need, a fresh shared-memory file per run, and
the ends built from the names of the class's methods (the ring's ``write``/``read`` are the
queue's ``put``/``get``; the blocking form of each is ``(buf, True, timeout)``)."""

from __future__ import annotations

import os
from typing import Any, Optional

from ..common import BenchError, Params, shm_dir, unique_name
from .base import BatchReceiver, BatchSender, End, IntoReceiver, Receiver, Sender, System
from .base import numpy_missing, optional
from .batch import BatchChecker, BatchStamper


class MmapipcSystem(System):
    """A system on one of mmapipc's classes (``cls_name``), with the methods in ``needs``.

    ``calls``: the (send, receive) methods of one message; their non-blocking form is
    ``(buf, False)`` / ``(False)``, then the blocking one with the stall timeout."""

    family = "mmapipc"
    cls_name = ""
    noun = ""  # "ring", "queue": in messages
    calls: tuple[str, str] = ("", "")
    needs: tuple[str, ...] = ()

    def cls(self) -> Any:
        mod = optional("mmapipc")
        return None if mod is None else getattr(mod, self.cls_name, None)

    def open(self, h: str) -> Any:
        return self.cls().open(h)

    def unavailable(self) -> Optional[str]:
        if optional("mmapipc") is None:
            return "mmapipc is not installed (pip install -e .)"
        c = self.cls()
        if c is None:
            return f"mmapipc.{self.cls_name} is not available in this build"
        missing = [m for m in self.needs if not hasattr(c, m)]
        if missing:
            return f"mmapipc.{self.cls_name} has no {', '.join(missing)} in this build"
        return None

    def setup(self, p: Params) -> Any:
        tag = self.cls_name.lower()
        path = os.path.join(shm_dir(), unique_name(tag))
        obj = self.cls().create(path, p.capacity)
        try:
            mms = getattr(obj, "max_message_size", None)
            if isinstance(mms, int) and p.size > mms:
                raise BenchError(
                    f"{p.size} B messages exceed max_message_size {mms} of a {p.capacity} B {tag}"
                )
        finally:
            obj.close()
        return path

    def teardown(self, h: Any) -> None:
        try:
            os.unlink(h)
        except FileNotFoundError:
            pass

    def _call(self, obj: Any, name: str) -> tuple[str, Any]:
        return f"{self.noun}.{name}", getattr(obj, name)

    def sender(self, h: Any, p: Params) -> Sender:
        o = self.open(h)
        name, call = self._call(o, self.calls[0])
        return Sender(name, call, False, wait=(True, p.stall), close=o.close)

    def receiver(self, h: Any, p: Params) -> Receiver:
        o = self.open(h)
        name, call = self._call(o, self.calls[1])
        return Receiver(name, call, False, wait=(True, p.stall), close=o.close)


class Batched(MmapipcSystem):
    """Batches through ``batch_calls``, e.g. ``write_batch(list_of_64, True, t)`` /
    ``read_batch(64, True, t)``: blocking, each writes what fits and waits for room, each
    reads everything ready (up to a batch) and waits only while there is nothing."""

    batched = True
    pingpong = False
    mpmc = False
    batch_calls: tuple[str, str] = ("", "")

    def unavailable(self) -> Optional[str]:
        return super().unavailable() or numpy_missing()

    def producer(self, h: Any, p: Params) -> End:
        o = self.open(h)
        name, call = self._call(o, self.batch_calls[0])
        block = (True, p.stall)
        return BatchSender(name, call, block, BatchStamper(p), wait=block, close=o.close)

    def consumer(self, h: Any, p: Params) -> End:
        o = self.open(h)
        name, call = self._call(o, self.batch_calls[1])
        return BatchReceiver(name, call, (p.batch, True, p.stall), check=BatchChecker(p).check,
                             close=o.close)


class Into(MmapipcSystem):
    """The consumer copies each message into one reused buffer: ``into_call(buffer, block)``."""

    pingpong = False
    mpmc = False
    into_call = ""

    def consumer(self, h: Any, p: Params) -> End:
        o = self.open(h)
        name, call = self._call(o, self.into_call)
        return IntoReceiver(name, call, False, wait=(True, p.stall), close=o.close)
