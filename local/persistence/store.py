"""The local stack's state on disk: one SQLite database in WAL mode, rows of JSON text keyed by
(scope, key), and the lock file that keeps a second stack off the same folder.

Every `write` is one transaction, committed before it returns. With WAL and
`synchronous=NORMAL` a commit is in the operating system's hands when `write` returns, so a
killed process (SIGKILL, a crash) loses nothing it committed; only a power cut or kernel crash
may lose the last commits (never corrupting the file). One connection serves every thread,
under one lock: writes are small (an item, a bill, an event) and the commit is cheap.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import IO

# Bump when the layout of the rows changes; an older folder is refused, not misread.
SCHEMA_VERSION = 1
DB_NAME = "state.sqlite3"
LOCK_NAME = "lock"

Put = tuple[str, str, str]  # scope, key, JSON value
Delete = tuple[str, str]  # scope, key


class StateError(RuntimeError):
    """The state folder cannot be used (another stack holds it, or another schema wrote it)."""


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = _take_folder(directory)
        path = directory / DB_NAME
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables and version != SCHEMA_VERSION:
            self._db.close()
            raise StateError(
                f"{path} was written by another version of the local stack (schema {version}, "
                f"this one reads {SCHEMA_VERSION}); start clean with `make run FRESH=1`"
            )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rows (scope TEXT NOT NULL, key TEXT NOT NULL, "
            "value TEXT NOT NULL, PRIMARY KEY (scope, key)) WITHOUT ROWID"
        )
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._lock = threading.Lock()
        self._closed = False
        self._warned = False
        self.writes = 0  # commits so far (benchmarks and tests read it)

    # -- writing ------------------------------------------------------------------------------

    def write(
        self,
        puts: Iterable[Put] = (),
        deletes: Iterable[Delete] = (),
        drop_scopes: Iterable[str] = (),
    ) -> None:
        """Apply the changes in one transaction (drops first, then deletes, then puts)."""
        puts, deletes, drop_scopes = list(puts), list(deletes), list(drop_scopes)
        if not (puts or deletes or drop_scopes):
            return
        with self._lock:
            if self._closed:
                self._warn_closed()
                return
            self._db.execute("BEGIN")
            try:
                for scope in drop_scopes:
                    self._db.execute("DELETE FROM rows WHERE scope = ?", (scope,))
                if deletes:
                    self._db.executemany("DELETE FROM rows WHERE scope = ? AND key = ?", deletes)
                if puts:
                    self._db.executemany(
                        "INSERT INTO rows (scope, key, value) VALUES (?, ?, ?) "
                        "ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value",
                        puts,
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.writes += 1

    def _warn_closed(self) -> None:
        # Only work still running after the stop sequence closed the state gets here; nothing
        # it does was answered to anyone.
        if not self._warned:
            self._warned = True
            print("local state is closed: a late change was not saved", file=sys.stderr)

    # -- reading ------------------------------------------------------------------------------

    def load(self, scope: str) -> list[tuple[str, str]]:
        """(key, value) rows of one scope, in key order."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT key, value FROM rows WHERE scope = ? ORDER BY key", (scope,)
            )
            return [(str(k), str(v)) for k, v in cursor.fetchall()]

    def get(self, scope: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM rows WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
        return None if row is None else str(row[0])

    def scopes(self, prefix: str) -> list[str]:
        """Every scope that starts with `prefix`, sorted."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT DISTINCT scope FROM rows WHERE substr(scope, 1, ?) = ? ORDER BY scope",
                (len(prefix), prefix),
            )
            return [str(row[0]) for row in cursor.fetchall()]

    def is_empty(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is None

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Fold the WAL into the database file and let the folder go. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    @property
    def closed(self) -> bool:
        return self._closed


def _take_folder(directory: Path) -> IO[str]:
    handle = open(directory / LOCK_NAME, "a+", encoding="utf-8")  # held open: it is the lock
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateError(
            f"another local stack is using {directory}; stop it first, or give this one its "
            "own folder with LOCAL_STATE_DIR"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def wipe(directory: Path) -> None:
    """Remove the state files of a folder (the clean-start switch). The folder must not be in
    use; other files in it are left alone."""
    if not directory.exists():
        return
    lock = _take_folder(directory)
    try:
        # clock.json: the local clock's offset (local/clock.py) starts again from the real time.
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "clock.json"):
            (directory / name).unlink(missing_ok=True)
    finally:
        lock.close()
