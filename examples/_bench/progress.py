"""A small progress bar on stderr (redrawn in place on a terminal, one line per step otherwise)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total = max(1, total)
        self.done = 0
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()

    def _line(self, label: str) -> str:
        width = 28
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        elapsed = time.monotonic() - self.t0
        eta = ""
        if 0 < self.done < self.total:
            eta = f" eta {elapsed / self.done * (self.total - self.done):4.0f}s"
        return f"[{bar}] {self.done:3d}/{self.total} {elapsed:5.0f}s{eta}  {label}"

    def start(self, label: str) -> None:
        """Show what is running now."""
        if self.enabled and self.tty:
            self.stream.write("\r\x1b[K" + self._line(label))
            self.stream.flush()

    def step(self, label: str) -> None:
        """One unit of work finished."""
        self.done += 1
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + self._line(label))
        else:
            self.stream.write(self._line(label) + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A message that must stay on screen (a skip, an error)."""
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
