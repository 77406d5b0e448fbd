from dataclasses import replace
from datetime import date

import pytest

from billbridge.domain.bills import Bill, BillKind, BillState, Client, StoredBill
from billbridge.domain.envelopes import (
    EnvelopeStatus,
    draft_text,
    group_bills,
    merge_fields,
    money,
)
from billbridge.domain.errors import NotFound, RuleViolation
from billbridge.domain.settings import EmailTemplate, FirmSettings, Templates
from billbridge.domain.templates import (
    PAY_LINK_MARKER,
    TemplateProblem,
    check_template,
    fill_pay_link,
)
from billbridge.services.bill_pdfs import BillPdfs
from billbridge.services.envelopes import EnvelopeService
from tests.fakes import (
    T0,
    FakeBills,
    FakeConnections,
    FakeEnvelopes,
    FakePdfStore,
    FakeSettings,
)

FIRM = "firm-a"


def stored(
    bill_id,
    *,
    client_id=1,
    kind=BillKind.INVOICE,
    outstanding=10_000,
    due=None,
    state=BillState.AWAITING_PAYMENT,
    email="c@example.com",
    number=None,
):
    bill = Bill(
        id=bill_id,
        etag="e",
        number=number or f"INV-{bill_id}",
        state=state,
        kind=kind,
        client=Client(id=client_id, name=f"Client {client_id}", email=email),
        matter=None,
        total_cents=outstanding,
        outstanding_clio_cents=outstanding,
        currency="USD",
        issued_at=date(2026, 10, 1),
        due_at=due or date(2026, 11, bill_id % 28 + 1),
        clio_updated_at=T0,
        clio_url=f"https://app.clio.com/nc/#/bills/{bill_id}",
    )
    return StoredBill(bill=bill)


@pytest.mark.parametrize(
    ("count", "sizes"), [(1, [1]), (10, [10]), (11, [10, 1]), (25, [10, 10, 5])]
)
def test_given_one_clients_bills_with_aggregate_on_then_envelopes_hold_at_most_ten(count, sizes):
    groups = group_bills([stored(i) for i in range(1, count + 1)], aggregate=True)
    assert [len(g) for g in groups] == sizes
    assert sorted(b.bill.id for g in groups for b in g) == list(range(1, count + 1))


def test_given_several_clients_with_aggregate_on_then_one_envelope_per_client_in_selection_order():
    bills = [
        stored(1, client_id=7),
        stored(2, client_id=3),
        stored(3, client_id=7),
        stored(4, client_id=3),
    ]
    groups = group_bills(bills, aggregate=True)
    assert [[b.bill.id for b in g] for g in groups] == [[1, 3], [2, 4]]


def test_given_aggregate_off_then_one_envelope_per_bill():
    bills = [stored(1), stored(2, client_id=2), stored(3)]
    assert [[b.bill.id for b in g] for g in group_bills(bills, aggregate=False)] == [[1], [2], [3]]


def test_given_an_aggregate_envelope_then_bills_are_ordered_by_due_date():
    bills = [
        stored(1, due=date(2026, 12, 1)),
        stored(2, due=date(2026, 10, 1)),
        stored(3, due=date(2026, 11, 1)),
    ]
    assert [b.bill.id for b in group_bills(bills, aggregate=True)[0]] == [2, 3, 1]


def test_given_bills_then_merge_fields_name_numbers_amounts_and_dates():
    bills = [
        stored(1, outstanding=123_456, due=date(2026, 10, 5)),
        stored(2, outstanding=44, due=date(2026, 10, 5)),
    ]
    fields = merge_fields(bills, FirmSettings(firm_name="Smith LLP"))
    assert fields["bill_numbers"] == "INV-1, INV-2"
    assert fields["amount_due"] == "$1,235.00"
    assert fields["amounts_due"] == "INV-1: $1,234.56\nINV-2: $0.44"
    assert fields["due_dates"] == "Oct 5, 2026"
    assert fields["firm_name"] == "Smith LLP" and fields["client_name"] == "Client 1"


def test_money_formats_cents_exactly():
    assert money(5, "USD") == "$0.05" and money(100_000_00, "GBP") == "£100,000.00"
    assert money(-250, "EUR") == "-€2.50" and money(1999, "JPY") == "19.99 JPY"


