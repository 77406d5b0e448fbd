"""What the local stack keeps between runs, in one folder (`.local/` at the repository's root,
or `LOCAL_STATE_DIR`): the AWS emulator's data, both sandboxes' data and the stack's own notes
(was the demo firm seeded). Written as it changes, one commit per change, so a killed stack
loses nothing it had answered; read back at start. docs/local-stack.md says what is kept and
what is not.

The stack uses it in this order (see `local/stack.py`):
    saved = LocalState.open(state_dir(), fresh=...)
    saved.restore_aws()            # after moto starts, before provisioning
    saved.attach_clio(clio)        # before the Clio sandbox serves
    saved.attach_stripe(stripe)    # before the Stripe sandbox serves
    provision(...)                 # create what is missing: same names, same ARNs
    saved.restore_tables()         # items back into the template's tables, before the API
    saved.send_owed_webhooks(stripe)   # once the API listens
    ...
    saved.close()                  # last step of the stop sequence
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from local.clio_sandbox import ClioSandbox
from local.persistence import clio, stripe
from local.persistence.aws import AwsPersistence
from local.persistence.journal import Journal
from local.persistence.store import StateError, StateStore, wipe
from local.stripe_sandbox import StripeSandbox

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".local"
STACK = "stack"  # the stack's own notes

__all__ = ["DEFAULT_DIR", "LocalState", "StateError", "state_dir"]


def state_dir() -> Path:
    """Where the state lives: `LOCAL_STATE_DIR`, else `.local/` at the repository's root."""
    configured = os.environ.get("LOCAL_STATE_DIR")
    return Path(configured).expanduser().resolve() if configured else DEFAULT_DIR


class LocalState:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        # Nothing saved yet: a first start (or one after the clean-start switch).
        self.clean = store.is_empty()
        self.aws = AwsPersistence(store)
        self._stripe: stripe.StripePersistence | None = None
        self._installed = False

    @classmethod
    def open(cls, directory: Path, *, fresh: bool = False) -> LocalState:
        if fresh:
            wipe(directory)
        return cls(StateStore(directory))

    @property
    def directory(self) -> Path:
        return self.store.directory

    # -- the stack's notes --------------------------------------------------------------------

    def note(self, key: str) -> Any:
        raw = self.store.get(STACK, key)
        return None if raw is None else json.loads(raw)

    def write_note(self, key: str, value: Any) -> None:
        self.store.write([(STACK, key, json.dumps(value))])

    # -- the parts ----------------------------------------------------------------------------

    def restore_aws(self) -> None:
        """KMS keys, secrets and SES (identities, the outbox) back into moto, and every write
        to moto saved from now on. Call once moto runs in this process, before provisioning."""
        self.aws.restore_services()
        self.aws.install()
        self._installed = True

    def restore_tables(self) -> dict[str, int]:
        """The saved items back into the tables provisioning made; {table: items}."""
        return self.aws.restore_tables()

    def attach_clio(self, sandbox: ClioSandbox) -> None:
        clio.attach(sandbox.state, self.store)

    def attach_stripe(self, sandbox: StripeSandbox) -> None:
        self._stripe = stripe.attach(sandbox, Journal(self.store))

    def send_owed_webhooks(self, sandbox: StripeSandbox) -> int:
        """Deliver the Stripe events a stop cut off before their first delivery (Stripe
        retries those); the API deduplicates events, so a repeat changes nothing."""
        if self._stripe is None:
            return 0
        owed = self._stripe.owed()
        if owed:
            sandbox.deliverer.expect()
            sandbox.deliverer.deliver_later(owed)
        return len(owed)

    def close(self) -> None:
        """The stop sequence's last step: every change is committed already; this folds the
        write-ahead log into the database, closes it and frees the folder. Idempotent."""
        if self._installed:
            self.aws.uninstall()
            self._installed = False
        self.store.close()
