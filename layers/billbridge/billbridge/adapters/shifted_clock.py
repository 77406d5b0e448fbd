"""The clock of the local stack: the real UTC time plus an offset kept in a small JSON file
(`{"offset_seconds": number}`), which the local stack's clock control writes.

Only the local stack sets `LOCAL_CLOCK_FILE`; in AWS the clock is the real one. Every worker
process of every function, and both sandboxes, read the same file, so one move of the clock
reaches them all at once, and the file (in the stack's state folder) survives a restart.

The file is replaced by rename, never written in place, so a reader sees the old offset or the
new one, never half of either. Reads are cached by the file's identity (inode, size, mtime):
a clock read costs one `stat`.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path


def read_offset(path: Path) -> float:
    """The offset in seconds the file holds; 0 when there is no file or it is unreadable (a
    clock that cannot be read must not stop the functions: it is then the real one)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        value = float(raw["offset_seconds"])
    except (OSError, ValueError, TypeError, KeyError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def write_offset(path: Path, offset_seconds: float) -> None:
    """Replace the file atomically (write a sibling, then rename over it)."""
    if not math.isfinite(offset_seconds):
        raise ValueError("the clock's offset must be a finite number of seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps({"offset_seconds": offset_seconds}), encoding="utf-8")
    os.replace(partial, path)


class ShiftedClock:
    """A `Clock` (callable answering an aware UTC datetime): now plus the file's offset."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._seen: tuple[int, int, int] | None = None
        self._offset = 0.0

    def offset_seconds(self) -> float:
        try:
            st = os.stat(self._path)
            identity: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            identity = None
        if identity != self._seen:
            self._offset = read_offset(self._path) if identity is not None else 0.0
            self._seen = identity
        return self._offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset_seconds())

    def timestamp(self) -> float:
        """Now as a Unix time (what the sandboxes and the Clio client count in)."""
        return self().timestamp()