def test_given_trust_requests_only_then_the_trust_template_is_used_and_mixed_its_own():
    settings = FirmSettings(
        templates=Templates(
            invoice=EmailTemplate(
                subject="Invoice {{ bill_numbers }}", body="Pay {{ amount_due }}: {{ pay_link }}"
            ),
            trust_request=EmailTemplate(
                subject="Trust {{ bill_numbers }}", body="Deposit {{ amount_due }}"
            ),
            mixed=EmailTemplate(
                subject="Both {{ bill_numbers }}",
                body="Invoices {{ invoice_amount_due }}:\n{{ invoice_lines }}\n"
                "Trust {{ trust_amount_due }}:\n{{ trust_request_lines }}",
            ),
        )
    )
    trust = [stored(1, kind=BillKind.TRUST_REQUEST)]
    mixed = [stored(1, kind=BillKind.TRUST_REQUEST), stored(2)]
    assert draft_text(trust, settings) == ("Trust INV-1", "Deposit $100.00")
    subject, body = draft_text(mixed, settings)
    assert subject == "Both INV-1, INV-2"
    assert body == "Invoices $100.00:\nINV-2: $100.00\nTrust $100.00:\nINV-1: $100.00"


@pytest.mark.parametrize(
    "text",
    ["{{ clientname }}", "{% for x in %}", "{{ client_name.__class__.__mro__ }}", "{{ 1/0 }}"],
)
def test_given_a_bad_template_then_it_is_refused_with_the_reason(text):
    with pytest.raises(TemplateProblem):
        check_template(text)


def test_given_a_body_without_the_link_marker_then_the_link_is_added_at_the_end():
    assert (
        fill_pay_link(f"Pay here {PAY_LINK_MARKER} thanks", "https://x/pay/t")
        == "Pay here https://x/pay/t thanks"
    )
    assert fill_pay_link("Please pay.", "https://x/pay/t").endswith("Pay online: https://x/pay/t\n")


def _service(bills, settings=None):
    envelopes = FakeEnvelopes()
    fake_bills = FakeBills()
    for s in bills:
        fake_bills.items[(FIRM, s.bill.id)] = s
    service = EnvelopeService(
        bills=fake_bills,
        envelopes=envelopes,
        settings=settings or FakeSettings(),
        connections=FakeConnections(),
        clio_for=lambda c: None,
        pdfs=BillPdfs(bills=fake_bills, store=FakePdfStore()),
        clock=lambda: T0,
    )
    return service, envelopes


def test_given_selected_bills_when_drafted_then_each_envelope_is_a_draft_to_the_clients_address():
    service, _ = _service([stored(1), stored(2, client_id=2, email="two@example.com")])
    batch, drafts = service.draft(FIRM, [1, 2, 1])
    assert [e.bill_ids for e in drafts] == [(1,), (2,)]
    assert [e.to for e in drafts] == ["c@example.com", "two@example.com"]
    assert all(e.status is EnvelopeStatus.DRAFT and e.batch_id == batch.id for e in drafts)
    assert service.get_batch(FIRM, batch.id)[1] == drafts


@pytest.mark.parametrize(
    ("bill", "code"),
    [
        (stored(5, outstanding=0), "bill_not_outstanding"),
        (stored(5, state=BillState.PAID), "bill_not_outstanding"),
        (stored(5, state=BillState.DRAFT), "bill_not_outstanding"),
        (stored(5, email=None), "client_without_email"),
    ],
)
def test_given_a_bill_that_cannot_be_sent_then_422_names_it_and_nothing_is_written(bill, code):
    service, envelopes = _service([stored(1), bill])
    with pytest.raises(RuleViolation) as error:
        service.draft(FIRM, [1, 5])
    assert error.value.code == code and error.value.message.startswith("INV-5 cannot be sent: ")
    assert error.value.message.endswith(".")
    assert envelopes.envelopes == {} and envelopes.batches == {}


def test_given_another_firms_bill_then_it_is_refused_as_not_found():
    service, _ = _service([stored(1)])
    with pytest.raises(NotFound) as error:
        service.draft(FIRM, [1, 999])
    assert error.value.code == "bill_not_found" and "999" in error.value.message


def test_given_a_draft_when_edited_then_it_changes_and_a_sent_one_cannot():
    service, envelopes = _service([stored(1)])
    _, (draft,) = service.draft(FIRM, [1])
    edited = service.edit(FIRM, draft.id, "New subject", None)
    assert edited.subject == "New subject" and edited.body == draft.body
    envelopes.envelopes[(FIRM, draft.id)] = replace(edited, status=EnvelopeStatus.SENT)
    with pytest.raises(RuleViolation):
        service.edit(FIRM, draft.id, "Again", None)
    with pytest.raises(NotFound):
        service.edit(FIRM, "env_unknown", "x", None)
