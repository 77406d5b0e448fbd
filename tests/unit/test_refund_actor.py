"""A refund names the firm user who made it (A4): on the refund and on its ledger entries,
through Stripe's confirmation, and on a refund Stripe refuses too."""

from __future__ import annotations

from billbridge.domain.payments import TxnKind
from tests.unit.pay_harness import FIRM, Pay


def test_given_a_refund_by_a_user_then_the_refund_and_its_ledger_entry_name_them() -> None:
    pay = Pay()
    token = pay.link("pl_1", pay.bill(1, 8_000))
    session = pay.checkout(token, [1])
    pay.pay(session)
    refund = pay.api.payment_links.refund(
        FIRM, "pl_1", f"pay_{session}", 3_000, by_user_id="sub-ann", by_email="ann@firm.example"
    )
    assert (refund.requested_by_user_id, refund.requested_by_email) == (
        "sub-ann",
        "ann@firm.example",
    )
    stored = pay.world.payments.get_transaction(FIRM, "pl_1", refund.id)
    assert stored is not None and stored.requested_by_user_id == "sub-ann"
    entries = {e.kind.value: e for e in pay.world.payments.ledger}
    assert entries["refund"].user_id == "sub-ann"
    assert entries["refund"].user_email == "ann@firm.example"
    # A client's payment names no firm user.
    assert entries["payment"].user_id is None
    assert [t.kind for t in pay.world.payments.transactions.values()].count(TxnKind.REFUND) == 1
