"""A firm with bills and payment links on fakes, and the moves of its client, Stripe and Clio:
the shared setup of the payment service and money invariant tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from billbridge.domain.bills import BillState, StoredBill
from billbridge.domain.payment_links import PaymentLink, link_token, token_hash
from billbridge.domain.payments import Method
from billbridge.services.ports import PaymentAccounts
from tests.fakes import FIRM_ACCOUNTS, T0, FakeWorld, stored_bill

FIRM = "firm-a"


class Pay:
    """A firm with bills and payment links on fakes, and the client's and Stripe's moves."""

    def __init__(self) -> None:
        self.world = FakeWorld()
        self.world.payments.save_payment_accounts(PaymentAccounts(FIRM, *FIRM_ACCOUNTS))
        self.page = self.world.pay_page()
        self.events = self.world.stripe_webhook().events
        self.api = self.world.api()

    def bill(self, bill_id: int, total: int = 20_000, kind: str = "invoice") -> int:
        self.world.bills.items[(FIRM, bill_id)] = stored_bill(bill_id, total=total, kind=kind)
        return bill_id

    def link(self, link_id: str, *bill_ids: int) -> str:
        """A payment link for the bills (as a send makes it); answers the pay token."""
        token = link_token(self.world.secrets.link_key, FIRM, link_id)
        self.world.links.create(
            PaymentLink(id=link_id, firm_id=FIRM, bill_ids=bill_ids, created_at=T0),
            token_hash(token),
        )
        return token

    def checkout(
        self, token: str, bill_ids: list[int], amount: int | None = None, method: str = "card"
    ) -> str:
        ((_, session),) = self.page.checkout(token, bill_ids, amount, Method(method))
        return session.id

    def deliver(self, events: list[dict[str, Any]]) -> list[str]:
        return [self.events.handle(e).outcome for e in events]

    def pay(self, session_id: str) -> list[str]:
        return self.deliver(self.world.stripe.pay(session_id))

    def money(self, bill_id: int) -> StoredBill:
        return self.world.bills.items[(FIRM, bill_id)]

    def set_state(self, bill_id: int, state: BillState) -> None:
        stored = self.money(bill_id)
        self.world.bills.items[(FIRM, bill_id)] = replace(
            stored, bill=replace(stored.bill, state=state)
        )

    def report(self) -> list[tuple[int, str, int]]:
        return [
            (line.bill.bill.id, line.action.value, line.amount_cents)
            for line in self.api.reconciliation.report(FIRM)
        ]
