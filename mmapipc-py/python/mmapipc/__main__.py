"""``python -m mmapipc`` and the ``mmapipc`` console script: the command-line tool
(``ls``, ``inspect``, ``tail``, ``stat``, ``doctor``, ``schema export``), implemented in Rust
(the ``mmapipc-cli`` crate)."""

from __future__ import annotations

import sys

from ._mmapipc import cli_main


def main() -> int:
    """Runs the tool with this process's arguments and returns its exit code."""
    sys.stdout.flush()
    return cli_main(["mmapipc", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
