"""The firm's connected accounts and its onboarding marks on DynamoDB (moto), and the SES
identity check: conditional writes (one account per firm and kind even when writers race, a
stale version refused), the checklist's marks kept per step, SES's verification status."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from billbridge.adapters.dynamo_onboarding import DynamoOnboardingRepository
from billbridge.adapters.dynamo_payments import DynamoPaymentStore
from billbridge.adapters.ses_identity import SesSenderIdentity
from billbridge.domain.payment_accounts import AccountStatus, ConnectedAccount
from billbridge.domain.payments import Account
from billbridge.services.ports import PaymentAccounts, StaleTransaction
from local.aws_template import create_dynamodb_tables
from tests.integration.test_store import no_sleep, template

FIRM = "firm-acct"
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
_numbers = itertools.count(1)


@pytest.fixture
def table(aws: Any) -> Iterator[str]:
    number = next(_numbers)
    tables = create_dynamodb_tables(aws, template(), name_for=lambda t: f"acct-{t}-{number}")
    yield tables["AppTable"]
    aws.delete_table(TableName=tables["AppTable"])


def test_given_a_connected_account_then_it_round_trips_and_a_stale_version_is_refused(
    aws: Any, table: str
) -> None:
    store = DynamoPaymentStore(aws, table, sleep=no_sleep)
    new = ConnectedAccount(
        firm_id=FIRM,
        account=Account.TRUST,
        stripe_account_id="acct_t",
        currently_due=("external_account", "tos_acceptance.date"),
        past_due=("external_account",),
        disabled_reason="requirements.past_due",
        observed_at=0,
    )

    saved = store.save_connected_account(new)
    assert saved.version == 1
    assert store.connected_accounts(FIRM) == {Account.TRUST: saved}
    with pytest.raises(StaleTransaction):
        store.save_connected_account(new)  # version 0: the item must not exist
    ready = replace(
        saved,
        charges_enabled=True,
        payouts_enabled=True,
        currently_due=(),
        past_due=(),
        disabled_reason=None,
        observed_at=1_700_000_000,
    )
    assert store.save_connected_account(ready).status is AccountStatus.READY
    with pytest.raises(StaleTransaction):
        store.save_connected_account(saved)  # read at version 1, stored is 2 now
    assert store.connected_accounts(FIRM)[Account.TRUST].version == 2
    assert store.connected_accounts("another-firm") == {}
    assert store.payment_accounts(FIRM) is None  # the operating account has not begun


def test_given_two_writers_creating_the_same_account_at_once_then_exactly_one_wins(
    aws: Any, table: str
) -> None:
    store = DynamoPaymentStore(aws, table, sleep=no_sleep)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def create(n: int) -> None:
        start.wait(timeout=30)
        try:
            store.save_connected_account(
                ConnectedAccount(
                    firm_id=FIRM, account=Account.OPERATING, stripe_account_id=f"acct_{n}"
                )
            )
            outcomes.append(f"acct_{n}")
        except StaleTransaction:
            outcomes.append("lost")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [o for o in outcomes if o != "lost"]
    assert len(outcomes) == 8 and len(winners) == 1
    stored = store.connected_accounts(FIRM)[Account.OPERATING]
    assert stored.stripe_account_id == winners[0]


def test_given_accounts_recorded_ready_then_both_ids_and_checkout_can_use_them(
    aws: Any, table: str
) -> None:
    store = DynamoPaymentStore(aws, table, sleep=no_sleep)

    store.save_payment_accounts(PaymentAccounts(FIRM, "acct_t", "acct_o"))

    found = store.connected_accounts(FIRM)
    assert {k: (a.stripe_account_id, a.status) for k, a in found.items()} == {
        Account.TRUST: ("acct_t", AccountStatus.READY),
        Account.OPERATING: ("acct_o", AccountStatus.READY),
    }
    assert store.payment_accounts(FIRM) == PaymentAccounts(FIRM, "acct_t", "acct_o")


def test_given_marks_on_different_steps_then_each_is_kept_and_a_new_mark_replaces_its_own(
    aws: Any, table: str
) -> None:
    marks = DynamoOnboardingRepository(aws, table, sleep=no_sleep)
    assert marks.marks(FIRM) == {}

    marks.mark(FIRM, "templates", "done", NOW)
    marks.mark(FIRM, "sender", "skipped", NOW)
    marks.mark(FIRM, "sender", "todo", NOW)

    assert marks.marks(FIRM) == {"templates": "done", "sender": "todo"}
    assert marks.marks("another-firm") == {}


def test_given_ses_identities_then_the_sender_status_is_ses_verification_status(
    aws: Any,
) -> None:
    ses = boto3.client("ses", region_name="us-east-1")
    identity = SesSenderIdentity(ses)
    assert identity.verification_status("nobody@unknown.example") == "not_found"

    ses.verify_email_identity(EmailAddress="billing@firm.example")
    ses.verify_domain_identity(Domain="verified.example")

    assert identity.verification_status("billing@firm.example") == "verified"
    assert identity.verification_status("anyone@verified.example") == "verified"
