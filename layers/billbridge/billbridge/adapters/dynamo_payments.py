"""Payment items of the app table (implements services.ports.PaymentStore): transactions, the
append-only ledger, Stripe event dedupe records, the PaymentIntent directory, reconciliation
markers and a firm's Stripe accounts. See docs/data-model.md, "Payments".

A `PaymentChange` is written as ONE TransactWriteItems: the event's dedupe record, each
transaction (conditional on the version that was read), the ledger entry (conditional on not
existing: append-only), each bill's money (ADD, so concurrent payments on one bill add up, and
the bill's `money_version` with it) and the removal of the session's checkout holds.

A checkout's holds (`hold_checkout`) are ONE TransactWriteItems too: each chosen bill's
`money_version`, state and Clio balance as read (a condition), the new holds, and the holds of
the sessions it closed; two checkouts that read the same bill cannot both be written.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_bills import bill_sk
from billbridge.adapters.dynamo_common import (
    CONDITION_FAILED,
    DynamoRepository,
    Item,
    cancellation_codes,
    epoch_seconds,
    error_code,
    firm_pk,
    from_item,
    iso_utc,
    require_iso,
    to_attr,
    to_item,
)
from billbridge.domain.ledger import (
    BILL_MONEY,
    BillDelta,
    BillGuard,
    CheckoutHolds,
    LedgerEntry,
    PaymentChange,
    TxnWrite,
)
from billbridge.domain.payment_accounts import ConnectedAccount
from billbridge.domain.payments import (
    Account,
    Allocation,
    Hold,
    Method,
    ReconciliationAction,
    Transaction,
    TxnKind,
    TxnStatus,
)
from billbridge.domain.reconciliation import RECORDED_NOTE_DAYS, RecordedNote
from billbridge.services.ports import DuplicateEvent, PaymentAccounts, StaleTransaction

# Stripe retries a webhook for up to three days and lists events for thirty: keep a little more.
EVENT_DEDUPE_TTL = timedelta(days=35)


PAYACCOUNT_PREFIX = "PAYACCOUNT#"


def payaccount_sk(account: Account) -> str:
    return f"{PAYACCOUNT_PREFIX}{account.value}"


def _connected_account_item(account: ConnectedAccount) -> Item:
    return to_item(
        {
            "pk": firm_pk(account.firm_id),
            "sk": payaccount_sk(account.account),
            "type": "payment_account",
            "account": account.account.value,
            "stripe_account_id": account.stripe_account_id,
            "charges_enabled": account.charges_enabled,
            "payouts_enabled": account.payouts_enabled,
            "details_submitted": account.details_submitted,
            "currently_due": list(account.currently_due),
            "past_due": list(account.past_due),
            "disabled_reason": account.disabled_reason,
            "observed_at": account.observed_at,
            "version": account.version,
        }
    )


def _connected_account(firm_id: str, data: dict[str, Any]) -> ConnectedAccount:
    return ConnectedAccount(
        firm_id=firm_id,
        account=Account(data["account"]),
        stripe_account_id=data.get("stripe_account_id") or None,
        charges_enabled=bool(data.get("charges_enabled")),
        payouts_enabled=bool(data.get("payouts_enabled")),
        details_submitted=bool(data.get("details_submitted")),
        currently_due=tuple(str(v) for v in data.get("currently_due") or ()),
        past_due=tuple(str(v) for v in data.get("past_due") or ()),
        disabled_reason=data.get("disabled_reason") or None,
        observed_at=int(data.get("observed_at") or 0),
        version=int(data.get("version") or 0),
    )


def txn_sk(link_id: str, txn_id: str) -> str:
    return f"TXN#{link_id}#{txn_id}"


def hold_sk(bill_id: int, session_id: str) -> str:
    return f"HOLD#{bill_sk(bill_id)}#{session_id}"


def event_pk(event_id: str) -> str:
    return f"STRIPEEVENT#{event_id}"


def payment_intent_pk(payment_intent_id: str) -> str:
    return f"STRIPEPI#{payment_intent_id}"


def _allocations_attr(allocations: tuple[Allocation, ...]) -> list[dict[str, Any]]:
    return [
        {"bill_id": a.bill_id, "account": a.account.value, "amount_cents": a.amount_cents}
        for a in allocations
    ]


def _allocations(raw: Any) -> tuple[Allocation, ...]:
    return tuple(
        Allocation(int(a["bill_id"]), Account(a["account"]), int(a["amount_cents"]))
        for a in raw or []
    )


def txn_item(txn: Transaction) -> Item:
    return to_item(
        {
            "pk": firm_pk(txn.firm_id),
            "sk": txn_sk(txn.link_id, txn.id),
            "type": "transaction",
            "txn_id": txn.id,
            "link_id": txn.link_id,
            "kind": txn.kind.value,
            "method": txn.method.value,
            "account": txn.account.value,
            "status": txn.status.value,
            "amount_cents": txn.amount_cents,
            "currency": txn.currency,
            "allocations": _allocations_attr(txn.allocations),
            "created_at": iso_utc(txn.created_at),
            "updated_at": iso_utc(txn.updated_at),
            "version": txn.version,
            "checkout_session_id": txn.checkout_session_id,
            "payment_intent_id": txn.payment_intent_id,
            "stripe_refund_id": txn.stripe_refund_id,
            "payment_id": txn.payment_id,
            "refund_claims": {str(k): v for k, v in txn.refund_claims.items()},
            "refunded_cents": txn.refunded_cents,
            "disputed": txn.disputed,
            "dispute_status": txn.dispute_status,
            "dispute_funds": txn.dispute_funds or None,
            "chargeback_allocations": _allocations_attr(txn.chargeback_allocations) or None,
            "failure_reason": txn.failure_reason,
            "requested_by_user_id": txn.requested_by_user_id,
            "requested_by_email": txn.requested_by_email,
            "surcharge_cents": txn.surcharge_cents or None,
            "surcharge_claimed_cents": txn.surcharge_claimed_cents or None,
            "surcharge_refunded_cents": txn.surcharge_refunded_cents or None,
        }
    )


def txn_from_item(firm_id: str, item: Item) -> Transaction:
    data = from_item(item)
    return Transaction(
        id=str(data["txn_id"]),
        firm_id=firm_id,
        link_id=str(data["link_id"]),
        kind=TxnKind(data["kind"]),
        method=Method(data["method"]),
        account=Account(data["account"]),
        status=TxnStatus(data["status"]),
        amount_cents=int(data["amount_cents"]),
        currency=str(data["currency"]),
        allocations=_allocations(data.get("allocations")),
        created_at=require_iso(data["created_at"]),
        updated_at=require_iso(data["updated_at"]),
        version=int(data.get("version") or 0),
        checkout_session_id=data.get("checkout_session_id"),
        payment_intent_id=data.get("payment_intent_id"),
        stripe_refund_id=data.get("stripe_refund_id"),
        payment_id=data.get("payment_id"),
        refund_claims={int(k): int(v) for k, v in (data.get("refund_claims") or {}).items()},
        refunded_cents=int(data.get("refunded_cents") or 0),
        disputed=bool(data.get("disputed")),
        dispute_status=data.get("dispute_status"),
        dispute_funds=int(data.get("dispute_funds") or 0),
        chargeback_allocations=_allocations(data.get("chargeback_allocations")),
        failure_reason=data.get("failure_reason"),
        requested_by_user_id=data.get("requested_by_user_id"),
        requested_by_email=data.get("requested_by_email"),
        surcharge_cents=int(data.get("surcharge_cents") or 0),
        surcharge_claimed_cents=int(data.get("surcharge_claimed_cents") or 0),
        surcharge_refunded_cents=int(data.get("surcharge_refunded_cents") or 0),
    )


def ledger_item(entry: LedgerEntry) -> Item:
    return to_item(
        {
            "pk": firm_pk(entry.firm_id),
            "sk": f"LEDGER#{entry.id}",
            "type": "ledger_entry",
            "entry_id": entry.id,
            "link_id": entry.link_id,
            "txn_id": entry.txn_id,
            "kind": entry.kind.value,
            "method": entry.method.value,
            "account": entry.account.value,
            "amount_cents": entry.amount_cents,
            "currency": entry.currency,
            "allocations": _allocations_attr(entry.allocations),
            "created_at": iso_utc(entry.created_at),
            "stripe_event_id": entry.stripe_event_id,
            "user_id": entry.user_id,
            "user_email": entry.user_email,
        }
    )


class DynamoPaymentStore(DynamoRepository):
    # -- reads ------------------------------------------------------------------------------

    def get_transaction(self, firm_id: str, link_id: str, txn_id: str) -> Transaction | None:
        item = self._get_item(firm_pk(firm_id), txn_sk(link_id, txn_id))
        return txn_from_item(firm_id, item) if item else None

    def transactions_for_link(self, firm_id: str, link_id: str) -> list[Transaction]:
        items = self._query_prefix(firm_pk(firm_id), f"TXN#{link_id}#")
        found = [txn_from_item(firm_id, item) for item in items]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    def ledger(self, firm_id: str) -> list[dict[str, Any]]:
        items = self._query_prefix(firm_pk(firm_id), "LEDGER#")
        return sorted((from_item(i) for i in items), key=lambda e: str(e["created_at"]))

    def payment_for_intent(self, payment_intent_id: str) -> tuple[str, str, str] | None:
        """(firm_id, link_id, txn_id) of the payment made by this PaymentIntent."""
        item = self._get_item(payment_intent_pk(payment_intent_id), "STRIPEPI")
        if item is None:
            return None
        data = from_item(item)
        return str(data["firm_id"]), str(data["link_id"]), str(data["txn_id"])

    def reconciliation_bill_ids(self, firm_id: str) -> list[int]:
        """Every bill that money of ours ever touched."""
        items = self._query_prefix(firm_pk(firm_id), "RECON#", ProjectionExpression="bill_id")
        return [int(from_item(i)["bill_id"]) for i in items]

    # -- the firm's connected accounts (PAYACCOUNT#trust, PAYACCOUNT#operating) --------------

    def connected_accounts(self, firm_id: str) -> dict[Account, ConnectedAccount]:
        """Both of the firm's accounts onboarding has begun, in one consistent Query."""
        found: dict[Account, ConnectedAccount] = {}
        for item in self._query_prefix(firm_pk(firm_id), PAYACCOUNT_PREFIX):
            account = _connected_account(firm_id, from_item(item))
            found[account.account] = account
        return found

    def save_connected_account(self, account: ConnectedAccount) -> ConnectedAccount:
        stored = replace(account, version=account.version + 1)
        if account.version == 0:
            condition = "attribute_not_exists(pk)"
            values: dict[str, Any] = {}
        else:
            condition = "version = :read"
            values = {"ExpressionAttributeValues": {":read": to_attr(account.version)}}
        try:
            self._retrying(
                lambda: self._write(
                    "put_item",
                    TableName=self._table,
                    Item=_connected_account_item(stored),
                    ConditionExpression=condition,
                    **values,
                )
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise StaleTransaction("the connected account changed since it was read") from exc
            raise
        return stored

    def all_transactions(self, firm_id: str) -> list[Transaction]:
        """Every payment and refund of the firm (reconciliation's dates, methods, references):
        one Query of the firm's partition, `begins_with(sk, "TXN#")`."""
        items = self._query_prefix(firm_pk(firm_id), "TXN#")
        found = [txn_from_item(firm_id, item) for item in items]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    def recorded_notes(self, firm_id: str) -> list[RecordedNote]:
        """The clerks' "recorded in Clio" notes (one Query, `begins_with(sk, "RECORDED#")`)."""
        notes = []
        for item in self._query_prefix(firm_pk(firm_id), "RECORDED#"):
            data = from_item(item)
            notes.append(
                RecordedNote(
                    bill_id=int(data["bill_id"]),
                    action=ReconciliationAction(str(data["action"])),
                    amount_cents=int(data["amount_cents"]),
                    user_id=str(data["user_id"]),
                    email=str(data["email"]) if data.get("email") else None,
                    at=datetime.fromisoformat(str(data["at"])),
                )
            )
        return notes

    def save_recorded_note(self, firm_id: str, note: RecordedNote) -> None:
        """One note per line (bill, action, amount): a second mark of the same line replaces
        the first, so the newest clerk and time are shown."""
        sk = f"RECORDED#{bill_sk(note.bill_id)}#{note.action.value}#{note.amount_cents:015d}"
        data: dict[str, Any] = {
            "pk": firm_pk(firm_id),
            "sk": sk,
            "type": "recorded_in_clio",
            "firm_id": firm_id,
            "bill_id": note.bill_id,
            "action": note.action.value,
            "amount_cents": note.amount_cents,
            "user_id": note.user_id,
            "at": iso_utc(note.at),
            "expires_at_epoch": epoch_seconds(note.at + timedelta(days=RECORDED_NOTE_DAYS)),
        }
        if note.email:
            data["email"] = note.email
        self._retrying(lambda: self._write("put_item", TableName=self._table, Item=to_item(data)))

    def payment_accounts(self, firm_id: str) -> PaymentAccounts | None:
        """Both accounts' Stripe ids, once both exist (ready or not)."""
        found = self.connected_accounts(firm_id)
        trust, operating = found.get(Account.TRUST), found.get(Account.OPERATING)
        if trust is None or operating is None:
            return None
        if trust.stripe_account_id is None or operating.stripe_account_id is None:
            return None
        return PaymentAccounts(firm_id, trust.stripe_account_id, operating.stripe_account_id)

    def save_payment_accounts(self, accounts: PaymentAccounts) -> None:
        """Record two accounts Stripe has already enabled (the local stack's onboarding
        control), as `account.updated` would: ready, nothing due."""
        for kind in (Account.TRUST, Account.OPERATING):
            current = self.connected_accounts(accounts.firm_id).get(kind)
            base = current or ConnectedAccount(firm_id=accounts.firm_id, account=kind)
            self.save_connected_account(
                replace(
                    base,
                    stripe_account_id=accounts.for_account(kind),
                    charges_enabled=True,
                    payouts_enabled=True,
                    details_submitted=True,
                    currently_due=(),
                    past_due=(),
                    disabled_reason=None,
                )
            )

    def holds(self, firm_id: str, bill_ids: list[int], now: datetime) -> list[Hold]:
        """The checkout holds still alive on these bills (one Query per bill)."""
        found = []
        for bill_id in dict.fromkeys(bill_ids):
            for item in self._query_prefix(firm_pk(firm_id), f"HOLD#{bill_sk(bill_id)}#"):
                data = from_item(item)
                # TTL deletes lag by up to days: the stored expiry is what counts.
                if int(data.get("expires_at_epoch") or 0) > epoch_seconds(now):
                    found.append(
                        Hold(
                            bill_id=int(data["bill_id"]),
                            link_id=str(data["link_id"]),
                            session_id=str(data["session_id"]),
                            amount_cents=int(data["amount_cents"]),
                            expires_at=require_iso(data["expires_at"]),
                        )
                    )
        return found

    # -- writes -----------------------------------------------------------------------------

    def hold_checkout(self, change: CheckoutHolds, now: datetime) -> None:
        """Write a checkout's holds, only if none of its bills changed since they were read
        (StaleTransaction otherwise: read again and re-plan)."""
        actions: list[dict[str, Any]] = [
            {"Update": self._guard(change.firm_id, guard)} for guard in change.guards
        ]
        guards = len(actions)
        for hold in change.released:
            actions.append(
                {"Delete": self._hold_key(change.firm_id, hold.bill_id, hold.session_id)}
            )
        for hold in change.holds:
            item = {
                "pk": firm_pk(change.firm_id),
                "sk": hold_sk(hold.bill_id, hold.session_id),
                "type": "checkout_hold",
                "bill_id": hold.bill_id,
                "link_id": hold.link_id,
                "session_id": hold.session_id,
                "amount_cents": hold.amount_cents,
                "created_at": iso_utc(now),
                "expires_at": iso_utc(hold.expires_at),
                "expires_at_epoch": epoch_seconds(hold.expires_at),
            }
            actions.append({"Put": {"TableName": self._table, "Item": to_item(item)}})
        try:
            self._transact(actions)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if any(code == CONDITION_FAILED for code in codes[:guards]):
                raise StaleTransaction("a bill changed since the checkout read it") from None
            raise

    def _hold_key(self, firm_id: str, bill_id: int, session_id: str) -> dict[str, Any]:
        key = {"pk": to_attr(firm_pk(firm_id)), "sk": to_attr(hold_sk(bill_id, session_id))}
        return {"TableName": self._table, "Key": key}

    def _guard(self, firm_id: str, guard: BillGuard) -> dict[str, Any]:
        names = {"#mv": "money_version", "#state": "state", "#out": "outstanding_clio_cents"}
        values: dict[str, Any] = {
            ":one": to_attr(1),
            ":state": to_attr(guard.state.value),
            ":out": to_attr(guard.outstanding_clio_cents),
        }
        seen = "attribute_not_exists(#mv)"
        if guard.money_version:
            seen = "#mv = :mv"
            values[":mv"] = to_attr(guard.money_version)
        return {
            "TableName": self._table,
            "Key": {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(guard.bill_id)}},
            "UpdateExpression": "ADD #mv :one",
            "ConditionExpression": (
                f"attribute_exists(pk) AND #state = :state AND #out = :out AND {seen}"
            ),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def record_event(self, firm_id: str | None, event_id: str, now: datetime) -> bool:
        """Remember an event that changed nothing; False when it was already remembered."""
        try:
            self._retrying(
                lambda: self._write(
                    "put_item",
                    TableName=self._table,
                    Item=self._event_item(firm_id, event_id, now),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def apply(self, change: PaymentChange, now: datetime | None = None) -> None:
        """Write the change in one transaction. Raises DuplicateEvent when the event was already
        applied, StaleTransaction when a transaction changed since it was read."""
        now = now or datetime.now(UTC)
        actions: list[dict[str, Any]] = []
        if change.event_id:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._event_item(change.firm_id, change.event_id, now),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        dedupe_actions = len(actions)
        for write in change.txns:
            actions.append({"Put": self._txn_put(write)})
        txn_actions = range(dedupe_actions, len(actions))
        for entry in change.ledger:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": ledger_item(entry),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        for delta in change.bills:
            actions.append({"Update": self._bill_update(change.firm_id, delta)})
            if delta.set_baseline:
                actions.append({"Put": self._recon_marker(change.firm_id, delta.bill_id)})
        for bill_id, session_id in change.released_holds:
            actions.append({"Delete": self._hold_key(change.firm_id, bill_id, session_id)})
        if change.payment_intent_id and change.txns:
            txn = change.txns[0].txn
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(
                            {
                                "pk": payment_intent_pk(change.payment_intent_id),
                                "sk": "STRIPEPI",
                                "type": "payment_intent",
                                "firm_id": change.firm_id,
                                "link_id": txn.link_id,
                                "txn_id": txn.id,
                            }
                        ),
                    }
                }
            )
        try:
            self._transact(actions)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if not codes:
                raise
            if dedupe_actions and codes[0] == CONDITION_FAILED:
                raise DuplicateEvent(change.event_id or "") from None
            if any(codes[i] == CONDITION_FAILED for i in txn_actions if i < len(codes)):
                raise StaleTransaction("a transaction changed since it was read") from None
            raise

    def _event_item(self, firm_id: str | None, event_id: str, now: datetime) -> Item:
        return to_item(
            {
                "pk": event_pk(event_id),
                "sk": "STRIPEEVENT",
                "type": "stripe_event",
                "firm_id": firm_id,
                "received_at": iso_utc(now),
                "expires_at_epoch": epoch_seconds(now + EVENT_DEDUPE_TTL),
            }
        )

    def _txn_put(self, write: TxnWrite) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self._table, "Item": txn_item(write.txn)}
        if write.expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "#version = :version"
            put["ExpressionAttributeNames"] = {"#version": "version"}
            put["ExpressionAttributeValues"] = {":version": to_attr(write.expected_version)}
        return put

    def _bill_update(self, firm_id: str, delta: BillDelta) -> dict[str, Any]:
        names = {"#money_version": "money_version"}
        values: dict[str, Any] = {":money_version": to_attr(1)}
        adds = ["#money_version :money_version"]
        for attribute in BILL_MONEY:
            amount = getattr(delta, attribute)
            if amount:
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = to_attr(amount)
                adds.append(f"#{attribute} :{attribute}")
        clauses = []
        if delta.set_baseline:
            names["#baseline"] = "baseline_outstanding_cents"
            names["#outstanding"] = "outstanding_clio_cents"
            clauses.append("SET #baseline = if_not_exists(#baseline, #outstanding)")
        clauses.append("ADD " + ", ".join(adds))
        return {
            "TableName": self._table,
            "Key": {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(delta.bill_id)}},
            "UpdateExpression": " ".join(clauses),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def _recon_marker(self, firm_id: str, bill_id: int) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Item": to_item(
                {
                    "pk": firm_pk(firm_id),
                    "sk": f"RECON#{bill_sk(bill_id)}",
                    "type": "reconciliation_marker",
                    "bill_id": bill_id,
                }
            ),
        }
