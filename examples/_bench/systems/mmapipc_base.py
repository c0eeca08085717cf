"""What mmapipc's systems share: the class they need, and a fresh shared-memory file per run."""

from __future__ import annotations

import os
from typing import Any, Optional

from ..common import BenchError, Params, shm_dir, unique_name
from .base import System, optional


class MmapipcSystem(System):
    """A system on one of mmapipc's classes (``cls_name``), with the methods in ``needs``."""

    family = "mmapipc"
    cls_name = ""
    needs: tuple[str, ...] = ()

    def cls(self) -> Any:
        mod = optional("mmapipc")
        return None if mod is None else getattr(mod, self.cls_name, None)

    def open(self, h: str) -> Any:
        return self.cls().open(h)

    def unavailable(self) -> Optional[str]:
        if optional("mmapipc") is None:
            return "mmapipc is not installed (pip install -e .)"
        c = self.cls()
        if c is None:
            return f"mmapipc.{self.cls_name} is not available in this build"
        missing = [m for m in self.needs if not hasattr(c, m)]
        if missing:
            return f"mmapipc.{self.cls_name} has no {', '.join(missing)} in this build"
        return None

    def setup(self, p: Params) -> Any:
        tag = self.cls_name.lower()
        path = os.path.join(shm_dir(), unique_name(tag))
        obj = self.cls().create(path, p.capacity)
        try:
            mms = getattr(obj, "max_message_size", None)
            if isinstance(mms, int) and p.size > mms:
                raise BenchError(
                    f"{p.size} B messages exceed max_message_size {mms} of a {p.capacity} B {tag}"
                )
        finally:
            obj.close()
        return path

    def teardown(self, h: Any) -> None:
        try:
            os.unlink(h)
        except FileNotFoundError:
            pass
