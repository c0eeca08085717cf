"""Helpers shared by ``examples/benchmark.py`` and ``examples/benchmark_advanced.py``.

Layout:

- ``common``: parameters, message stamping, size parsing, errors.
- ``systems``: every system under test (mmapipc and its peers), each with its own tight
  producer/consumer and ping-pong loops, so no system pays for a generic abstraction per message.
- ``runner``: process orchestration (fork, barrier, watchdog, cleanup), repetitions, memcpy reference.
- ``stats``: medians, spreads, percentiles.
- ``report``: terminal tables, target checks (PASS/MISS), JSON, Markdown, machine info.
- ``plot``: matplotlib charts (optional).
- ``progress``: a small progress bar on stderr.
"""

import os as _os

# NumPy is used only to stamp and check batches, never for linear algebra: keep its BLAS from
# starting a pool of (briefly spinning) threads in every benchmark process, which on a 2-core
# machine would compete with the producer and the consumer being measured.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")
