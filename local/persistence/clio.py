"""The Clio sandbox's data on disk: accounts, contacts, matters, bills, webhooks (and what each
last delivered per bill), OAuth codes, access and refresh tokens, the webhook delivery log,
the id counters and the clock's last stamp.

`attach` puts the saved rows back into a new sandbox's (empty) state, then wraps the state's
changing methods so each names what it changed on the journal, and swaps the state's lock for
a `JournalLock`: the change reaches the disk, in one commit, when the outermost holder of the
lock lets go, before the sandbox answers. Rate-limit windows, injected faults and request
statistics are test controls and start afresh.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from local.clio_sandbox.state import (
    Account,
    AuthCode,
    Bill,
    Contact,
    Matter,
    OutgoingHook,
    SandboxState,
    Token,
    Webhook,
)
from local.persistence.journal import Journal, JournalLock
from local.persistence.store import StateStore

ACCOUNT = "clio/account"
CONTACT = "clio/contact"
MATTER = "clio/matter"
BILL = "clio/bill"
WEBHOOK = "clio/webhook"
WEBHOOK_SENT = "clio/webhook_sent"  # webhook/bill -> the watched fields last delivered
CODE = "clio/code"
TOKEN = "clio/token"
REFRESH = "clio/refresh"
DELIVERY = "clio/delivery"
META = "clio/meta"
SCOPES = (ACCOUNT, CONTACT, MATTER, BILL, WEBHOOK, WEBHOOK_SENT, CODE, TOKEN, REFRESH, DELIVERY)


def _id(number: int) -> str:
    return f"{number:012d}"  # keys sort as the numbers do


# -- dataclasses to JSON and back ---------------------------------------------------------------


def _time_kind(annotation: Any) -> type | None:
    options = typing.get_args(annotation) or (annotation,)
    for kind in (datetime, date):  # datetime first: it is a date too
        if kind in options:
            return kind
    return None


def _dump(obj: Any, skip: tuple[str, ...] = ()) -> str:
    out: dict[str, Any] = {}
    for field in fields(obj):
        if field.name in skip:
            continue
        value = getattr(obj, field.name)
        out[field.name] = value.isoformat() if isinstance(value, date) else value
    return json.dumps(out, sort_keys=True)


def _load(cls: type, raw: str, **extra: Any) -> Any:
    data = json.loads(raw)
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        kind = _time_kind(hints[name])
        if value is not None and kind is not None:
            data[name] = kind.fromisoformat(value)  # type: ignore[attr-defined]
    return cls(**data, **extra)


def _dump_webhook(hook: Webhook) -> str:
    return _dump(hook, skip=("spec", "last_sent"))


# -- restoring ----------------------------------------------------------------------------------


def restore(state: SandboxState, store: StateStore, journal: Journal) -> None:
    """Fill an empty sandbox state from the store; every restored row is marked as on disk."""

    def rows(scope: str) -> list[tuple[str, str]]:
        loaded = store.load(scope)
        for key, value in loaded:
            journal.seen(scope, key, value)
        return loaded

    for _, raw in rows(ACCOUNT):
        account = _load(Account, raw)
        state.accounts[account.name] = account
        state._bill_ids[account.name] = []
    for _, raw in rows(CONTACT):
        contact = _load(Contact, raw)
        state.contacts[contact.id] = contact
        state._contact_by_name[(contact.account, contact.name)] = contact.id
    for _, raw in rows(MATTER):
        matter = _load(Matter, raw)
        state.matters[matter.id] = matter
        state._matter_by_number[(matter.account, matter.display_number)] = matter.id
    for _, raw in rows(BILL):  # in id order, so each account's id list stays sorted
        bill = _load(Bill, raw)
        state.bills[bill.id] = bill
        state._bill_ids[bill.account].append(bill.id)
    for _, raw in rows(WEBHOOK):
        saved = json.loads(raw)
        spec = state._webhook_spec(saved["model"], saved["fields"])
        hook = _load(Webhook, raw, spec=spec)
        state.webhooks[hook.id] = hook
    for key, raw in rows(WEBHOOK_SENT):
        webhook_id, bill_id = (int(part) for part in key.split("/"))
        state.webhooks[webhook_id].last_sent[bill_id] = json.loads(raw)
    for _, raw in rows(CODE):
        code = _load(AuthCode, raw)
        state._codes[code.code] = code
    for _, raw in rows(TOKEN):
        token = _load(Token, raw)
        state._tokens[token.access_token] = token
    for refresh_token, raw in rows(REFRESH):
        state._refresh[refresh_token] = json.loads(raw)
    for _, raw in rows(DELIVERY):
        state.deliveries.append(json.loads(raw))
    meta = store.get(META, "counters")
    if meta is not None:
        journal.seen(META, "counters", meta)
        saved_meta = json.loads(meta)
        state._next_id = saved_meta["next_id"]
        # Stamps only move forward, even if the machine's clock went back while it was down.
        state._last_stamp = datetime.fromisoformat(saved_meta["last_stamp"])


# -- what each change touched ---------------------------------------------------------------------

Args = dict[str, Any]


class _Touches:
    """The journal entries for the sandbox's objects, by kind."""

    def __init__(self, state: SandboxState, journal: Journal) -> None:
        self.state = state
        self.journal = journal

    def meta(self) -> None:
        state = self.state
        self.journal.touch(
            META,
            "counters",
            lambda: json.dumps(
                {"next_id": state._next_id, "last_stamp": state._last_stamp.isoformat()},
                sort_keys=True,
            ),
        )

    def account(self, name: str) -> None:
        accounts = self.state.accounts
        self.journal.touch(ACCOUNT, name, lambda: _dump_or_none(accounts.get(name)))

    def contact(self, contact_id: int) -> None:
        contacts = self.state.contacts
        self.journal.touch(
            CONTACT, _id(contact_id), lambda: _dump_or_none(contacts.get(contact_id))
        )

    def matter(self, matter_id: int) -> None:
        matters = self.state.matters
        self.journal.touch(MATTER, _id(matter_id), lambda: _dump_or_none(matters.get(matter_id)))

    def bill(self, bill_id: int) -> None:
        bills = self.state.bills
        self.journal.touch(BILL, _id(bill_id), lambda: _dump_or_none(bills.get(bill_id)))

    def webhook(self, webhook_id: int) -> None:
        hooks = self.state.webhooks

        def image() -> str | None:
            hook = hooks.get(webhook_id)
            return None if hook is None else _dump_webhook(hook)

        self.journal.touch(WEBHOOK, _id(webhook_id), image)

    def webhook_sent(self, webhook_id: int, bill_id: int) -> None:
        hooks = self.state.webhooks

        def image() -> str | None:
            hook = hooks.get(webhook_id)
            sent = None if hook is None else hook.last_sent.get(bill_id)
            return None if sent is None else json.dumps(sent, sort_keys=True)

        self.journal.touch(WEBHOOK_SENT, f"{_id(webhook_id)}/{_id(bill_id)}", image)

    def code(self, code: str) -> None:
        codes = self.state._codes
        self.journal.touch(CODE, code, lambda: _dump_or_none(codes.get(code)))

    def token(self, access_token: str) -> None:
        tokens = self.state._tokens
        self.journal.touch(TOKEN, access_token, lambda: _dump_or_none(tokens.get(access_token)))

    def refresh(self, refresh_token: str) -> None:
        refresh = self.state._refresh

        def image() -> str | None:
            account = refresh.get(refresh_token)
            return None if account is None else json.dumps(account)

        self.journal.touch(REFRESH, refresh_token, image)

    def tokens_of(self, account: str) -> None:
        for token in [t for t in self.state._tokens.values() if t.account == account]:
            self.token(token.access_token)
        for refresh_token in [r for r, a in self.state._refresh.items() if a == account]:
            self.refresh(refresh_token)

    def delivery(self, entry: dict[str, Any]) -> None:
        value = json.dumps(entry, sort_keys=True)
        self.journal.touch(DELIVERY, _id(entry["id"]), lambda: value)


