"""iceoryx2 publish-subscribe of ``Slice[c_uint8]``: loaned samples, read in place.

Its Python API has no blocking receive without a WaitSet, so the subscriber polls. iceoryx2
0.10's Python publisher drops a sample when the subscriber's buffer is full even with
``RetryUntilDelivered``; ``send()`` then returns 0 receivers and the message is sent again.
In the fan-out rows (``--fanout N``) a sample dropped for one subscriber of several cannot be
sent again without duplicating it for the others: the consumer that missed it fails the run
(lost message), so a fan-out row either delivered every message to every subscriber or fails.
"""

from __future__ import annotations

import ctypes
import importlib
from time import perf_counter
from typing import Any

from ..common import Params, Stalled, message_buffer, unique_name
from .base import Buf, Receiver, Sender, System


class Iceoryx2(System):
    key = "iceoryx2"
    label = "iceoryx2 pub/sub"
    method = (
        "loan_slice_uninit + memmove + send / receive + read in place (polling); "
        "resend when send() reached no subscriber (full buffer)"
    )
    pingpong = True
    fanout = True  # every subscriber of the service receives every sample
    requires = ("iceoryx2", "iceoryx2")

    def setup(self, p: Params) -> Any:
        return "mmapipc-bench/" + unique_name("iox")

    def _service(self, name: str, p: Params) -> tuple[Any, Any, Any]:
        iox = importlib.import_module("iceoryx2")
        iox.set_log_level(iox.LogLevel.Error)
        node = iox.NodeBuilder.new().create(iox.ServiceType.Ipc)
        depth = max(2, min(p.depth, 256))
        svc = (
            node.service_builder(iox.ServiceName.new(name))
            .publish_subscribe(iox.Slice[ctypes.c_uint8])
            .enable_safe_overflow(False)
            .subscriber_max_buffer_size(depth)
            .history_size(0)
            .subscriber_max_borrowed_samples(2)
            .open_or_create()
        )
        return iox, node, svc

    def sender(self, h: Any, p: Params) -> Sender:
        iox, node, svc = self._service(h, p)
        pub = (
            svc.publisher_builder()
            .initial_max_slice_len(p.size)
            .backpressure_strategy(iox.BackpressureStrategy.RetryUntilDelivered)
            .create()
        )
        buf = message_buffer(p.size)
        own = (ctypes.c_char * p.size).from_buffer(buf)  # memmove takes ctypes or bytes
        loan, memmove, size = pub.loan_slice_uninit, ctypes.memmove, p.size
        give_up = [0.0]

        def send(m: Buf, _arg: Any) -> None:
            src = own if m is buf else m if isinstance(m, (bytes, ctypes.Array)) else bytes(m)
            tries = 0
            while True:
                smp = loan(size)
                memmove(smp.payload_ptr, src, size)
                # send() returns how many subscribers got it; 0 means the subscriber's buffer
                # was full and the sample was dropped, so send it again.
                if smp.assume_init().send():
                    return
                tries += 1
                if tries & 1023 == 0 and perf_counter() > give_up[0]:
                    raise Stalled("iceoryx2 send reached no subscriber: consumer stalled")

        def start() -> None:
            pub.update_connections()
            give_up[0] = perf_counter() + p.seconds + p.stall

        keep = [node, svc, pub, own]

        return Sender("iceoryx2 send", send, None, buf=buf, start=start, close=keep.clear)

    def receiver(self, h: Any, p: Params) -> Receiver:
        _iox, node, svc = self._service(h, p)
        sub = svc.subscriber_builder().create()
        receive = sub.receive
        view = (ctypes.c_uint8 * p.size).from_address
        held: list[Any] = []  # the sample the last message is a view of
        give_up = [0.0]

        def recv(_arg: Any) -> Buf:
            if held:
                held.pop().delete()
            idle = 0
            while True:
                smp = receive()
                if smp is not None:
                    held.append(smp)
                    return view(smp.payload_ptr)
                idle += 1
                if idle & 4095 == 0 and perf_counter() > give_up[0]:
                    raise Stalled("iceoryx2 receive: nothing arrived: producer stalled")

        def start() -> None:
            give_up[0] = perf_counter() + p.seconds + p.stall

        def close() -> None:
            while held:
                held.pop().delete()
            del keep[:]

        keep = [node, svc, sub]
        return Receiver("iceoryx2 receive", recv, None, start=start, close=close)
