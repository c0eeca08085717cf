"""Helpers shared by ``examples/benchmark.py`` and ``examples/benchmark_advanced.py``.

Layout:

- ``common``: parameters, message stamping, size parsing, errors.
- ``systems/``: every system under test, one module each (``mmapipc_ring``, ``mmapipc_queue``,
  ``mmapipc_typed``, ``mp_queue``, ``mp_pipe``, ``faster_fifo_queue``, ``pyzmq``,
  ``iceoryx2_pubsub``, and ``memcpy`` for the raw copy references). Each names its own calls;
  ``systems/base`` (the ``System`` and the ends a process holds) and ``systems/loops`` (one
  producer, consumer, ping-pong and many-to-many loop each, with the checks of every message)
  hold everything they share, ``systems/batch`` the NumPy stamping and checking of batches.
- ``runner``: process orchestration (fork, barrier, watchdog, cleanup), one run of a system.
- ``driver``: a suite: every row, its repetitions, in rounds.
- ``stats``: medians, spreads, percentiles.
- ``report``: terminal tables, target checks (PASS/MISS), JSON, Markdown, machine info.
- ``summary``: the README's summary table and the marked sections of README and docs.
- ``plot``: matplotlib charts (optional).
- ``progress``: a small progress bar on stderr.
"""

import os as _os

# NumPy is used only to stamp and check batches, never for linear algebra: keep its BLAS from
# starting a pool of (briefly spinning) threads in every benchmark process, which on a 2-core
# machine would compete with the producer and the consumer being measured.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")