def _dump_or_none(obj: Any) -> str | None:
    return None if obj is None else _dump(obj)


# For each changing method of SandboxState: what to touch before it runs (from its arguments)
# and after it returns (from its arguments and result). The id counters and the clock's last
# stamp are touched on every one. A method missing here changes nothing that is kept: reads,
# rate windows, faults and statistics.
Before = Callable[[_Touches, Args], None]
After = Callable[[_Touches, Args, Any], None]


def _after_hooks(t: _Touches, _: Args, result: list[OutgoingHook]) -> None:
    for hook in result:
        t.webhook(hook.webhook_id)
        if hook.bill_id is not None:
            t.webhook_sent(hook.webhook_id, hook.bill_id)


def _after_access(t: _Touches, a: Args, result: dict[str, Any]) -> None:
    t.token(result["access_token"])
    t.refresh(a["refresh_token"])


def _after_create_bill(t: _Touches, _: Args, bill: Any) -> None:
    t.bill(bill.id)
    t.account(bill.account)  # its next bill number


def _before_delete_webhook(t: _Touches, a: Args) -> None:
    t.webhook(a["webhook_id"])
    hook = t.state.webhooks.get(a["webhook_id"])
    if hook is not None:
        for bill_id in hook.last_sent:
            t.webhook_sent(hook.id, bill_id)


