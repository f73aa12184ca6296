"""Fencing: the newest instance on a data folder holds its trading lease; an older one still running
(its node cut off from the cluster, its replacement already started on the same data) must stop
dispatching. The lease lives beside the WAL: a replacement that replays the WAL necessarily sees the
same folder, so it sees the lease too."""
from __future__ import annotations

import json
import os
from pathlib import Path

LEASE_FILE = "trading.lease"


class TradingLease:
    """``take()`` at start makes this instance the holder; ``held()`` before each dispatch says whether
    it still is (re-read only when the file changed: one ``stat`` per order)."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        self.path = Path(data_dir) / LEASE_FILE
        self.holder = holder
        self._seen: tuple[int, int] | None = None
        self._held = False
        self.taken_over_by: str | None = None

    def take(self) -> int:
        """Become the holder (epoch: the previous one + 1); returns the epoch."""
        try:
            epoch = int(json.loads(self.path.read_text()).get("epoch", 0)) + 1
        except (OSError, ValueError, AttributeError):
            epoch = 1
        tmp = self.path.with_name(f".{LEASE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"holder": self.holder, "epoch": epoch, "pid": os.getpid()}))
        os.replace(tmp, self.path)   # atomic: a reader sees the old holder or the new one, never half
        self._seen, self._held = None, True
        return epoch

    def held(self) -> bool:
        """True while the lease file still names this instance. Once another instance took it, False
        for good (the newer instance owns the account)."""
        if not self._held:
            return False
        try:
            st = self.path.stat()
        except OSError:
            return True   # the folder is unreadable: the WAL's own checks fail closed on that
        key = (st.st_mtime_ns, st.st_ino)
        if key != self._seen:
            self._seen = key
            try:
                holder = json.loads(self.path.read_text()).get("holder")
            except (OSError, ValueError, AttributeError):
                return True   # mid-replace on a filesystem without atomic rename: read again next time
            if holder != self.holder:
                self._held, self.taken_over_by = False, str(holder)
        return self._held
