"""Fan-out benchmark: the issue-17 rows of ``benchmark_advanced.py --fanout N``.

* 64 B, 1 publisher and 4 subscriber processes: ``SharedMemoryTopic`` (publish / recv) against
  pyzmq PUB/SUB over ``ipc://`` and iceoryx2 publish-subscribe with 4 subscribers;
* 8 MiB frames to 2 subscribers reading ``recv_view``, against writing each frame into 2
  separate rings read with ``read_view``.

Messages per second per subscriber (the slowest one's), median and range of ``--repeat`` runs;
the harness's loops stamp and check every message at every subscriber. Targets (issue 17):
topic >= 5x iceoryx2 and >= 10x pyzmq at 64 B; topic views >= 2x the two rings at 8 MiB.

Run: ``python examples/benchmark_fanout.py [--quick] [--repeat N]``.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchmark_advanced  # noqa: E402

ROWS = (("4", "64", "topic,topic-batch,zmq-pubsub,iceoryx2"), ("2", "8M", "topic-view,rings-fanout"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    rc = 0
    for consumers, size, systems in ROWS:
        rc |= benchmark_advanced.main(["--fanout", consumers, "--sizes", size, "--systems",
                                       systems, *extra])
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
