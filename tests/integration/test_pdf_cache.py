"""The bill PDF cache: the bucket as template.yaml declares it (on moto), its keys, and the
whole path through the handlers: the sync prefetches, a send then asks Clio for nothing but
the bills changed since."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from billbridge.adapters.s3_pdfs import S3PdfStore, pdf_key
from local.aws_template import create_s3_buckets
from local.clio_sandbox.seed import seed_many
from local.provision import FAKE_AWS_ENV


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def test_given_the_template_when_the_pdf_bucket_is_made_then_it_is_private_encrypted_and_expires(
    s3: Any,
) -> None:
    buckets = create_s3_buckets(s3, name_for=lambda logical: f"test-{logical.lower()}")
    name = buckets["BillPdfBucket"]

    encryption = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert all(block[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls"))
    assert block["RestrictPublicBuckets"]
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert rule["Status"] == "Enabled" and rule["Expiration"]["Days"] > 0


def test_given_two_versions_of_a_bill_when_stored_then_each_has_its_own_object(s3: Any) -> None:
    name = create_s3_buckets(s3, name_for=lambda logical: f"test-{logical.lower()}")[
        "BillPdfBucket"
    ]
    store = S3PdfStore(s3, name)
    store.put("firm-a", 7, '"v1"', b"%PDF one")
    store.put("firm-a", 7, '"v2"', b"%PDF two")

    assert store.get("firm-a", 7, '"v1"') == b"%PDF one"
    assert store.get("firm-a", 7, '"v2"') == b"%PDF two"
    assert store.get("firm-a", 7, '"v3"') is None
    assert store.get("firm-b", 7, '"v1"') is None
    head = s3.head_object(Bucket=name, Key=pdf_key("firm-a", 7, '"v1"'))
    assert head["ContentType"] == "application/pdf"


def test_given_a_firm_id_with_slashes_when_keyed_then_it_cannot_reach_another_firms_prefix() -> (
    None
):
    assert pdf_key("a/../b", 1, "e").startswith("bills/a%2F..%2Fb/1/")
    assert pdf_key("a/../b", 1, "e") != pdf_key("b", 1, "e")


# -- through the handlers -------------------------------------------------------------------------


def _previews(stack: Any, firm: str) -> int:
    by_path = stack.clio.state.stats(firm)["by_path"]
    return sum(n for path, n in by_path.items() if path.endswith("/preview.json"))


def _sendable_batch(stack: Any, firm: str, count: int) -> tuple[Any, dict[str, Any], list[str]]:
    ids = seed_many(stack.clio.state, firm, count + count // 2, 9)
    for bill_id in ids:
        stack.clio.state.update_bill(
            bill_id, state="awaiting_payment", balance_cents=7_500, notify=False
        )
    # Connecting runs the first sync, which prefetches the PDFs with the budget it leaves.
    assert stack.connect(firm, firm).status_code == 302
    session = stack.firm(firm)
    items = session.get(
        f"{stack.api.url}/invoices", params={"states": "awaiting_payment", "page_size": 200}
    ).json()["items"]
    bill_ids = [i["id"] for i in items if i["client"]["email"]][:count]
    answer = session.post(f"{stack.api.url}/envelopes", json={"bill_ids": bill_ids})
    assert answer.status_code == 201, answer.text
    return session, answer.json(), bill_ids


def _send(stack: Any, session: Any, batch_id: str) -> None:
    run = session.post(f"{stack.api.url}/batches/{batch_id}/send")
    assert run.status_code == 202, run.text
    assert stack.wait_execution(run.json()["execution_id"])["status"] == "SUCCEEDED"


def test_given_a_sync_that_prefetched_when_a_batch_is_sent_then_clio_is_asked_for_no_pdf(
    inproc: Any,
) -> None:
    session, batch, _ = _sendable_batch(inproc, "prefetched", 6)
    assert _previews(inproc, "prefetched") >= 6  # the sync's prefetch

    inproc.clio.state.reset_stats()
    _send(inproc, session, batch["batch_id"])

    assert _previews(inproc, "prefetched") == 0
    mails = inproc.outbox()
    assert len(mails) == 6 and all(len(m["attachments"]) == 1 for m in mails)


def test_given_bills_changed_after_the_prefetch_when_sent_then_only_those_are_fetched(
    inproc: Any,
) -> None:
    session, batch, bill_ids = _sendable_batch(inproc, "changed", 6)
    changed = bill_ids[::2]
    for bill_id in changed:
        # A webhook brings each change within moments; the prefetch has not run since.
        inproc.clio.state.update_bill(int(bill_id), balance_cents=7_000)
    inproc.clio.dispatcher.wait_idle()
    inproc.clio.state.reset_stats()

    _send(inproc, session, batch["batch_id"])

    assert _previews(inproc, "changed") == len(changed)


def test_given_a_cached_pdf_when_staff_open_it_then_it_comes_from_the_cache(inproc: Any) -> None:
    session, batch, _ = _sendable_batch(inproc, "viewing", 2)
    envelope = batch["envelopes"][0]
    inproc.clio.state.reset_stats()

    answer = session.get(
        f"{inproc.api.url}/envelopes/{envelope['id']}/bills/{envelope['bill_ids'][0]}.pdf"
    )

    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    assert _previews(inproc, "viewing") == 0
