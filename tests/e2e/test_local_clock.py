"""The local clock end to end (`POST /_local/clock`, `GET /_local/clock`): a stack of its own
(moving the clock of the shared one would move every other test's time), whose functions in
their worker processes, Clio sandbox and Stripe sandbox all read the moved time, and which
keeps it across a restart."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ClioStaff, Firm
from tests.e2e.test_restart import Restarts

pytestmark = pytest.mark.e2e

FIRM = "clock-firm"


def near(moment: datetime, expected: datetime, slack: timedelta = timedelta(minutes=10)) -> bool:
    return abs(moment - expected) < slack


def at(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


@pytest.fixture
def restarts(tmp_path: Path) -> Any:
    made = Restarts(tmp_path)
    yield made
    if made.stack is not None:
        made.stop(signal.SIGKILL)


def test_when_the_clock_is_moved_then_functions_sandboxes_and_a_restart_all_keep_it(
    restarts: Restarts,
) -> None:
    stack = restarts.start("--no-seed")
    firm, clio = Firm(stack, FIRM), ClioStaff(stack, FIRM)
    assert firm.connect_clio(FIRM).status_code == 302
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)

    moved = requests.post(
        f"{stack.api_url}/_local/clock",
        json={"now": later.isoformat().replace("+00:00", "Z")},
        headers=stack.admin_headers,
        timeout=30,
    )

    assert moved.status_code == 200, moved.text
    assert near(at(moved.json()["now"]), later)
    assert near(at(stack.control("GET", "/_local/clock").json()["now"]), later)
    # A firm may not move it, nor read it as a control.
    refused = requests.post(
        f"{stack.api_url}/_local/clock",
        json={"now": "2030-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer dev-{FIRM}"},
        timeout=30,
    )
    assert refused.status_code == 403
    # The sync function (a worker process) stamps its run with the moved time, and the Clio
    # sandbox issues a new bill on the moved date (and still takes the tokens issued before).
    bill = clio.create_bill(total_cents=12_300)
    run = firm.sync_now()
    assert run["status"] == "succeeded", run
    assert near(at(run["finished_at"]), later)
    invoices = firm.all_invoices("awaiting_payment", 50)
    (invoice,) = [i for i in invoices if i["id"] == str(bill["id"])]
    assert invoice["issued_at"].startswith(later.date().isoformat())
    # The Stripe sandbox dates what it makes now by the moved clock.
    made = stack.control("POST", f"/_local/firms/{FIRM}/payment-accounts").json()
    account = requests.get(
        f"{stack.stripe_url}/v1/accounts/{made['trust_account_id']}",
        headers={"Authorization": "Bearer sk_test_sandbox"},
        timeout=30,
    ).json()
    assert near(datetime.fromtimestamp(account["created"], UTC), later)

    stack = restarts.restart(signal.SIGTERM)

    assert near(at(stack.control("GET", "/_local/clock").json()["now"]), later)
    run = Firm(stack, FIRM).sync_now()
    assert run["status"] == "succeeded" and near(at(run["finished_at"]), later)
