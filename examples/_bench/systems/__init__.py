"""Every system under test: mmapipc's ring, queue and typed ring, and the peers users compare
them with, one module each, all on the shared ends and loops of ``base`` and ``loops``.

A system whose library is missing reports why from ``unavailable()`` and the harness skips it.
"""

from __future__ import annotations

from .aio import RingAsync, ZmqAsync
from .base import Result, Sync, System
from .batch import BatchChecker, BatchStamper
from .faster_fifo_queue import FasterFifo, FasterFifoBatch
from .iceoryx2_pubsub import Iceoryx2
from .mmapipc_queue import Queue, QueueBatch, QueueInto, QueueLoan, QueueView
from .mmapipc_ring import Ring, RingBatch, RingInto, RingView
from .mmapipc_rings_fanout import RingsFanout
from .mmapipc_topic import Topic, TopicBatch, TopicView
from .mmapipc_typed import TICK_SCHEMA, TICK_SIZE, TypedRing, TypedRingBatch
from .mmapipc_typed_frames import TypedFrameLoan
from .mp_pipe import MpPipe
from .mp_queue import MpQueue
from .pyzmq import Zmq
from .pyzmq_pubsub import ZmqPubSub

#: The throughput systems, in the order of the tables.
ALL_SYSTEMS: list[System] = [
    Ring(),
    RingBatch(),
    RingView(),
    RingInto(),
    Queue(),
    QueueBatch(),
    QueueView(),
    QueueLoan(),
    QueueInto(),
    TypedFrameLoan(),
    Topic(),
    TopicView(),
    MpQueue(),
    MpPipe(),
    FasterFifo(),
    FasterFifoBatch(),
    Zmq(),
    Iceoryx2(),
    RingAsync(),
    ZmqAsync(),
]

#: Typed rings, measured in their own section at the record's size.
TYPED_SYSTEMS: list[System] = [TypedRing(), TypedRingBatch()]

#: The fan-out rows' systems (``--fanout N``): one producer, N consumers of every message.
FANOUT_SYSTEMS: list[System] = [Topic(), TopicView(), TopicBatch(), ZmqPubSub(), Iceoryx2(), RingsFanout()]

BY_KEY: dict[str, System] = {s.key: s for s in ALL_SYSTEMS + TYPED_SYSTEMS + FANOUT_SYSTEMS}

__all__ = ["ALL_SYSTEMS", "BY_KEY", "FANOUT_SYSTEMS", "TICK_SCHEMA", "TICK_SIZE", "TYPED_SYSTEMS", "BatchChecker",
           "BatchStamper", "Result", "Sync", "System"]
