"""The command-line tool as installed by the Python package (console script and python -m)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mmapipc import SharedMemory


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmapipc", *args], capture_output=True, text=True, timeout=60)


def test_python_m_mmapipc_inspects_a_live_region(tmp_path: Path) -> None:
    with SharedMemory.create(str(tmp_path / "r"), size=4242):
        out = run("inspect", "--json", str(tmp_path / "r"))
        assert out.returncode == 0, out.stderr
        info = json.loads(out.stdout)
        assert info["kind"] == "shm" and info["data_size"] == 4242 and info["creator_alive"] is True
        listing = run("ls", str(tmp_path))
        assert "shm" in listing.stdout and "alive" in listing.stdout


def test_console_script_is_installed() -> None:
    exe = shutil.which("mmapipc", path=os.path.dirname(sys.executable))
    assert exe is not None, "the mmapipc console script is not installed next to the interpreter"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "inspect" in out.stdout


def test_usage_error_exit_code() -> None:
    assert run("no-such-command").returncode == 2