CHANGES: dict[str, tuple[Before | None, After | None]] = {
    "account": (None, lambda t, a, r: t.account(r.name)),
    "issue_code": (None, lambda t, a, r: t.code(r)),
    "exchange_code": (lambda t, a: t.code(a["code"] or ""), None),
    "_issue_access": (None, _after_access),
    "expire_tokens": (lambda t, a: t.tokens_of(a["account"]), None),
    "revoke_tokens": (lambda t, a: t.tokens_of(a["account"]), None),
    "contact": (None, lambda t, a, r: t.contact(r.id)),
    "matter": (None, lambda t, a, r: t.matter(r.id)),
    "create_bill": (None, _after_create_bill),
    "update_bill": (lambda t, a: t.bill(a["bill_id"]), None),
    "_hooks_for": (None, _after_hooks),
    "create_webhook": (None, lambda t, a, r: t.webhook(r.id)),
    "update_webhook": (lambda t, a: t.webhook(a["webhook_id"]), None),
    "delete_webhook": (_before_delete_webhook, None),
    "set_webhook_status": (lambda t, a: t.webhook(a["webhook_id"]), None),
    "record_delivery": (None, lambda t, a, r: t.delivery(a["entry"])),
}


def _wrap(state: SandboxState, touches: _Touches, name: str, before: Any, after: Any) -> None:
    method = getattr(state, name)
    signature = inspect.signature(method)
    lock = state.lock

    def changing(*args: Any, **kwargs: Any) -> Any:
        with lock:
            arguments = signature.bind(*args, **kwargs).arguments
            try:
                if before is not None:
                    before(touches, arguments)
                result = method(*args, **kwargs)
                if after is not None:
                    after(touches, arguments, result)
                return result
            finally:
                touches.meta()

    setattr(state, name, changing)


def attach(state: SandboxState, store: StateStore) -> Journal:
    """Restore the saved sandbox into `state` (new, empty, not serving yet) and save every
    change from now on."""
    journal = Journal(store)
    restore(state, store, journal)
    state.lock = JournalLock(journal)  # type: ignore[assignment]
    touches = _Touches(state, journal)
    for name, (before, after) in CHANGES.items():
        _wrap(state, touches, name, before, after)
    return journal


def snapshot(state: SandboxState) -> dict[str, Any]:
    """Everything kept, as plain data: tests compare a restored sandbox with the original."""
    with state.lock:
        return {
            "accounts": {k: _dump(v) for k, v in state.accounts.items()},
            "contacts": {k: _dump(v) for k, v in state.contacts.items()},
            "matters": {k: _dump(v) for k, v in state.matters.items()},
            "bills": {k: _dump(v) for k, v in state.bills.items()},
            "bill_ids": {k: list(v) for k, v in state._bill_ids.items()},
            "webhooks": {
                k: (_dump_webhook(v), v.spec, dict(v.last_sent)) for k, v in state.webhooks.items()
            },
            "codes": {k: _dump(v) for k, v in state._codes.items()},
            "tokens": {k: _dump(v) for k, v in state._tokens.items()},
            "refresh": dict(state._refresh),
            "deliveries": [dict(d) for d in state.deliveries],
            "next_id": dict(state._next_id),
            "last_stamp": state._last_stamp,
        }
