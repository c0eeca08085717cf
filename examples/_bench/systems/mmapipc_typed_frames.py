"""Typed frames written through a loan: ``TypedRing.loan`` of a video.Frame v1 record, the frame
copied into the loaned pixels from NumPy, ``commit()``; the consumer's ``recv()`` returns the
record in place and the loop checks its pixels there (zero-copy both ways).

The pixels start the record, so the stamps the loops check (the first 8 bytes and the last byte of
the message) travel in the frame itself, as in every other row. The header fields are set once
(``width``/``height``/``stride`` describe the frame as one row of bytes).
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..common import MiB, Params, message_buffer, shm_dir, unique_name
from .base import Receiver, Sender, numpy_missing, optional
from .mmapipc_base import MmapipcSystem

FRAME_SCHEMA = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "schemas", "video", "frame.v1.json",
)


class TypedFrameLoan(MmapipcSystem):
    key = "typed-loan"
    label = "mmapipc typed frame loan"
    method = ("TypedRing.loan('pixels', n) (video.Frame v1) + NumPy copy of the frame + commit() / "
              "recv() and rec.pixels checked in place")
    cls_name = "SharedMemoryRing"
    #: Frames only: below this a loan's Python work (the header encoded per record) is the row.
    min_size = MiB

    def typed_ring(self) -> Any:
        mod = optional("mmapipc.typed")
        return None if mod is None else getattr(mod, "TypedRing", None)

    def unavailable(self) -> Optional[str]:
        why = super().unavailable()
        if why:
            return why
        if self.typed_ring() is None:
            return "mmapipc.typed.TypedRing is not available in this build"
        if not os.path.exists(FRAME_SCHEMA):
            return f"schema file {FRAME_SCHEMA} not found"
        return numpy_missing()

    def setup(self, p: Params) -> Any:
        path = os.path.join(shm_dir(), unique_name("typedframe"))
        self.typed_ring().create(path, p.capacity, FRAME_SCHEMA).close()
        return path

    def sender(self, h: Any, p: Params) -> Sender:
        import numpy as np

        ring = self.typed_ring().open(h, FRAME_SCHEMA)
        buf = message_buffer(p.size)  # the stamped frame, as a producer holds it
        frame = np.frombuffer(buf, np.uint8)
        header = {"seq": 0, "timestamp_ns": 0, "width": p.size, "height": 1, "stride": p.size,
                  "pixel_format": 0}
        loan, copyto, view, u8, size = ring.loan, np.copyto, np.frombuffer, np.uint8, p.size

        def send(m: Any, block: bool, timeout: Optional[float] = None) -> bool:
            slot = loan("pixels", size, header, block=block, timeout=timeout)
            if slot is None:
                return False
            copyto(slot.array, frame if m is buf else view(m, u8))
            slot.commit()
            return True

        return Sender("TypedRing.loan", send, False, wait=(True, p.stall), buf=buf, close=ring.close)

    def receiver(self, h: Any, p: Params) -> Receiver:
        ring = self.typed_ring().open(h, FRAME_SCHEMA)
        recv = ring.recv
        held: list[memoryview] = []  # the frame handed to the loop last

        def pixels(block: bool, timeout: Optional[float] = None) -> Any:
            # Let go of the previous frame first (as the iceoryx2 consumer deletes its sample
            # before the next receive): the loop still holds it, and a live array over a ring
            # record makes the next receive refuse (BufferError).
            if held:
                held.pop().release()
            rec = recv(block, timeout)
            if rec is None:
                return None
            frame = memoryview(rec.pixels)  # over the slot, no copy
            held.append(frame)
            return frame

        def close() -> None:
            while held:
                held.pop().release()
            ring.close()

        return Receiver("TypedRing.recv", pixels, False, wait=(True, p.stall), close=close)
