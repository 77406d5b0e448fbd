"""The Stripe sandbox's data on disk: every object (accounts, checkout sessions, payment
intents, charges, refunds, disputes), the sessions' line items and intent data, the Account
Links (their onboarding tokens), the events
with their delivery attempts, and the idempotency cache (a replay after a restart answers the
same bytes).

The sandbox changes its objects in place, always under its one lock, after looking them up in
its dicts. So `attach` makes those dicts report every key looked up or stored under the lock,
swaps the lock for a `JournalLock`, and on the outermost release writes the looked-up objects
whose JSON changed, and the events added since, in one commit, before the sandbox answers.
Ids are random (as Stripe's), so there is no counter to keep. Not kept: the delivery pause
switch (a test control) and the webhook URL and secret, which the stack gives at each start.
"""

from __future__ import annotations

import json
from typing import Any

from local.persistence.journal import Journal, JournalLock, TouchDict
from local.stripe_sandbox.server import StripeSandbox
from local.stripe_sandbox.state import Event, Replay, SandboxState

OBJECT = "stripe/object"
LINE_ITEMS = "stripe/line_items"
INTENT_DATA = "stripe/intent_data"
SESSION_OF = "stripe/session_of"
ACCOUNT_LINKS = "stripe/account_links"
IDEMPOTENCY = "stripe/idempotency"
EVENT = "stripe/event"
DICTS = {
    "objects": OBJECT,
    "line_items": LINE_ITEMS,
    "intent_data": INTENT_DATA,
    "session_of": SESSION_OF,
    "account_links": ACCOUNT_LINKS,
    "idempotency": IDEMPOTENCY,
}


def _dump_replay(replay: Replay) -> str:
    return json.dumps(
        {
            "route": replay.route,
            "params": replay.params,
            "status": replay.status,
            "body": replay.body.decode(),
            "request_id": replay.request_id,
        },
        sort_keys=True,
    )


def _load_replay(raw: str) -> Replay:
    saved = json.loads(raw)
    return Replay(
        saved["route"],
        saved["params"],
        saved["status"],
        saved["body"].encode(),
        saved["request_id"],
    )


def _dump_event(event: Event) -> str:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "body": event.body.decode(),
            "deliveries": event.deliveries,
        },
        sort_keys=True,
    )


def _load_event(raw: str) -> Event:
    saved = json.loads(raw)
    return Event(saved["id"], saved["type"], saved["body"].encode(), saved["deliveries"])


def _image(scope: str, value: Any) -> str | None:
    if value is None:
        return None
    if scope == IDEMPOTENCY:
        return _dump_replay(value)
    return json.dumps(value, sort_keys=True)


class StripePersistence:
    def __init__(self, sandbox: StripeSandbox, journal: Journal) -> None:
        self.sandbox = sandbox
        self.state: SandboxState = sandbox.state
        self.journal = journal
        self.lock = JournalLock(journal)
        self._events_saved = 0
        self._event_index: dict[str, int] = {}

    # -- restoring ----------------------------------------------------------------------------

    def restore(self) -> None:
        store, state = self.journal.store, self.state
        for attribute, scope in DICTS.items():
            restored: dict[str, Any] = {}
            for key, raw in store.load(scope):
                restored[key] = _load_replay(raw) if scope == IDEMPOTENCY else json.loads(raw)
                self.journal.seen(scope, key, raw)
            setattr(state, attribute, restored)
        for key, raw in store.load(EVENT):
            self._event_index[json.loads(raw)["id"]] = len(state.events)
            state.events.append(_load_event(raw))
            self.journal.seen(EVENT, key, raw)
        self._events_saved = len(state.events)

    def owed(self) -> list[Event]:
        """Events that no delivery was ever tried for: the stack was stopped between a change
        and its webhooks. Stripe retries such events; the stack sends them once it is up."""
        with self.state.lock:
            return [event for event in self.state.events if not event.deliveries]

    # -- saving -------------------------------------------------------------------------------

    def _track(self) -> None:
        """Make the state's dicts report what is looked up or stored under the lock."""
        for attribute, scope in DICTS.items():
            current = getattr(self.state, attribute)
            setattr(self.state, attribute, TouchDict(self._toucher(attribute, scope), current))

    def _toucher(self, attribute: str, scope: str) -> Any:
        state, journal, lock = self.state, self.journal, self.lock

        def touched(key: str) -> None:
            if not lock.owned():
                return  # a read outside the lock changes nothing
            journal.touch(scope, key, lambda: _image(scope, getattr(state, attribute).get(key)))

        return touched

    def _new_events(self) -> None:
        events = self.state.events
        for index in range(self._events_saved, len(events)):
            self._event_index[events[index].id] = index
            self._touch_event(index)
        self._events_saved = len(events)

    def _touch_event(self, index: int) -> None:
        events = self.state.events
        self.journal.touch(EVENT, f"{index:010d}", lambda: _dump_event(events[index]))

    def attach(self) -> None:
        self.restore()
        state = self.state
        state.lock = self.lock  # type: ignore[assignment]
        self._track()
        self.journal.before_flush.append(self._new_events)
        reset = state.reset

        def reset_and_forget() -> None:
            with state.lock:
                reset()
                for scope in (*DICTS.values(), EVENT):
                    self.journal.drop(scope)
                self._events_saved = 0
                self._event_index.clear()
                self._track()

        state.reset = reset_and_forget  # type: ignore[method-assign]
        deliverer = self.sandbox.deliverer
        send = deliverer.send

        def send_and_save(event: Event) -> Any:
            record = send(event)
            with state.lock:  # the attempt was appended under the lock; save it
                index = self._event_index.get(event.id)
                if index is not None:
                    self._touch_event(index)
            return record

        deliverer.send = send_and_save  # type: ignore[method-assign]


def attach(sandbox: StripeSandbox, journal: Journal) -> StripePersistence:
    """Restore the saved sandbox into `sandbox` (new, not serving yet) and save every change
    from now on."""
    persistence = StripePersistence(sandbox, journal)
    persistence.attach()
    return persistence


def snapshot(state: SandboxState) -> dict[str, Any]:
    """Everything kept, as plain data: tests compare a restored sandbox with the original."""
    with state.lock:
        return {
            "objects": json.loads(json.dumps(dict(state.objects))),
            "line_items": json.loads(json.dumps(dict(state.line_items))),
            "intent_data": json.loads(json.dumps(dict(state.intent_data))),
            "session_of": dict(state.session_of),
            "account_links": json.loads(json.dumps(dict(state.account_links))),
            "idempotency": {k: _dump_replay(v) for k, v in state.idempotency.items()},
            "events": [_dump_event(e) for e in state.events],
        }
