"""Fencing: the newest instance on the data folder holds ``trading.lease``; an older one still running
(replaced while its node was cut off) sees another holder and never sends an order again."""
from __future__ import annotations

import json
import os
from pathlib import Path


class Lease:
    def __init__(self, data: Path, holder: str) -> None:
        self.path, self.holder, self.lost_to = data / "trading.lease", holder, None
        self._stat: tuple[int, int] | None = None

    def take(self) -> None:
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"holder": self.holder}), encoding="utf-8")
        os.replace(tmp, self.path)

    def held(self) -> bool:
        """Whether the file still names this instance (re-read only when it changed)."""
        if self.lost_to is not None:
            return False
        try:
            st = self.path.stat()
            key = (st.st_mtime_ns, st.st_ino)
            if key != self._stat:
                self._stat = key
                holder = json.loads(self.path.read_text(encoding="utf-8")).get("holder")
                if holder != self.holder:
                    self.lost_to = str(holder)
        except (OSError, ValueError):
            pass   # unreadable for a moment: the WAL's own checks fail closed on a broken folder
        return self.lost_to is None
