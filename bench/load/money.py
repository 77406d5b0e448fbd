"""The money after a load run: Paid (GL) = the ledger = Stripe's successful payments less
successful refunds, per bill and in total; no payment refunded beyond its amount; no ledger
entry twice."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from bench.load.record import TIMEOUT
from bench.load.stack import ROOT
from bench.load.world import ALL_STATES, World

LAYER = str(ROOT / "layers" / "billbridge")  # the shared package, as the layer ships it


@dataclass
class MoneyReport:
    problems: list[str]
    bills: int
    paid_gl_cents: int
    ledger_cents: int
    stripe_cents: int
    payments: int
    refunds: int
    ledger_entries: int
    duplicates: int  # ledger entries recorded twice
    over_refunded: int  # payments refunded beyond their amount (Stripe's or ours)


def check_money(load: World) -> MoneyReport:
    """Paid (GL) = the ledger = Stripe's successful payments less successful refunds, per bill
    and in total; no payment refunded beyond its amount; no ledger entry twice."""
    if LAYER not in sys.path:
        sys.path.insert(0, LAYER)
    from billbridge.domain.payments import decode_allocations

    problems: list[str] = []
    firm_ids = {firm.id for firm in load.firms}
    # Stripe's side, from the objects the sandbox sent in its events: the last event about an
    # object carries its latest state.
    latest: dict[str, dict[str, Any]] = {}
    for event in requests.get(f"{load.urls.stripe}/_sandbox/events", timeout=120).json():
        obj = event["data"]["object"]
        if obj.get("object") in ("payment_intent", "refund"):
            latest[obj["id"]] = obj
    intents = {
        k: v
        for k, v in latest.items()
        if v["object"] == "payment_intent" and v["metadata"].get("firm_id") in firm_ids
    }
    stripe_by_bill: Counter[str] = Counter()
    refunded_by_intent: Counter[str] = Counter()
    bill_of_intent: dict[str, str] = {}
    succeeded = 0
    for intent in intents.values():
        allocations = decode_allocations(intent["metadata"]["allocations"])
        if len(allocations) == 1:
            bill_of_intent[intent["id"]] = str(allocations[0].bill_id)
        if intent["status"] == "succeeded":
            succeeded += 1
            for allocation in allocations:
                stripe_by_bill[str(allocation.bill_id)] += allocation.amount_cents
    refunds = 0
    for refund in (v for v in latest.values() if v["object"] == "refund"):
        intent_id = refund["payment_intent"]
        if intent_id not in intents:
            continue
        if refund["status"] in ("succeeded", "pending"):
            refunded_by_intent[intent_id] += refund["amount"]
        if refund["status"] == "succeeded":
            refunds += 1
            if intent_id not in bill_of_intent:
                problems.append(f"refund {refund['id']} of a payment over several bills")
                continue
            stripe_by_bill[bill_of_intent[intent_id]] -= refund["amount"]
    over_refunded = 0
    for intent_id, refunded in refunded_by_intent.items():
        if refunded > intents[intent_id]["amount"]:
            over_refunded += 1
            problems.append(
                f"Stripe {intent_id}: refunded {refunded} of {intents[intent_id]['amount']}"
            )

    # Ours: the ledger (read from the emulator) and Paid (GL) (read through the API).
    dynamo = boto3.client(
        "dynamodb",
        endpoint_url=load.urls.aws,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    (table,) = [t for t in dynamo.list_tables()["TableNames"] if t.endswith("-AppTable")]
    ledger_by_bill: Counter[str] = Counter()
    entries = 0
    duplicates = 0
    payment_entries = 0
    refund_entries = 0
    paid_gl: dict[str, int] = {}
    for firm in load.firms:
        seen: set[tuple[str, str]] = set()
        for item in _query_all(dynamo, table, f"FIRM#{firm.id}", "LEDGER#"):
            entries += 1
            key = (item["txn_id"]["S"], item["kind"]["S"])
            if key in seen:
                duplicates += 1
                problems.append(f"ledger entry twice: {firm.id} {key}")
            seen.add(key)
            payment_entries += key[1] == "payment"
            refund_entries += key[1] == "refund"
            for allocation in item["allocations"]["L"]:
                fields = allocation["M"]
                ledger_by_bill[fields["bill_id"]["N"]] += int(fields["amount_cents"]["N"])
        staff = load.staff(firm)
        cursor = None
        while True:
            params: dict[str, str | int] = {"states": ALL_STATES, "page_size": 200}
            if cursor:
                params["cursor"] = cursor
            page = staff.get(f"{load.urls.api}/invoices", params=params, timeout=TIMEOUT).json()
            for item in page["items"]:
                paid_gl[item["id"]] = item["paid_gl_cents"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        for link in firm.links:
            body = staff.get(f"{load.urls.api}/payment-links/{link.id}", timeout=TIMEOUT).json()
            for txn in body["transactions"]:
                if txn["kind"] == "payment" and txn["refunded_cents"] > txn["amount_cents"]:
                    over_refunded += 1
                    problems.append(
                        f"{txn['id']}: refunded {txn['refunded_cents']} of {txn['amount_cents']}"
                    )
    if payment_entries != succeeded:
        problems.append(f"{payment_entries} payment entries for {succeeded} Stripe payments")
    if refund_entries < refunds:
        problems.append(f"{refund_entries} refund entries for {refunds} Stripe refunds")
    bills = set(paid_gl) | set(ledger_by_bill) | set(stripe_by_bill)
    for bill in sorted(bills, key=int):
        values = (paid_gl.get(bill, 0), ledger_by_bill[bill], stripe_by_bill[bill])
        if len(set(values)) != 1:
            problems.append(
                f"bill {bill}: Paid (GL) {values[0]}, ledger {values[1]}, Stripe {values[2]}"
            )
    return MoneyReport(
        problems=problems,
        duplicates=duplicates,
        over_refunded=over_refunded,
        bills=len([b for b in bills if paid_gl.get(b) or stripe_by_bill[b]]),
        paid_gl_cents=sum(paid_gl.values()),
        ledger_cents=sum(ledger_by_bill.values()),
        stripe_cents=sum(stripe_by_bill.values()),
        payments=succeeded,
        refunds=refunds,
        ledger_entries=entries,
    )


def _query_all(dynamo: Any, table: str, pk: str, prefix: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
        "ConsistentRead": True,
    }
    while True:
        page = dynamo.query(**kwargs)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
