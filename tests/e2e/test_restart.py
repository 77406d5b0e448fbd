"""Data that survives a restart, end to end: the local stack (`python -m local.stack`, what
`make run` starts) in a subprocess with a state folder of its own, used as a firm and its
client use it, stopped (Ctrl-C, or SIGKILL right after an answer) and started again on the
same folder and ports. Everything is found again, and the pay link emailed before the
restart still works."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ClioStaff, Firm, LocalStack, StripeSandbox, start_stack, stop_stack
from tests.e2e.test_payments import send_bills, transactions
from tests.e2e.test_sending import mails_to, outbox

pytestmark = pytest.mark.e2e

FIRM = "kept-firm"


class Restarts:
    """One state folder and one set of ports; the stack started, stopped and started again."""

    def __init__(self, folder: Path) -> None:
        self.state = folder / "state"
        self.log = folder / "stack.log"
        self.stack: LocalStack | None = None
        self.ports: dict[str, int] | None = None

    def start(self, *args: str) -> LocalStack:
        self.stack = start_stack(self.state, self.log, self.ports, *args)
        self.ports = self.stack.ports  # the emailed links and Clio's webhooks name these
        return self.stack

    def stop(self, sig: int) -> int:
        assert self.stack is not None
        code = stop_stack(self.stack, sig)
        self.stack = None
        return code

    def restart(self, sig: int) -> LocalStack:
        code = self.stop(sig)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), self.log.read_text()
        stack = self.start()
        settled(stack)  # the Stripe webhooks a kill cut off are sent again at start
        return stack


@pytest.fixture
def restarts(tmp_path: Path) -> Any:
    made = Restarts(tmp_path)
    yield made
    if made.stack is not None:
        made.stop(signal.SIGKILL)


def onboard(stack: LocalStack) -> tuple[Firm, ClioStaff]:
    firm, clio = Firm(stack, FIRM), ClioStaff(stack, FIRM)
    assert firm.connect_clio(FIRM).status_code == 302
    made = stack.control("POST", f"/_local/firms/{FIRM}/payment-accounts")
    assert made.status_code == 201, made.text
    return firm, clio


def pay_link_in(mail: dict[str, Any]) -> str:
    (link,) = set(re.findall(r"http://127\.0\.0\.1:\d+/pay/[A-Za-z0-9_-]+", mail["body"]))
    return link


def settled(stack: LocalStack) -> None:
    """Wait until the Stripe sandbox has delivered the webhooks its API calls caused."""
    idle = requests.get(f"{stack.stripe_url}/_sandbox/idle", timeout=30).json()
    assert idle["idle"], "Stripe webhooks still on their way"


def what_a_user_sees(stack: LocalStack, link_id: str) -> dict[str, Any]:
    firm, demo = Firm(stack, FIRM), Firm(stack, "demo")
    return {
        "status": firm.get("/clio/status").json(),
        "invoices": firm.all_invoices("awaiting_payment,paid,void", 100),
        "settings": firm.get("/settings").json(),
        "link": firm.get(f"/payment-links/{link_id}").json(),
        "reconciliation": firm.get("/reconciliation").json()["items"],
        "outbox": outbox(stack),
        "stripe_events": StripeSandbox(stack).events(),
        "demo_invoices": demo.all_invoices("awaiting_payment,paid,void,draft", 100),
        "clio_accounts": requests.get(f"{stack.clio_url}/_sandbox/accounts", timeout=30).json(),
    }


def test_given_bills_sent_paid_and_refunded_when_the_stack_is_stopped_and_started_then_all_is_kept(
    restarts: Restarts,
) -> None:
    stack = restarts.start()
    firm, clio = onboard(stack)
    settings = firm.get("/settings").json()
    settings["firm_name"] = "Kept and Sons LLP"
    settings["templates"]["invoice"]["subject"] = "Your bill {{ bill_numbers }}"
    assert firm.put("/settings", settings).status_code == 200
    client, (first, second), link_id = send_bills(
        firm, clio, [{"total_cents": 12_000}, {"total_cents": 8_000}]
    )
    (mail,) = mails_to(stack, f"{FIRM}@client.example")
    assert mail["subject"].startswith("Your bill ")
    pay_url = pay_link_in(mail)
    assert pay_url == client.pay_url
    (session,) = client.sessions([first])
    StripeSandbox(stack).pay(session["id"], "card")
    (payment,) = transactions(firm, link_id)
    refund = firm.post(
        f"/payment-links/{link_id}/transactions/{payment['id']}/refunds", {"amount_cents": 2_000}
    )
    assert refund.status_code == 201, refund.text
    settled(stack)
    before = what_a_user_sees(stack, link_id)
    assert before["status"]["status"] == "connected"
    assert {t["kind"] for t in before["link"]["transactions"]} == {"payment", "refund"}

    stack = restarts.restart(signal.SIGINT)  # Ctrl-C, then `make run`

    assert what_a_user_sees(stack, link_id) == before
    # The client opens the link from the email sent before the restart and pays the rest.
    page = requests.get(pay_url, headers={"Accept": "application/json"}, timeout=30)
    assert page.status_code == 200, page.text
    assert {b["id"]: b["outstanding_cents"] for b in page.json()["bills"]}[second] == 8_000
    html = requests.get(pay_url, timeout=30)
    assert html.status_code == 200 and "Kept and Sons LLP" in html.text
    (session,) = client.sessions([second])
    StripeSandbox(stack).pay(session["id"], "card")
    paid = {i["id"]: i["paid_gl_cents"] for i in firm.all_invoices("awaiting_payment,paid", 100)}
    assert paid[second] == 8_000
    # The Clio tokens (sealed with the kept KMS key) still work: a new Clio bill syncs.
    late = clio.create_bill(total_cents=4_200, client={"name": "Late Client", "email": None})
    assert firm.sync_now()["status"] == "succeeded"
    assert str(late["id"]) in {i["id"] for i in firm.all_invoices("awaiting_payment", 100)}
    assert late["id"] > max(int(i["id"]) for i in before["invoices"])  # no Clio id reused


def test_given_a_kill_right_after_an_answer_when_started_again_then_what_it_confirmed_is_kept(
    restarts: Restarts,
) -> None:
    stack = restarts.start()
    firm, clio = onboard(stack)
    client, (bill,), link_id = send_bills(firm, clio, [{"total_cents": 15_000}])

    # A payment the checkout page confirmed (its webhooks are delivered before it answers).
    (session,) = client.sessions([bill])
    StripeSandbox(stack).pay(session["id"], "card")
    stack = restarts.restart(signal.SIGKILL)
    firm = Firm(stack, FIRM)
    (payment,) = transactions(firm, link_id)
    assert (payment["status"], payment["amount_cents"]) == ("succeeded", 15_000)

    # A settings change.
    settings = firm.get("/settings").json()
    settings["firm_name"] = "Killed Twice LLP"
    assert firm.put("/settings", settings).status_code == 200
    stack = restarts.restart(signal.SIGKILL)
    firm = Firm(stack, FIRM)
    assert firm.get("/settings").json()["firm_name"] == "Killed Twice LLP"

    # A refund: its Stripe events go out after Stripe's answer, so a kill may cut them off;
    # the restarted sandbox sends what it still owes.
    refund = firm.post(
        f"/payment-links/{link_id}/transactions/{payment['id']}/refunds", {"amount_cents": 5_000}
    )
    assert refund.status_code == 201, refund.text
    stack = restarts.restart(signal.SIGKILL)
    firm = Firm(stack, FIRM)
    kinds = [(t["kind"], t["amount_cents"]) for t in transactions(firm, link_id)]
    assert sorted(kinds) == [("payment", 15_000), ("refund", 5_000)]
    refunds = [e for e in StripeSandbox(stack).events() if e["type"] == "refund.created"]
    assert len(refunds) == 1
    assert requests.get(client.pay_url, timeout=30).status_code == 200

    # The clean-start switch (`make run FRESH=1`): nothing of the above, the demo firm anew.
    restarts.stop(signal.SIGINT)
    stack = restarts.start("--fresh")
    assert Firm(stack, FIRM).get("/clio/status").json()["status"] == "not_connected"
    assert Firm(stack, "demo").get("/clio/status").json()["status"] == "connected"
    assert requests.get(client.pay_url, timeout=30).status_code == 404


def test_given_users_of_the_pool_when_the_stack_is_killed_and_restarted_then_they_sign_in_again(
    restarts: Restarts,
) -> None:
    """The emulated user pool is kept as the rest is: same pool and app client ids, same
    signing key (a token issued before the restart still verifies), the users with their
    passwords, firm and groups; written as it changes, so a kill keeps it too."""
    from tests.e2e.test_accounts import PASSWORD, User, _cognito, make_user, pool_info, sign_in

    stack = restarts.start("--no-seed")
    firm = "kept-pool-firm"
    admin = make_user(stack, firm, "admin")
    info = pool_info(stack)
    # An invited staff member who accepted: the emailed temporary password, then their own.
    email = f"invitee@{firm}.example"
    invited = admin.call("POST", "/users", {"email": email, "role": "staff"})
    assert invited.status_code == 201, invited.text
    mail = [m for m in stack.outbox() if m["to"] == [email]][-1]
    temporary = re.search(r"temporary password (\S+?),? then", mail["body"])
    assert temporary, mail["body"]
    client = _cognito(info)
    challenge = client.initiate_auth(
        ClientId=info["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": temporary.group(1)},
    )
    client.respond_to_auth_challenge(
        ClientId=info["client_id"],
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": PASSWORD},
    )
    before = admin.call("GET", "/me").json()

    # Killed right after the answers: nothing had a chance to flush at exit.
    stack = restarts.restart(signal.SIGKILL)
    assert pool_info(stack) == info
    old = User(stack, admin.email, admin.token)
    me = old.call("GET", "/me")  # the ID token issued before the restart, not yet expired
    assert me.status_code == 200, me.text
    assert me.json() == before
    again = sign_in(stack, info, admin.email)  # the same password
    assert again.token != admin.token
    assert again.call("GET", "/me").json() == before
    with pytest.raises(_cognito(info).exceptions.NotAuthorizedException):
        sign_in(stack, info, admin.email, "Not-the-password-1")
    staff = sign_in(stack, info, email)  # the password they chose, no challenge again
    me = staff.call("GET", "/me").json()
    assert me["firm_id"] == firm and me["role"] == "staff" and me["email"] == email
    listed = {u["email"]: u for u in again.call("GET", "/users").json()["users"]}
    assert listed[email]["status"] == "active" and listed[email]["role"] == "staff"
    assert set(listed) == {admin.email, email}

    # And a Ctrl-C and start again keeps it as well.
    stack = restarts.restart(signal.SIGINT)
    assert pool_info(stack) == info
    assert User(stack, admin.email, admin.token).call("GET", "/me").json() == before
    assert sign_in(stack, info, email).call("GET", "/me").json()["role"] == "staff"
