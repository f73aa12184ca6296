"""File faults (``file.stop``): the target's control files, proved by the file on disk."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..backends.base import EXIT, START
from ..timeline import utc_now
from .base import FaultNotLanded, Trigger, known_params


class StopFile(Trigger):
    """Create the target's STOP control file; proof is the file on disk with its creation time."""

    kind = "file.stop"
    manages_target = True
    requires = frozenset({START, EXIT})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return known_params(params, {})

    @classmethod
    def needs(cls, params: dict[str, Any]) -> list[str]:
        return ["files.stop"]

    def fire(self) -> dict[str, Any]:
        path = Path(self.ctx.rendered.files.get("stop", ""))
        if not path.name:
            raise FaultNotLanded("the target file declares no 'files.stop' path; the STOP drill cannot run")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.created_mono = time.monotonic()
        self.created_utc = utc_now()
        path.write_text(f"stop requested by pytest-chaosdrill at {self.created_utc}\n", encoding="utf-8")
        return {"file": str(path), "created_utc": self.created_utc}

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        # The file lands when it exists on the filesystem the target reads; the target may consume it.
        st = os.stat(self.path) if self.path.exists() else None
        self.landed_mono = self.created_mono
        self.proof = {"file": str(self.path), "created_utc": self.created_utc, "created_mono": self.created_mono,
                      "exists_after_write": st is not None}
        self.ctx.expect_downtime(True)
        return self.proof
