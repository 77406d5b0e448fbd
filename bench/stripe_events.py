"""Stripe's webhook through its handler on moto: events per second and DynamoDB requests."""

from __future__ import annotations

import json
import os
import time

import boto3

from bench.common import Row, aws


def stripe_events(count: int = 1000) -> list[Row]:
    """Signed Stripe events (card checkouts, each on its own session) through the webhook
    handler on moto: events per second, and DynamoDB requests per event. Each event is signed
    as it is delivered, as Stripe does: signed up front, the last ones were past Stripe's
    300-second tolerance on a loaded machine."""
    from datetime import UTC, date, datetime

    import stripe

    from billbridge import bootstrap
    from billbridge.adapters.dynamo import DynamoBillRepository
    from billbridge.domain.bills import Bill, BillKind, BillState, Client
    from local.lambdas import FakeContext, function_specs, load_handler
    from local.provision import REGION, provision

    rows: list[Row] = []
    secret = "whsec_bench"
    with aws():
        provisioned = provision(
            api_base_url="http://127.0.0.1:9",
            clio_base_url="http://127.0.0.1:9",
            clio_webhooks=False,
            stripe_webhook_secret=secret,
        )
        os.environ.update(provisioned.env)
        bootstrap.reset()
        now = datetime.now(UTC)
        bills = [
            Bill(
                id=9_000 + i,
                etag="e",
                number=f"B{i}",
                state=BillState.AWAITING_PAYMENT,
                kind=BillKind.INVOICE,
                client=Client(id=1, name="Bench", email=None),
                matter=None,
                total_cents=1_000_000,
                outstanding_clio_cents=1_000_000,
                currency="USD",
                issued_at=date(2026, 1, 1),
                due_at=None,
                clio_updated_at=now,
                clio_url="",
            )
            for i in range(10)
        ]
        DynamoBillRepository(boto3.client("dynamodb"), provisioned.table_name).save_clio_bills(
            "bench", bills, now
        )
        spec = function_specs()["StripeWebhookFunction"]
        handler = load_handler(spec)
        context = FakeContext(spec, REGION, "123456789012")

        def delivery(i: int) -> dict[str, object]:
            body = json.dumps(
                {
                    "id": f"evt_bench_{i}",
                    "object": "event",
                    "type": "checkout.session.completed",
                    "data": {
                        "object": {
                            "id": f"cs_bench_{i}",
                            "object": "checkout.session",
                            "currency": "usd",
                            "payment_intent": f"pi_bench_{i}",
                            "payment_status": "paid",
                            "metadata": {
                                "firm_id": "bench",
                                "link_id": "pl_bench",
                                "account": "operating",
                                "method": "card",
                                "allocations": f"{9_000 + i % 10}:operating:100",
                            },
                        }
                    },
                }
            )
            now = int(time.time())
            signature = stripe.WebhookSignature._compute_signature(  # the library's own signer
                f"{now}.{body}", secret
            )
            return {
                "resource": "/webhooks/stripe",
                "path": "/webhooks/stripe",
                "httpMethod": "POST",
                "headers": {"Stripe-Signature": f"t={now},v1={signature}"},
                "requestContext": {"resourcePath": "/webhooks/stripe", "httpMethod": "POST"},
                "body": body,
                "isBase64Encoded": False,
            }

        handler(delivery(0), context)  # warm: secrets read, clients made
        store = bootstrap.stripe_webhook().events._store  # counts every request it makes
        writes, reads = store.write_requests, store.read_requests  # type: ignore[attr-defined]
        began = time.perf_counter()
        for i in range(1, count):
            answer = handler(delivery(i), context)
            assert answer["statusCode"] == 200, answer
        wall = time.perf_counter() - began
        handled = count - 1
        writes = store.write_requests - writes  # type: ignore[attr-defined]
        reads = store.read_requests - reads  # type: ignore[attr-defined]
        rows.append(
            (
                f"Stripe webhook: {handled} events through the handler",
                f"{handled / wall:.0f} events/s",
                f"{wall / handled * 1000:.1f} ms each on moto",
            )
        )
        rows.append(
            (
                "Stripe webhook: DynamoDB requests per event",
                f"{writes / handled:g} TransactWriteItems + {reads / handled:g} GetItem",
                "target: one TransactWriteItems (plus one read, and the receipt check's read "
                "of the transaction)",
            )
        )
        provisioned.lambdas.shutdown()
        bootstrap.reset()
    return rows
