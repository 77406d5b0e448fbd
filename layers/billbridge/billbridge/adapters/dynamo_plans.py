"""Payment plan items of the app table (implements services.ports.PlanStore). See
docs/data-model.md, "Payment plans".

- `FIRM#{firm}` / `PLAN#{plan_id}`: the plan, its installments and their parts as a map;
  `version` (N) guards every save (conditional put).
- `FIRM#{firm}` / `LINKPLAN#{link_id}#{plan_id}`: the plans of a payment link (the pay page).
- `FIRM#{firm}` / `PLANBILL#{bill_id:020d}`: the open plan covering a bill, `plan_id` and
  `plan_status`; put conditional on no other plan holding the bill (two plans can never cover
  one bill, however they race), deleted when the plan ends.
- `PLANDUE` / `{firm}#{plan_id}`: the due index, `due_on` (date) the plan's next action;
  absent when there is none. The tick Queries this one partition.
- `FIRM#{firm}` / `CUSTOMER#{client_id}`: the client's Stripe Customer (first one kept).
- `FIRM#{firm}` / `SAVEDPM#{client_id}#{saved id}`: a card or bank account the client saved on
  the pay page (written once; forgetting it sets `forgotten_at` and keeps the item).
- `FIRM#{firm}` / `SAVEDPAY#{attempt id}`: a payment on a saved method as first sent to
  Stripe (`charges` JSON, `held_until`), put once before Stripe is called; TTL 2 days.
All of a save's items move in one TransactWriteItems.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    DynamoRepository,
    Item,
    cancellation_codes,
    firm_pk,
    from_item,
    iso_or_none,
    iso_utc,
    parse_iso,
    require_iso,
    to_attr,
    to_item,
)
from billbridge.domain.errors import RuleViolation
from billbridge.domain.payments import Account, Allocation, Method, TxnStatus
from billbridge.domain.plans import (
    OPEN_PLAN,
    Every,
    Installment,
    InstallmentStatus,
    Part,
    Plan,
    PlanStatus,
    SavedMethod,
)
from billbridge.domain.saved_methods import StoredMethod
from billbridge.services.ports import OffSessionCharge, SavedAttempt, StaleTransaction

CONDITION_FAILED = "ConditionalCheckFailed"
DUE_PK = "PLANDUE"


def plan_sk(plan_id: str) -> str:
    return f"PLAN#{plan_id}"


def plan_bill_sk(bill_id: int) -> str:
    return f"PLANBILL#{bill_id:020d}"


def _allocations(allocations: Sequence[Allocation]) -> list[dict[str, Any]]:
    return [
        {"bill_id": a.bill_id, "account": a.account.value, "amount_cents": a.amount_cents}
        for a in allocations
    ]


def _part_doc(part: Part) -> dict[str, Any]:
    doc = {
        "account": part.account.value,
        "allocations": _allocations(part.allocations),
        "txn_id": part.txn_id,
        "status": part.status.value,
        "payment_intent_id": part.payment_intent_id,
        "failure": part.failure,
    }
    return {k: v for k, v in doc.items() if v is not None}


def _installment_doc(i: Installment) -> dict[str, Any]:
    doc = {
        "number": i.number,
        "due_on": i.due_on.isoformat(),
        "amount_cents": i.amount_cents,
        "status": i.status.value,
        "attempts": i.attempts,
        "next_attempt_on": i.next_attempt_on.isoformat() if i.next_attempt_on else None,
        "collected_cents": i.collected_cents,
        "parts": [_part_doc(p) for p in i.parts],
        "failure": i.failure,
        "attempted_on": i.attempted_on.isoformat() if i.attempted_on else None,
    }
    return {k: v for k, v in doc.items() if v is not None}


def plan_item(plan: Plan, version: int) -> Item:
    method = plan.method
    return to_item(
        {
            "pk": firm_pk(plan.firm_id),
            "sk": plan_sk(plan.id),
            "type": "payment_plan",
            "plan_id": plan.id,
            "link_id": plan.link_id,
            "client_id": plan.client_id,
            "client_email": plan.client_email,
            "bill_ids": list(plan.bill_ids),
            "every": plan.every.value,
            "start_on": plan.start_on.isoformat(),
            "installment_cents": plan.installment_cents,
            "installments": [_installment_doc(i) for i in plan.installments],
            "status": plan.status.value,
            "created_at": iso_utc(plan.created_at),
            "created_by": plan.created_by,
            "currency": plan.currency,
            "payment_method_id": method.payment_method_id if method else None,
            "payment_method_type": method.method.value if method else None,
            "payment_method_label": method.label if method else None,
            "customer_id": plan.customer_id,
            "mandate_text": plan.mandate_text,
            "mandate_accepted_at": iso_or_none(plan.mandate_accepted_at),
            "version": version,
        }
    )


def _number(value: Any) -> int:
    return int(value)


def _plan_from_item(firm_id: str, item: Item) -> Plan:
    data = from_item(item)
    method = None
    if data.get("payment_method_id"):
        method = SavedMethod(
            str(data["payment_method_id"]),
            Method(data["payment_method_type"]),
            str(data.get("payment_method_label") or ""),
        )
    installments = tuple(
        Installment(
            number=_number(i["number"]),
            due_on=date.fromisoformat(i["due_on"]),
            amount_cents=_number(i["amount_cents"]),
            status=InstallmentStatus(i["status"]),
            attempts=_number(i.get("attempts") or 0),
            next_attempt_on=(
                date.fromisoformat(i["next_attempt_on"]) if i.get("next_attempt_on") else None
            ),
            collected_cents=_number(i.get("collected_cents") or 0),
            parts=tuple(
                Part(
                    account=Account(p["account"]),
                    allocations=tuple(
                        Allocation(
                            _number(a["bill_id"]), Account(a["account"]), _number(a["amount_cents"])
                        )
                        for a in p["allocations"]
                    ),
                    txn_id=str(p["txn_id"]),
                    status=TxnStatus(p["status"]),
                    payment_intent_id=p.get("payment_intent_id"),
                    failure=p.get("failure"),
                )
                for p in i.get("parts") or []
            ),
            failure=i.get("failure"),
            attempted_on=date.fromisoformat(i["attempted_on"]) if i.get("attempted_on") else None,
        )
        for i in data["installments"]
    )
    return Plan(
        id=str(data["plan_id"]),
        firm_id=firm_id,
        link_id=str(data["link_id"]),
        client_id=_number(data["client_id"]),
        client_email=str(data["client_email"]),
        bill_ids=tuple(_number(b) for b in data["bill_ids"]),
        every=Every(data["every"]),
        start_on=date.fromisoformat(data["start_on"]),
        installment_cents=_number(data["installment_cents"]),
        installments=installments,
        status=PlanStatus(data["status"]),
        created_at=require_iso(data["created_at"]),
        created_by=str(data.get("created_by") or "staff"),
        currency=str(data.get("currency") or "USD"),
        method=method,
        customer_id=data.get("customer_id"),
        mandate_text=data.get("mandate_text"),
        mandate_accepted_at=parse_iso(data.get("mandate_accepted_at")),
        version=_number(data["version"]),
    )


class DynamoPlanStore(DynamoRepository):
    def get(self, firm_id: str, plan_id: str) -> Plan | None:
        item = self._get_item(firm_pk(firm_id), plan_sk(plan_id))
        return _plan_from_item(firm_id, item) if item else None

    def save(self, plan: Plan, now: datetime) -> Plan:
        stored = self.get(plan.firm_id, plan.id) if plan.version else None
        if plan.version and (stored is None or stored.version != plan.version):
            raise StaleTransaction(plan.id)
        firm = firm_pk(plan.firm_id)
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": plan_item(plan, plan.version + 1),
        }
        if plan.version:
            put["ConditionExpression"] = "#v = :v"
            put["ExpressionAttributeNames"] = {"#v": "version"}
            put["ExpressionAttributeValues"] = {":v": to_attr(plan.version)}
        else:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        actions: list[dict[str, Any]] = [{"Put": put}]
        if not plan.version:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item(
                            {
                                "pk": firm,
                                "sk": f"LINKPLAN#{plan.link_id}#{plan.id}",
                                "type": "link_plan",
                                "plan_id": plan.id,
                            }
                        ),
                    }
                }
            )
        was_open = stored is not None and stored.status in OPEN_PLAN
        is_open = plan.status in OPEN_PLAN
        markers = len(actions)
        if is_open and (stored is None or stored.status is not plan.status):
            for bill_id in plan.bill_ids:
                actions.append(
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": to_item(
                                {
                                    "pk": firm,
                                    "sk": plan_bill_sk(bill_id),
                                    "type": "plan_bill",
                                    "bill_id": bill_id,
                                    "plan_id": plan.id,
                                    "plan_status": plan.status.value,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk) OR plan_id = :me",
                            "ExpressionAttributeValues": {":me": to_attr(plan.id)},
                        }
                    }
                )
        elif was_open and not is_open:
            for bill_id in plan.bill_ids:
                actions.append(
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": {"pk": {"S": firm}, "sk": {"S": plan_bill_sk(bill_id)}},
                            "ConditionExpression": "attribute_not_exists(pk) OR plan_id = :me",
                            "ExpressionAttributeValues": {":me": to_attr(plan.id)},
                        }
                    }
                )
        due_key = {"pk": {"S": DUE_PK}, "sk": {"S": f"{plan.firm_id}#{plan.id}"}}
        due = plan.next_action_on
        if due is not None:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **due_key,
                            **to_item(
                                {
                                    "type": "plan_due",
                                    "firm_id": plan.firm_id,
                                    "plan_id": plan.id,
                                    "due_on": due.isoformat(),
                                }
                            ),
                        },
                    }
                }
            )
        elif plan.version:
            actions.append({"Delete": {"TableName": self._table, "Key": due_key}})
        try:
            self._transact(actions)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == CONDITION_FAILED:
                raise StaleTransaction(plan.id) from None
            taken = [i for i, c in enumerate(codes) if c == CONDITION_FAILED and i >= markers]
            if taken:
                raise RuleViolation(
                    "a bill of this plan is already in another payment plan",
                    field="bill_ids",
                    code="bill_in_plan",
                ) from None
            raise
        return replace(plan, version=plan.version + 1)

    def due(self, today: date) -> list[tuple[str, str]]:
        items = self._query_all(
            KeyConditionExpression="pk = :pk",
            FilterExpression="due_on <= :today",
            ExpressionAttributeValues={
                ":pk": to_attr(DUE_PK),
                ":today": to_attr(today.isoformat()),
            },
            ConsistentRead=True,
        )
        found = [from_item(i) for i in items]
        return [(str(d["firm_id"]), str(d["plan_id"])) for d in found]

    def for_link(self, firm_id: str, link_id: str) -> list[Plan]:
        pointers = self._query_prefix(firm_pk(firm_id), f"LINKPLAN#{link_id}#")
        plans = [self.get(firm_id, str(from_item(p)["plan_id"])) for p in pointers]
        return sorted((p for p in plans if p is not None), key=lambda p: p.created_at)

    def covering(
        self, firm_id: str, bill_ids: Sequence[int], active_only: bool = True
    ) -> dict[int, str]:
        ids = list(dict.fromkeys(bill_ids))
        found: dict[int, str] = {}
        for start in range(0, len(ids), 100):
            keys = [
                {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": plan_bill_sk(b)}}
                for b in ids[start : start + 100]
            ]
            for item in self._batch_get(keys):
                data = from_item(item)
                if active_only and data.get("plan_status") != PlanStatus.ACTIVE.value:
                    continue
                found[int(data["bill_id"])] = str(data["plan_id"])
        return found

    def covered_bill_ids(self, firm_id: str, bill_ids: Sequence[int]) -> set[int]:
        """PlanCoverage (services/reminders.py): reminders leave these bills alone."""
        return set(self.covering(firm_id, bill_ids))

    def customer(self, firm_id: str, client_id: int) -> str | None:
        item = self._get_item(firm_pk(firm_id), f"CUSTOMER#{client_id}")
        return str(from_item(item)["customer_id"]) if item else None

    def _put_new(self, item: dict[str, Any]) -> bool:
        """Write the item unless its key is taken: False when it was (nothing is written)."""
        try:
            self._write(
                "put_item",
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def save_customer(self, firm_id: str, client_id: int, customer_id: str) -> str:
        item = {
            "pk": firm_pk(firm_id),
            "sk": f"CUSTOMER#{client_id}",
            "type": "stripe_customer",
            "client_id": client_id,
            "customer_id": customer_id,
        }
        if self._put_new(item):
            return customer_id
        kept = self.customer(firm_id, client_id)
        assert kept is not None
        return kept

    # -- saved methods (services/saved_methods.py) -------------------------------------------

    def saved_methods(self, firm_id: str, client_id: int) -> list[StoredMethod]:
        items = self._query_prefix(firm_pk(firm_id), f"SAVEDPM#{client_id}#")
        found = [_stored_method(firm_id, from_item(i)) for i in items]
        return sorted(found, key=lambda m: (m.saved_at, m.id))

    def save_method(self, method: StoredMethod) -> bool:
        item = {
            "pk": firm_pk(method.firm_id),
            "sk": f"SAVEDPM#{method.client_id}#{method.id}",
            "type": "saved_method",
            "saved_id": method.id,
            "client_id": method.client_id,
            "customer_id": method.customer_id,
            "payment_method_id": method.method.payment_method_id,
            "method": method.method.method.value,
            "label": method.method.label,
            "saved_at": iso_utc(method.saved_at),
        }
        if method.consent_text:
            item["consent_text"] = method.consent_text
        return self._put_new(item)

    def forget_method(
        self, firm_id: str, client_id: int, method_id: str, at: datetime
    ) -> StoredMethod | None:
        try:
            answer = self._write(
                "update_item",
                TableName=self._table,
                Key={
                    "pk": {"S": firm_pk(firm_id)},
                    "sk": {"S": f"SAVEDPM#{client_id}#{method_id}"},
                },
                UpdateExpression="SET forgotten_at = :at",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(forgotten_at)",
                ExpressionAttributeValues={":at": to_attr(iso_utc(at))},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return None
        return _stored_method(firm_id, from_item(answer["Attributes"]))

    def for_client(self, firm_id: str, client_id: int) -> list[Plan]:
        # A firm's plans are few beside its bills: one Query of its PLAN# items, filtered.
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="client_id = :client",
            ExpressionAttributeValues={
                ":pk": to_attr(firm_pk(firm_id)),
                ":prefix": to_attr("PLAN#"),
                ":client": to_attr(client_id),
            },
            ConsistentRead=True,
        )
        plans = [_plan_from_item(firm_id, i) for i in items]
        return sorted(plans, key=lambda p: p.created_at)

    def saved_attempt(self, firm_id: str, attempt_id: str) -> SavedAttempt | None:
        item = self._get_item(firm_pk(firm_id), f"SAVEDPAY#{attempt_id}")
        return _saved_attempt(firm_id, from_item(item)) if item else None

    def begin_saved_attempt(self, attempt: SavedAttempt) -> SavedAttempt:
        item = {
            "pk": firm_pk(attempt.firm_id),
            "sk": f"SAVEDPAY#{attempt.attempt_id}",
            "type": "saved_payment_attempt",
            "attempt_id": attempt.attempt_id,
            "saved_method_id": attempt.saved_method_id,
            # The requests exactly as sent to Stripe (JSON: the metadata's keys are free).
            "charges": json.dumps(
                [dict(asdict(c), method=c.method.value) for c in attempt.charges],
                sort_keys=True,
            ),
            "held_until": iso_utc(attempt.held_until),
            # Stripe keeps an idempotency key 24 hours: the attempt is not needed after.
            "expires_at_epoch": int((attempt.held_until + timedelta(days=2)).timestamp()),
        }
        if self._put_new(item):
            return attempt
        kept = self.saved_attempt(attempt.firm_id, attempt.attempt_id)
        assert kept is not None
        return kept


def _saved_attempt(firm_id: str, data: dict[str, Any]) -> SavedAttempt:
    charges = tuple(
        OffSessionCharge(**dict(c, method=Method(c["method"])))
        for c in json.loads(str(data["charges"]))
    )
    return SavedAttempt(
        firm_id=firm_id,
        attempt_id=str(data["attempt_id"]),
        saved_method_id=str(data["saved_method_id"]),
        charges=charges,
        held_until=require_iso(data["held_until"]),
    )


def _stored_method(firm_id: str, data: dict[str, Any]) -> StoredMethod:
    return StoredMethod(
        id=str(data["saved_id"]),
        firm_id=firm_id,
        client_id=int(data["client_id"]),
        customer_id=str(data["customer_id"]),
        method=SavedMethod(
            str(data["payment_method_id"]), Method(str(data["method"])), str(data["label"])
        ),
        saved_at=require_iso(data["saved_at"]),
        consent_text=str(data["consent_text"]) if data.get("consent_text") else None,
        forgotten_at=parse_iso(data.get("forgotten_at")),
    )
