"""Smoke tests of the Python benchmark harness (examples/benchmark*.py).

They run each script as a subprocess in a tiny mode (``--smoke``: runs of a few milliseconds)
and check that it exits 0, prints/records every requested row (measured or explicitly skipped),
and writes valid JSON, Markdown and a chart. They never assert a speed.

``test_advanced_mmapipc_code_paths`` shadows ``mmapipc`` with a tiny pure-Python stand-in (a
named FIFO, written out below into a temporary directory) so the harness's ring/queue loops run
before the real classes exist. Its numbers are thrown away: it only proves the loops work.

The shared run loops (``_bench/systems/loops.py``) are also driven in one process through fake
ends over lists of messages: every kind of consumer must reject a lost, duplicated, reordered
or torn message, a timed-out call must fail as a stall of the peer, and the producers must send
exactly the stamped sequence and one end-of-stream message.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
QUICK = EXAMPLES / "benchmark.py"
ADVANCED = EXAMPLES / "benchmark_advanced.py"

sys.path.insert(0, str(EXAMPLES))

from _bench.common import STAMP, STOP, BenchError, MiB, Stalled, make_params, parse_size  # noqa: E402
from _bench.report import TARGETS, TputRow, check_targets  # noqa: E402
from _bench.summary import DOCS_BEGIN, DOCS_END, README_BEGIN, README_END  # noqa: E402
from _bench.systems import base, batch, loops  # noqa: E402

MMAPIPC_KEYS = {"ring", "ring-batch", "ring-view", "ring-into", "queue", "queue-batch", "queue-view",
                "queue-loan", "queue-into"}

STANDIN = textwrap.dedent(
    '''
    """Test-only stand-in for mmapipc's ring and queue: a named FIFO. NOT a benchmark subject."""
    import os
    import select
    import struct

    _LEN = struct.Struct("<I")


    class _Fifo:
        max_message_size = 1 << 30

        @classmethod
        def create(cls, path, capacity):
            os.mkfifo(path, 0o600)
            return cls(path)

        @classmethod
        def open(cls, path):
            return cls(path)

        def __init__(self, path):
            self._fd = os.open(path, os.O_RDWR)

        def close(self):
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()
            return False

        def _send(self, data):
            frame = memoryview(_LEN.pack(len(data)) + bytes(data))
            while frame:
                frame = frame[os.write(self._fd, frame):]
            return True

        def _exact(self, n):
            out = bytearray()
            while len(out) < n:
                out += os.read(self._fd, n - len(out))
            return bytes(out)

        def _recv(self, block, timeout):
            wait = (None if timeout is None else timeout) if block else 0
            if not select.select([self._fd], [], [], wait)[0]:
                return None
            (n,) = _LEN.unpack(self._exact(4))
            return self._exact(n)

        def _recv_into(self, buffer, block, timeout):
            m = self._recv(block, timeout)
            if m is None:
                return None
            memoryview(buffer).cast("B")[: len(m)] = m
            return len(m)


    class SharedMemoryRing(_Fifo):
        _drop_every = int(os.environ.get("STANDIN_DROP_EVERY", "0"))  # simulate a lossy ring
        _written = 0

        def write(self, data, block=False, timeout=None):
            self._written += 1
            if self._drop_every and self._written % self._drop_every == 0:
                return True
            return self._send(data)

        def read(self, block=False, timeout=None):
            return self._recv(block, timeout)

        def write_batch(self, messages, block=False, timeout=None):
            for m in messages:
                self._send(m)
            return len(messages)

        def read_batch(self, max_count, block=False, timeout=None):
            out = []
            while len(out) < max_count:
                m = self._recv(block and not out, timeout)
                if m is None:
                    break
                out.append(m)
            return out

        def read_view(self, block=False, timeout=None):
            m = self._recv(block, timeout)
            return None if m is None else memoryview(m)

        def read_into(self, buffer, block=False, timeout=None):
            return self._recv_into(buffer, block, timeout)


    class SharedMemoryQueue(_Fifo):
        def put(self, data, block=True, timeout=None):
            return self._send(data)

        def get(self, block=True, timeout=None):
            return self._recv(block, timeout)

        def put_batch(self, messages, block=True, timeout=None):
            for m in messages:
                self._send(m)
            return len(messages)

        def get_batch(self, max_count, block=True, timeout=None):
            first = self._recv(block, timeout)
            if first is None:
                return []
            out = [first]
            while len(out) < max_count:
                m = self._recv(False, None)
                if m is None:
                    break
                out.append(m)
            return out

        def get_view(self, block=True, timeout=None, *, max_count=1):
            got = self.get_batch(max_count or 8, block, timeout)
            return [memoryview(m) for m in got] or None

        def loan(self, size, block=True, timeout=None):
            self._loan = bytearray(size)
            self._loan_view = memoryview(self._loan)
            return self._loan_view

        def commit(self):
            self._loan_view.release()
            self._send(bytes(self._loan))

        def abort(self):
            self._loan_view.release()

        def release(self, views):
            for v in views:
                v.release()

        def get_into(self, buffer, block=True, timeout=None):
            return self._recv_into(buffer, block, timeout)
    '''
)


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 50) -> Any:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env=env,
    )


def _standin_env(tmp_path: Path) -> dict[str, str]:
    pkg = tmp_path / "standin" / "mmapipc"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(STANDIN)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(pkg.parent), env.get("PYTHONPATH", "")])
    return env


def _rows_complete(doc: dict[str, Any], systems: set[str], sizes: set[int]) -> None:
    rows = {(r["system"], r["size"]): r for r in doc["throughput"]}
    for key in systems:
        for size in sizes:
            assert (key, size) in rows, f"row {key} @ {size} missing"
            r = rows[(key, size)]
            assert r["status"] in ("ok", "skipped"), f"{key} @ {size}: {r['status']} {r['note']}"
            if r["status"] == "ok":
                assert r["msg_s"] and r["msg_s"] > 0
                assert len(r["reps_msg_s"]) >= 1
            else:
                assert r["note"], f"{key} @ {size} skipped without a reason"


# ----------------------------------------------------------------------------------------------
# Pure logic


def test_parse_size() -> None:
    assert parse_size("64") == 64
    assert parse_size("1K") == 1024
    assert parse_size("64KiB") == 64 * 1024
    assert parse_size("8M") == 8 * MiB
    with pytest.raises(ValueError):
        parse_size("lots")


def test_params_are_bounded() -> None:
    p = make_params(8 * MiB, seconds=1.0, max_count=10**6, max_bytes=512 * MiB, stall=5.0)
    # Large messages: double buffering (two messages and their framing fit, a third does not).
    assert p.count == 64 and 2 * (p.size + 64) <= p.capacity < 3 * p.size and p.batch == 1
    q = make_params(64, seconds=1.0, max_count=1000, max_bytes=512 * MiB, stall=5.0)
    assert q.count == 1000 and q.batch == 64 and 1 <= q.warm < q.count
    with pytest.raises(ValueError):
        make_params(4, seconds=1.0, max_count=10, max_bytes=10**6, stall=1.0)


def _row(system: str, family: str, size: int, rate: float) -> TputRow:
    r = TputRow(system, system, family, size, reps_msg_s=[rate])
    r.finish()
    return r


def test_targets_pass_miss_skip() -> None:
    rows = [
        _row("mp-queue", "peer", 64, 100_000.0),
        _row("ring", "mmapipc", 64, 3_500_000.0),  # 35x: PASS (>= 30x)
        _row("ring-batch", "mmapipc", 64, 5_000_000.0),  # 50x: MISS (>= 100x)
        _row("memcpy", "reference", 8 * MiB, 1000.0),
        _row("ring-view", "mmapipc", 8 * MiB, 790.0),  # 79%: MISS (>= 80%)
        _row("queue-view", "mmapipc", 8 * MiB, 750.0),  # 75%: PASS (>= 70%)
        _row("faster-fifo", "peer", 8 * MiB, 300.0),
        _row("faster-fifo-batch", "peer", 8 * MiB, 400.0),  # best faster-fifo: 1.9x: MISS
    ]
    skipped = TputRow("queue", "queue", "mmapipc", 64, status="skipped", note="not in build")
    rows.append(skipped)
    got = {(t["system"], tuple(t["versus"])): t for t in check_targets(rows)}
    assert len(got) == len(TARGETS)
    assert got[("ring", ("mp-queue",))]["status"] == "PASS"
    assert got[("ring", ("mp-queue",))]["value"] == pytest.approx(35.0)
    assert got[("ring-batch", ("mp-queue",))]["status"] == "MISS"
    assert got[("ring-view", ("memcpy",))]["status"] == "MISS"
    assert got[("queue-view", ("memcpy",))]["status"] == "PASS"
    ff = got[("queue-view", ("faster-fifo", "faster-fifo-batch"))]
    assert ff["status"] == "MISS" and ff["value"] == pytest.approx(750 / 400)
    assert got[("queue", ("mp-queue",))]["status"] == "SKIP"
    assert "not in build" in got[("queue", ("mp-queue",))]["detail"]
    assert got[("queue-batch", ("mp-queue",))]["status"] == "SKIP"


# ----------------------------------------------------------------------------------------------
# The scripts, end to end


def test_quick_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    res = _run([str(QUICK), "--smoke", "--no-progress", "--json", str(out)])
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(out.read_text())
    _rows_complete(doc, {"ring", "queue", "mp-queue"}, {64, 1024, MiB})
    assert all(r["status"] == "ok" for r in doc["throughput"] if r["system"] == "mp-queue")
    assert "vs mp.Queue" in res.stdout


def test_advanced_benchmark_smoke(tmp_path: Path) -> None:
    out, md, png = tmp_path / "adv.json", tmp_path / "perf.md", tmp_path / "out" / "perf.png"
    readme, docs = tmp_path / "README.md", tmp_path / "docs" / "benchmarks.md"
    readme.write_text(f"# x\n\nbefore\n{README_BEGIN}\nold summary\n{README_END}\nafter\n")
    docs.parent.mkdir()
    quoted = f"Options: `--docs` writes between `{DOCS_BEGIN}` and `{DOCS_END}`.\n"
    docs.write_text(f"# B\n{quoted}\n## Results\n\n{DOCS_BEGIN}\nold numbers\n{DOCS_END}\nend\n")
    res = _run([str(ADVANCED), "--smoke", "--sizes", "64,64K", "--json", str(out),
                "--markdown", str(md), "--plot", str(png), "--docs", str(docs),
                "--readme", str(readme)])
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(out.read_text())
    every = set(doc["systems"])
    assert every >= MMAPIPC_KEYS | {"mp-queue", "mp-pipe", "faster-fifo", "zmq", "iceoryx2"}
    _rows_complete(doc, every | {"memcpy"}, {64, 64 * 1024})
    lat = {r["system"]: r for r in doc["latency"]}
    assert {"ring", "queue", "mp-pipe", "zmq", "mp-queue"} <= set(lat)
    for r in lat.values():
        assert r["status"] in ("ok", "skipped"), r
        if r["status"] == "ok":
            assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"]
    assert len(doc["targets"]) == len(TARGETS)
    assert all(t["status"] in ("PASS", "MISS", "SKIP") for t in doc["targets"])
    typed = {r["system"]: r for r in doc["typed"]}
    assert {"typed", "typed-batch", "ring", "ring-batch", "mp-queue"} <= set(typed)
    for r in typed.values():
        assert r["size"] == 32 and r["status"] in ("ok", "skipped"), r
    mpmc = {(r["system"], r["procs"]): r for r in doc["mpmc"]}
    for key in ("queue", "mp-queue", "faster-fifo"):
        for n in (1, 2, 4):
            assert mpmc[(key, n)]["status"] in ("ok", "skipped"), mpmc[(key, n)]
    assert mpmc[("mp-queue", 4)]["status"] == "ok"
    # The idle rows (100 channels awaited, nothing sent): mmapipc's measured, zmq's measured
    # or skipped (pyzmq is in the bench extras only).
    idle = {r["system"]: r for r in doc["idle"]}
    assert set(idle) == {"ring-async", "zmq-asyncio"}
    assert idle["ring-async"]["status"] == "ok" and idle["ring-async"]["cpu_pct"] >= 0
    assert idle["ring-async"]["channels"] == 100 and idle["ring-async"]["threads"] > 0
    assert idle["zmq-asyncio"]["status"] in ("ok", "skipped"), idle["zmq-asyncio"]
    assert doc["machine"]["cpu"] and doc["machine"]["python"]
    text = md.read_text()
    assert "## Benchmark results" in text and "| size | system |" in text
    assert "### Idle (100 channels awaited by one asyncio loop" in text
    spliced = docs.read_text()
    assert spliced.startswith(f"# B\n{quoted}\n## Results\n\n{DOCS_BEGIN}\nGenerated by `")
    assert spliced.endswith(f"{DOCS_END}\nend\n")
    assert "old numbers" not in spliced and "### Throughput" in spliced
    assert "## Benchmark results" not in spliced  # the page's own heading stays the only one
    assert "benchmarks.md#methodology)" in spliced  # the real page, relative to this one
    summary = readme.read_text()
    assert summary.startswith("# x\n\nbefore\n") and summary.endswith(f"{README_END}\nafter\n")
    assert "old summary" not in summary and "### Throughput" not in summary
    assert "| mmapipc from Python | size |" in summary and "--readme" in summary
    assert "(docs/benchmarks.md#results)" in summary
    for what, unit in (("ring, batches of 64", " msg/s |"), ("ring round trip, p50", " us |")):
        line = next(x for x in summary.splitlines() if x.startswith(f"| {what}"))
        assert unit in line and line.count("|") == 7, line
    assert "Targets" in res.stdout and "Throughput" in res.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in res.stdout
    else:
        assert png.stat().st_size > 10_000


def test_fanout_mode_every_consumer_gets_every_message(tmp_path: Path) -> None:
    """``--fanout 3``: one producer and three consumer processes per row; each consumer's loop
    checks every stamp, and the runner fails a row where any consumer's count differs."""
    out = tmp_path / "fanout.json"
    # Not iceoryx2: its Python publisher can drop a sample for one subscriber of several (the
    # module doc of its system), which fails its row rather than testing the harness.
    keys = ["topic", "topic-view", "topic-batch", "rings-fanout", "zmq-pubsub"]
    res = _run([str(ADVANCED), "--smoke", "--fanout", "3", "--sizes", "64,1M", "--systems",
                ",".join(keys), "--no-progress", "--json", str(out)], timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads(out.read_text())["fanout"]
    _rows_complete({"throughput": rows}, set(keys), {64, 1 << 20})
    assert {r["procs"] for r in rows} == {3}
    assert any(r["status"] == "ok" for r in rows if r["family"] == "mmapipc")
    bad = _run([str(ADVANCED), "--smoke", "--fanout", "2", "--systems", "ring"])
    assert bad.returncode != 0 and "no fan-out mode in ring" in bad.stderr


def test_missing_markers_stop_before_the_run(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{DOCS_BEGIN}\n{DOCS_END}\n")  # the other file's markers
    res = _run([str(ADVANCED), "--smoke", "--sizes", "64", "--systems", "mp-queue",
                "--readme", str(readme)], timeout=20)
    assert res.returncode != 0 and "no benchmark markers" in res.stderr
    assert README_BEGIN in res.stderr and "Throughput" not in res.stdout


def test_advanced_mmapipc_code_paths(tmp_path: Path) -> None:
    """Exercise the ring/queue loops (single, batch, view, ping-pong) against a stand-in."""
    out = tmp_path / "standin.json"
    keys = sorted(MMAPIPC_KEYS | {"mp-queue"})
    res = _run([str(ADVANCED), "--smoke", "--sizes", "64,1M", "--systems", ",".join(keys),
                "--no-memcpy", "--no-progress", "--mpmc", "1", "--json", str(out)],
               env=_standin_env(tmp_path))  # a FIFO is no MPMC queue: one producer, one consumer
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(out.read_text())
    rows = {(r["system"], r["size"]): r for r in doc["throughput"]}
    for key in keys:
        for size in (64, MiB):
            assert rows[(key, size)]["status"] == "ok", rows[(key, size)]
    assert {r["system"] for r in doc["latency"] if r["status"] == "ok"} == {"ring", "queue",
                                                                           "mp-queue"}
    assert [r["status"] for r in doc["mpmc"]] == ["ok", "ok"]  # queue and mp-queue, 1P/1C
    by = {t["system"]: t for t in doc["targets"] if t["versus"] == ["mp-queue"]}
    assert all(by[k]["status"] in ("PASS", "MISS") for k in ("ring", "ring-batch", "queue"))
    prefix = f"mmapipc-bench-{doc['machine']['pid']}-"
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    assert not [p.name for p in shm.iterdir() if p.name.startswith(prefix)], "files left behind"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_leaves_no_children(tmp_path: Path) -> None:
    marker = f"ctrlc-{uuid.uuid4().hex}"
    out = tmp_path / f"{marker}.json"
    proc = subprocess.Popen(
        [sys.executable, str(ADVANCED), "--quick", "--sizes", "64", "--systems", "mp-queue,zmq",
         "--seconds", "5", "--no-progress", "--json", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # Wait until a run is under way (the harness has forked its producer and consumer).
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(children.read_text().split()) >= 2:
                break
        except OSError:
            pass
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        _stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _stdout, stderr = proc.communicate()
        pytest.fail(f"the harness did not stop within 60 s of Ctrl-C:\n{stderr}")
    assert proc.returncode == 130, stderr
    time.sleep(0.5)
    alive = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd:
            alive.append(pid)
    assert not alive, f"benchmark children still running: {alive}"


def test_misbehaving_system_fails_its_row(tmp_path: Path) -> None:
    """A system that loses messages is reported as an error row and exit status 3."""
    out = tmp_path / "lossy.json"
    env = _standin_env(tmp_path)
    env["STANDIN_DROP_EVERY"] = "50"
    res = _run([str(ADVANCED), "--smoke", "--sizes", "64", "--systems", "ring,mp-queue",
                "--no-memcpy", "--no-latency", "--mpmc", "", "--no-progress",
                "--json", str(out)], env=env)
    assert res.returncode == 3, res.stdout + res.stderr
    doc = json.loads(out.read_text())
    rows = {r["system"]: r for r in doc["throughput"]}
    assert rows["ring"]["status"] == "error"
    assert "expected message #49, received #50" in rows["ring"]["note"]
    assert rows["mp-queue"]["status"] == "ok"
    assert "error ring" in res.stdout



def _batch(n: int, k: int, size: int) -> list[bytes]:
    """Messages n .. n+k-1 as the harness's producers stamp them."""
    from _bench.common import STAMP

    out = []
    for i in range(n, n + k):
        m = bytearray(size)
        STAMP.pack_into(m, 0, i)
        if size >= 16:
            m[-1] = i & 0xFF
        out.append(bytes(m))
    return out


@pytest.mark.parametrize("size", [8, 64, 1000])
def test_batch_checker_catches_loss_duplication_reordering_and_tearing(size: int) -> None:
    pytest.importorskip("numpy")
    from _bench.common import STAMP, STOP, BenchError
    from _bench.systems import BatchChecker

    p = make_params(size, seconds=0.1, max_count=1000, max_bytes=1 << 20, stall=1.0, batch=64)
    check = BatchChecker(p).check
    good = _batch(100, 64, size)
    assert check(good, 100) == (64, False)
    stop = bytearray(size)
    STAMP.pack_into(stop, 0, STOP)
    assert check(good[:10] + [bytes(stop)], 100) == (10, True)
    lost = good[:20] + good[21:] + _batch(164, 1, size)  # one missing, count made up at the end
    dup = good[:20] + [good[19]] + good[21:]
    swapped = good[:20] + [good[21], good[20]] + good[22:]
    torn = list(good)
    # A message whose end (or, without a tail byte, whose stamp) is not what was sent.
    torn[30] = good[30][:-1] + b"\x00" if size >= 16 else b"\xff" + good[30][1:]
    late = _batch(101, 64, size)  # the whole batch shifted: message 100 lost
    for bad in (lost, dup, swapped, torn, late):
        with pytest.raises(BenchError):
            check(bad, 100)


@pytest.mark.parametrize("size", [8, 64, 1000])
def test_batch_stamper_stamps_every_message(size: int) -> None:
    # The stamper keeps blocks with pre-written tail bytes per batch start (n & 0xFF); every
    # batch, full or partial, cached or not, must carry exactly n, n+1, ... and their tail bytes.
    pytest.importorskip("numpy")
    from _bench.common import STAMP
    from _bench.systems import BatchChecker, BatchStamper

    p = make_params(size, seconds=0.1, max_count=1000, max_bytes=1 << 20, stall=1.0, batch=64)
    stamper, check = BatchStamper(p), BatchChecker(p).check
    n = 0
    for k in [p.batch] * 9 + [5, p.batch, 3]:  # wraps the tail byte twice; partial batches
        msgs = [bytes(v) for v in stamper.stamp(n, k)]
        assert len(msgs) == k
        for i, m in enumerate(msgs):
            assert len(m) == size and STAMP.unpack_from(m)[0] == n + i
            if size >= 16:
                assert m[-1] == (n + i) & 0xFF
        assert check(msgs, n) == (k, False)
        n += k


# ----------------------------------------------------------------------------------------------
# The shared run loops, in one process: fake ends over lists of messages.


def _consumer_end(kind: str, msgs: list[bytes], size: int) -> Any:
    """An end of ``kind`` that receives ``msgs`` in order (then nothing)."""
    it = iter(msgs)
    if kind == "stream":
        return base.Receiver("fake.recv", lambda _arg: next(it, None), False, wait=(True,))
    if kind == "into":
        def into(buf: Any, _arg: Any) -> Any:
            m = next(it)
            buf[: len(m)] = m
            return len(m)

        return base.IntoReceiver("fake.recv_into", into, False, wait=(True,),
                                 buf=bytearray(size))
    if kind == "first-view":  # a list of one view per call (queue-view)
        def first(_arg: Any, *_wait: Any) -> Any:
            m = next(it, None)
            return None if m is None else [memoryview(m)]

        return base.FirstViewReceiver("fake.get_view", first, False, wait=(True, 1.0))
    if kind == "views":  # batches of 3, checked one by one in place
        def views(*_args: Any) -> list[memoryview]:
            return [memoryview(m) for m in (next(it, None) for _ in range(3)) if m is not None]

        return base.BatchReceiver("fake.get_view", views, (True, 1.0),
                                  check=lambda m, n: batch.check_each(m, n, size, size >= 16))
    assert kind == "numbered"  # the stamp only (typed records)
    return base.NumberedReceiver("fake.recv", lambda: STAMP.unpack_from(next(it))[0])


@pytest.mark.parametrize("kind", ["stream", "into", "first-view", "views", "numbered"])
@pytest.mark.parametrize("size", [8, 64])
def test_consumer_loops_catch_loss_duplication_reordering_and_tearing(kind: str,
                                                                       size: int) -> None:
    p = make_params(size, seconds=1.0, max_count=100, max_bytes=1 << 20, stall=1.0)
    stop = bytes(bytearray(STAMP.pack(STOP)) + bytes(size - 8))
    good = _batch(0, 40, size)
    res = _consumer_end(kind, good + [stop], size).run(p, lambda: None)
    assert res["received"] == 40 and res["t_end"] >= res["t_warm"] > 0
    cases = {"lost": good[:20] + good[21:], "duplicated": good[:21] + good[20:],
             "reordered": good[:20] + [good[21], good[20]] + good[22:]}
    if size >= 16 and kind != "numbered":  # a tail byte to check
        cases["torn"] = good[:30] + [good[30][:-1] + b"\xee"] + good[31:]
    for what, msgs in cases.items():
        with pytest.raises(BenchError, match="message #"):
            _consumer_end(kind, msgs + [stop], size).run(p, lambda: None)
            pytest.fail(f"{kind} consumer accepted a {what} message")


def test_mpmc_consumer_catches_a_producer_out_of_order() -> None:
    p = make_params(64, seconds=1.0, max_count=100, max_bytes=1 << 20, stall=1.0)

    def stamped(*stamps: int) -> base.Receiver:
        it = iter([STAMP.pack(s) + bytes(56) for s in stamps])
        return base.Receiver("fake.get", lambda _arg: next(it), False)

    two = 2 << loops.PRODUCER_SHIFT
    ok = loops.mpmc_consumer(stamped(0, two, 1, two + 1, STOP), p, lambda: None)
    assert ok["received"] == 4  # interleaved producers, each in its own order
    with pytest.raises(BenchError, match="producer 2: message #0 after #1"):
        loops.mpmc_consumer(stamped(0, two + 1, two, STOP), p, lambda: None)


def test_the_idle_meter_sees_a_busy_loop_and_a_returned_wait() -> None:
    """The idle rows' measurement (``_bench.idle._measure``) on the loop of this process: a
    task that polls without waiting shows as CPU, a wait that returned fails the row."""
    import asyncio

    from _bench import idle

    async def poll() -> None:
        while True:
            sum(range(1000))
            await asyncio.sleep(0)

    async def busy() -> dict[str, Any]:
        return await idle._measure(0.3, [asyncio.ensure_future(poll())])

    res = asyncio.run(busy())
    # Far above the 1 % bound, yet low enough for a share of a loaded 2-core machine.
    assert res["cpu_s"] / res["wall_s"] > 0.05, res

    async def returned() -> None:
        await idle._measure(0.05, [asyncio.ensure_future(asyncio.sleep(0))])

    with pytest.raises(BenchError, match="1 of 1 idle waits returned"):
        asyncio.run(returned())


def test_timeouts_are_stalls_naming_the_peer() -> None:
    import queue

    def raises(*_: Any) -> None:
        raise queue.Empty

    p = make_params(64, seconds=1.0, max_count=100, max_bytes=1 << 20, stall=1.0)
    for end, want in (
        (base.Receiver("ring.read", lambda *_: None, False, wait=(True, 0.01)), "producer"),
        (base.Receiver("mp.get", raises, True, stalls=(queue.Empty,)), "producer"),
        (base.Sender("ring.write", lambda *_: False, False, wait=(True, 0.01)), "consumer"),
    ):
        with pytest.raises(Stalled, match=f"{end.name} timed out: {want} stalled"):
            end.run(p, lambda: None)


@pytest.mark.parametrize("size", [8, 64])
def test_producer_loops_send_every_stamp_then_stop(size: int) -> None:
    pytest.importorskip("numpy")
    p = make_params(size, seconds=60.0, max_count=300, max_bytes=1 << 20, stall=1.0, batch=64)
    sent: list[bytes] = []
    full = [True]

    def write(m: Any, block: bool) -> bool:  # full every other call: the blocking retry sends
        full[0] = not full[0]
        if full[0] and not block:
            return False
        sent.append(bytes(m))
        return True

    res = base.Sender("fake.write", write, False, wait=(True,)).run(p, lambda: None)

    def write_batch(msgs: list[Any], *_: Any) -> int:  # takes at most 5 per call
        sent.extend(bytes(m) for m in msgs[:5])
        return min(5, len(msgs))

    stamper = batch.BatchStamper(p)
    res_b = base.BatchSender("fake.write_batch", write_batch, (True, 1.0), stamper,
                             wait=(True, 1.0)).run(p, lambda: None)
    total = p.warm + p.count
    assert res["sent"] == res_b["sent"] == total
    want = _batch(0, total, size)
    stop = STAMP.pack(STOP)
    assert sent[:total] == want and sent[total].startswith(stop)
    assert sent[total + 1:total * 2 + 1] == want and sent[-1].startswith(stop)
    assert len(sent) == 2 * total + 2
