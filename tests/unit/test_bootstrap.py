"""The composition root builds every function's services on fakes (no AWS, no network), and
the app built that way works end to end: a bill sent, paid on the pay page, recorded from
Stripe's event, listed for reconciliation."""

from __future__ import annotations

from billbridge.domain.payments import Method
from billbridge.services.ports import PaymentAccounts
from tests.fakes import FIRM_ACCOUNTS, FakeWorld, connection, stored_bill

FIRM = "firm-a"


def test_given_fakes_for_every_port_then_each_function_is_built_without_aws() -> None:
    world = FakeWorld()
    built = [
        world.api(),
        world.pay_page(),
        world.stripe_webhook(),
        world.send_steps(),
        world.delivery_events(),
        world.sync_worker(),
        world.clio_webhook(),
    ]
    assert all(b is not None for b in built)


def test_given_the_app_on_fakes_when_a_bill_is_sent_and_paid_then_staff_see_it_to_record() -> None:
    world = FakeWorld()
    world.connections.save(connection(FIRM))
    world.bills.items[(FIRM, 1)] = stored_bill(1, total=12_000)
    world.payments.save_payment_accounts(PaymentAccounts(FIRM, *FIRM_ACCOUNTS))
    api = world.api()

    _batch, (envelope,) = api.envelopes.draft(FIRM, [1])
    world.send_steps().send_step(FIRM, envelope.id, "claim-1")
    (email,) = world.mailer.sent
    assert email.attachments == [("INV-00001.pdf", b"%PDF-1.4 bill 1")]
    token = next(w for w in email.text.split() if "/pay/" in w).rsplit("/", 1)[1]

    page = world.pay_page()
    assert [b.payable_cents for b in page.view(token).bills] == [12_000]
    ((_, session),) = page.checkout(token, [1], 5_000, Method.CARD)
    for event in world.stripe.pay(session.id):
        assert world.stripe_webhook().events.handle(event).outcome == "applied"

    assert world.bills.items[(FIRM, 1)].paid_gl_cents == 5_000
    (line,) = api.reconciliation.report(FIRM)
    assert (line.bill.bill.id, line.action.value, line.amount_cents) == (1, "record_payment", 5_000)
