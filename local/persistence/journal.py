"""How the sandboxes' in-memory state reaches the disk: each sandbox keeps all its data behind
one re-entrant lock, so the lock is swapped for a `JournalLock` whose outermost release writes
what changed while it was held, in one commit, before any other thread can see (or answer
about) the change. What changed is named by `Journal.touch`; an image equal to the one last
written is skipped, so touching an object that did not change costs a serialisation only.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from local.persistence.store import StateStore

Key = tuple[str, str]  # scope, key
Image = Callable[[], str | None]  # the object's JSON now, or None when it is gone


class Journal:
    """What the current lock holder changed, and the digests of what is on disk."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        # Called first thing in every flush, to touch what is found by looking (a list's tail).
        self.before_flush: list[Callable[[], None]] = []
        self._pending: dict[Key, Image] = {}
        self._drops: list[str] = []
        self._written: dict[Key, bytes] = {}  # digest of the image last written

    def touch(self, scope: str, key: str, image: Image) -> None:
        """`key` of `scope` may have changed; `image` serialises it at flush time."""
        self._pending[(scope, key)] = image

    def drop(self, scope: str) -> None:
        """Every row of `scope` goes (a sandbox reset); touches made after still count."""
        self._drops.append(scope)
        for written in [k for k in self._written if k[0] == scope]:
            del self._written[written]
        for pending in [k for k in self._pending if k[0] == scope]:
            del self._pending[pending]

    def written_keys(self, scope: str) -> set[str]:
        """The keys of `scope` on disk, as far as this journal wrote or saw them."""
        return {key for s, key in self._written if s == scope}

    def seen(self, scope: str, key: str, value: str) -> None:
        """`value` is on disk already (restored at start)."""
        self._written[(scope, key)] = _digest(value)

    def flush(self, extra: list[tuple[str, str, str]] | None = None) -> None:
        """Write what changed, with `extra` rows (written as they are, not remembered), in one
        commit."""
        for hook in self.before_flush:
            hook()
        if not self._pending and not self._drops and not extra:
            return
        puts: list[tuple[str, str, str]] = list(extra or [])
        deletes: list[tuple[str, str]] = []
        digests: dict[Key, bytes | None] = {}
        for (scope, key), image in self._pending.items():
            value = image()
            if value is None:
                if (scope, key) in self._written:
                    deletes.append((scope, key))
                    digests[(scope, key)] = None
                continue
            digest = _digest(value)
            if self._written.get((scope, key)) != digest:
                puts.append((scope, key, value))
                digests[(scope, key)] = digest
        drops, self._drops = self._drops, []
        self._pending.clear()
        self.store.write(puts, deletes, drops)
        for written, known in digests.items():
            if known is None:
                self._written.pop(written, None)
            else:
                self._written[written] = known


def _digest(value: str) -> bytes:
    return hashlib.blake2b(value.encode(), digest_size=16).digest()


class JournalLock:
    """A re-entrant lock that flushes its journal when the outermost holder lets go.

    It stands in for a sandbox's `threading.RLock` (same acquire/release/context manager).
    The flush runs while the lock is still held, so disk order is the order of the changes."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._lock = threading.RLock()
        self._depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        taken = self._lock.acquire(blocking, timeout)
        if taken:
            self._depth += 1
        return taken

    def release(self) -> None:
        if self._depth == 1:
            try:
                self.journal.flush()
            finally:
                self._depth = 0
                self._lock.release()
            return
        self._depth -= 1
        self._lock.release()

    def owned(self) -> bool:
        """Whether the calling thread holds the lock."""
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class TouchDict(dict[str, Any]):
    """A dict that reports every key looked up or stored to `on_touch`: what is read under a
    sandbox's lock may be changed in place, so it is compared with its saved image on flush."""

    def __init__(self, on_touch: Callable[[str], None], *args: Any) -> None:
        super().__init__(*args)
        self._on_touch = on_touch

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        self._on_touch(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            self._on_touch(key)
        return super().get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._on_touch(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._on_touch(key)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self._on_touch(key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._on_touch(key)
        return super().setdefault(key, default)
