"""The command-line tool as installed by the Python package (console script and python -m)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mmapipc import SharedMemory, SharedMemoryQueue, SharedMemoryRing


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmapipc", *args], capture_output=True, text=True, timeout=60)


def test_python_m_mmapipc_inspects_a_live_region(tmp_path: Path) -> None:
    with SharedMemory.create(str(tmp_path / "r"), size=4242):
        out = run("inspect", "--json", str(tmp_path / "r"))
        assert out.returncode == 0, out.stderr
        info = json.loads(out.stdout)
        assert info["kind"] == "region" and info["data_size"] == 4242 and info["creator_alive"] is True
        listing = run("ls", str(tmp_path))
        assert " region " in listing.stdout and listing.stdout.rstrip().endswith("live")


_README_WRITER = """
import sys
from mmapipc import SharedMemory
with SharedMemory.create(sys.argv[1], size=1024) as shm:
    shm.write(0, b"Hello")
    shm.write_uint(100, 42)
"""


def test_the_original_readme_region_survives_doctor_between_writer_and_reader(tmp_path: Path) -> None:
    # The original README's SharedMemory example: process 1 writes and exits, process 2 reads.
    # A region has no owner, so its exited creator does not make it stale.
    path = str(tmp_path / "shm")
    subprocess.run([sys.executable, "-c", _README_WRITER, path], check=True, timeout=60)
    info = json.loads(run("inspect", "--json", path).stdout)
    assert info["kind"] == "region" and info["status"] == "idle" and info["creator_alive"] is False, info
    doctor = run("doctor", "--fix", "--remove-stale", str(tmp_path))
    assert doctor.returncode == 0 and "no problems" in doctor.stdout, doctor.stdout
    with SharedMemory.open(path) as shm:
        assert shm.read(0, 5) == b"Hello" and shm.read_uint(100) == 42


def test_console_script_is_installed() -> None:
    exe = shutil.which("mmapipc", path=os.path.dirname(sys.executable))
    assert exe is not None, "the mmapipc console script is not installed next to the interpreter"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # Every command of the Rust tool (mmapipc-cli) is listed: the script runs that crate's code.
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert {"ls", "inspect", "tail", "stat", "doctor", "schema"} <= listed, out.stdout


def test_usage_error_exit_code() -> None:
    assert run("no-such-command").returncode == 2


# Producer and consumer processes for the live-channel tests (run with ``python -c CODE PATH``).
_RING_PRODUCER = """
import sys, time
from mmapipc import SharedMemoryRing
ring = SharedMemoryRing.open(sys.argv[1])
i = 0
while True:
    ring.write(b"tick %d" % i, block=True, timeout=0.05)
    i += 1
    time.sleep(0.002)
"""
_RING_CONSUMER = """
import sys, time
from mmapipc import SharedMemoryRing
ring = SharedMemoryRing.open(sys.argv[1])
while True:
    view = ring.read_view(block=True, timeout=0.05)  # held (with the consumer role) until the next
    time.sleep(0.006)
"""
_QUEUE_PRODUCER = """
import sys, time
from mmapipc import SharedMemoryQueue
q = SharedMemoryQueue.open(sys.argv[1])
i = 0
while True:
    q.put(b"job %d" % i, timeout=0.05)
    i += 1
    time.sleep(0.002)
"""
_QUEUE_CONSUMER = """
import sys, time
from mmapipc import SharedMemoryQueue
q = SharedMemoryQueue.open(sys.argv[1])
while True:
    q.get(timeout=0.05)
    time.sleep(0.006)
"""


def _start(code: str, path: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_flowing(path: str, procs: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        for p in procs:
            assert p.poll() is None, p.stderr.read().decode() if p.stderr else "peer exited"
        info: dict[str, Any] = json.loads(run("inspect", "--json", path).stdout)
        live = info["live"]
        if live["counters"]["messages_out"] > 5 and live["pending_messages"] > 0 and len(info["mapped_by"]) >= 2:
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.05)


def _kill(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def _check_live_and_stale(path: str, producer: str, consumer: str, prefix: str, after: str) -> None:
    procs = [_start(producer, path), _start(consumer, path)]
    try:
        info = _wait_flowing(path, procs)
        pids = {p.pid for p in procs}
        assert pids <= set(info["mapped_by"]), info
        assert info["status"] == "live"
        directory = os.path.dirname(path)
        listing = run("ls", directory)
        line = next(ln for ln in listing.stdout.splitlines() if os.path.basename(path) in ln)
        assert line.endswith("live"), line
        text = run("inspect", path).stdout
        assert "messages in" in text and "mapped by       pids" in text, text
        tail = run("tail", "-n", "3", path)
        assert tail.returncode == 0, tail.stderr
        shown = [json.loads(ln) for ln in tail.stdout.splitlines()]
        assert 1 <= len(shown) <= 3 and all(m["utf8"].startswith(prefix) for m in shown), shown
        stat = run("stat", "--interval", "0.2", "--count", "2", path)
        assert stat.returncode == 0, stat.stderr
        rows = stat.stdout.splitlines()
        assert len(rows) == 3 and rows[0].split()[:3] == ["TIME", "MSG/S", "IN"], rows
        assert float(rows[2].split()[1]) > 0, rows
        assert run("doctor", directory).returncode == 0
    finally:
        _kill(procs)
    # Every process that used it is dead (the creator, this test, no longer maps it).
    stale = json.loads(run("inspect", "--json", path).stdout)
    assert stale["mapped_by"] == [] and stale["status"] == after, stale
    doctor = run("doctor", os.path.dirname(path))
    assert doctor.returncode == (1 if after == "stale" else 0), doctor.stdout
    fixed = run("doctor", "--fix", "--remove-stale", os.path.dirname(path))
    assert fixed.returncode == 0, fixed.stdout


def test_console_script_on_a_live_ring(tmp_path: Path) -> None:
    path = str(tmp_path / "ring")
    SharedMemoryRing.create(path, 1 << 16).close()
    # Roles are held per call: the killed consumer dies holding a read_view (which keeps the
    # consumer role; the ring always has messages waiting), so its pid stays in the attach word.
    # Stale.
    _check_live_and_stale(path, _RING_PRODUCER, _RING_CONSUMER, "tick ", "stale")
    assert not os.path.exists(path), "the stale ring was removed by doctor --fix --remove-stale"


def test_console_script_on_a_live_queue(tmp_path: Path) -> None:
    path = str(tmp_path / "queue")
    SharedMemoryQueue.create(path, 1 << 16).close()
    # A queue records no attached processes; its creator (this test) still runs: idle, kept.
    _check_live_and_stale(path, _QUEUE_PRODUCER, _QUEUE_CONSUMER, "job ", "idle")
    assert os.path.exists(path)
