"""Issue 13 for the clerk: every amount a client is asked for is what is payable now, a bill
with nothing payable is not sendable and says why, mixed envelopes have their own wording, and
every message people read is in money format and in sentences."""

import ast
import pathlib
from dataclasses import replace

import pytest

from billbridge.domain import errors as errors_module
from billbridge.domain.bills import BillKind, BillState, StoredBill
from billbridge.domain.envelopes import (
    attachment_name,
    draft_text,
    merge_fields,
    template_kind,
)
from billbridge.domain.errors import DomainError, InvalidInput, RuleViolation
from billbridge.domain.money import format_money
from billbridge.domain.payments import (
    Account,
    Allocation,
    Method,
    PayableBill,
    Transaction,
    TxnKind,
    TxnStatus,
    allocate,
    plan_refund,
    split_by_account,
)
from billbridge.domain.settings import FirmSettings
from billbridge.domain.templates import PAY_LINK_MARKER
from tests.fakes import T0
from tests.unit.test_envelopes import FIRM, _service, stored

PACKAGE = pathlib.Path(__file__).parents[2] / "layers" / "billbridge" / "billbridge"


def paid_here(bill: StoredBill, paid: int, *, pending: int = 0) -> StoredBill:
    """A bill our payments covered (`paid` settled, `pending` settling) that Clio does not show
    yet: its baseline is Clio's outstanding when the first payment came."""
    return replace(
        bill,
        paid_gl_cents=paid,
        pending_cents=pending,
        baseline_outstanding_cents=bill.bill.outstanding_clio_cents,
    )


# --- format_money -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "currency", "text"),
    [
        (37210, "USD", "$372.10"),
        (113025, "USD", "$1,130.25"),
        (5, "USD", "$0.05"),
        (0, "USD", "$0.00"),
        (-50000, "USD", "-$500.00"),
        (123456789, "EUR", "€1,234,567.89"),
        (1000, "CHF", "10.00 CHF"),
        (1000, "usd", "$10.00"),
    ],
)
def test_given_cents_then_format_money_writes_them_as_people_read_money(cents, currency, text):
    assert format_money(cents, currency) == text


@pytest.mark.parametrize("value", [True, 12.5, "100", None])
def test_given_something_that_is_not_integer_cents_then_format_money_refuses_it(value):
    with pytest.raises(TypeError):
        format_money(value, "USD")


# --- payable now --------------------------------------------------------------------------------


def test_given_a_bill_paid_here_and_not_yet_in_clio_then_it_is_not_sendable_and_says_why():
    # TR-00039 of the issue: Paid (GL) $1,130.25, nothing payable, Clio not updated yet.
    bill = paid_here(stored(39, outstanding=113025, number="TR-00039"), 113025)
    assert bill.payable_cents == 0
    problem = bill.unsendable()
    assert problem is not None and problem.code == "nothing_payable"
    assert problem.message == (
        "TR-00039 cannot be sent: it is already paid through BillBridge ($1,130.25 in Paid "
        "(GL)), which Clio does not show yet, so nothing is payable on it."
    )


def test_given_a_bill_whose_bank_payment_is_settling_then_it_says_the_payment_is_pending():
    bill = paid_here(stored(7, outstanding=20000), 0, pending=20000)
    problem = bill.unsendable()
    assert problem is not None and problem.code == "payment_pending"
    assert "a bank payment of $200.00 is still settling" in problem.message


def test_given_a_bill_partly_paid_here_then_it_stays_sendable_for_what_is_left():
    bill = paid_here(stored(7, outstanding=20000), 5000)
    assert bill.unsendable() is None and bill.payable_cents == 15000


def test_given_a_paid_bill_when_drafted_then_422_nothing_payable_and_nothing_written():
    service, envelopes = _service([stored(1), paid_here(stored(39, number="TR-00039"), 10_000)])
    with pytest.raises(RuleViolation) as refused:
        service.draft(FIRM, [1, 39])
    assert (refused.value.code, refused.value.field) == ("nothing_payable", "bill_ids")
    assert "$100.00 in Paid (GL)" in refused.value.message
    assert envelopes.envelopes == {} and envelopes.batches == {}


def test_given_bills_partly_paid_here_then_every_merge_field_asks_for_what_is_payable_now():
    bills = [paid_here(stored(1, outstanding=50000), 12790), stored(2, outstanding=10000)]
    fields = merge_fields(bills, FirmSettings())
    assert fields["amount_due"] == "$472.10"
    assert fields["amounts_due"] == "INV-1: $372.10\nINV-2: $100.00"
    _subject, body = draft_text(bills, FirmSettings())
    assert "$472.10" in body and "$600.00" not in body and "$500.00" not in body


# --- mixed envelopes ------------------------------------------------------------------------------


def test_given_trust_and_operating_bills_together_then_the_mixed_template_lists_them_apart():
    trust = stored(1, kind=BillKind.TRUST_REQUEST, outstanding=30000, number="TR-1")
    invoice = stored(2, outstanding=12000, number="INV-2")
    assert template_kind([trust, invoice]) == "mixed"
    assert template_kind([trust]) == "trust_request" and template_kind([invoice]) == "invoice"
    subject, body = draft_text([trust, invoice], FirmSettings(firm_name="Smith LLP"))
    assert subject == "Invoices and trust requests TR-1, INV-2 from Smith LLP"
    assert "Invoices ($120.00):\nINV-2: $120.00" in body
    assert "Trust requests ($300.00):\nTR-1: $300.00" in body
    assert "deposited into our trust account" in body
    assert "$420.00 in all" in body and PAY_LINK_MARKER in body
    assert "Please find attached invoice " not in body


def test_given_settings_stored_before_the_mixed_template_then_they_read_with_its_default():
    stored_settings = FirmSettings().model_dump(mode="json")
    del stored_settings["templates"]["mixed"]
    settings = FirmSettings.model_validate(stored_settings)
    assert "trust account" in settings.templates.mixed.body


# --- names by number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "name"),
    [("INV-00037", "INV-00037.pdf"), ("2026/04 #7", "2026-04-7.pdf"), ("///", "10037.pdf")],
)
def test_given_a_bill_number_then_its_attachment_is_named_by_it(number, name):
    assert attachment_name(number, 10037) == name


# --- messages people read ------------------------------------------------------------------------


def _payment(amount: int, method: Method = Method.CARD) -> Transaction:
    return Transaction(
        id="pay_1",
        firm_id=FIRM,
        link_id="lnk",
        kind=TxnKind.PAYMENT,
        method=method,
        account=Account.OPERATING,
        status=TxnStatus.SUCCEEDED,
        amount_cents=amount,
        currency="USD",
        allocations=(Allocation(1, Account.OPERATING, amount),),
        created_at=T0,
        updated_at=T0,
        payment_intent_id="pi_1",
    )


def _payable(cents: int, kind: BillKind = BillKind.INVOICE) -> PayableBill:
    return PayableBill(1, "INV-1", kind, None, None, cents, "USD")


@pytest.mark.parametrize(
    ("refuse", "expected"),
    [
        (
            lambda: allocate([_payable(37210)], 50000),
            "The amount, $500.00, is more than is due on the chosen bills: at most $372.10 can "
            "be paid.",
        ),
        (
            lambda: split_by_account([Allocation(1, Account.TRUST, 20)]),
            "The trust part of this payment ($0.20) is below the minimum card or bank payment "
            "of $0.50.",
        ),
        (
            lambda: plan_refund(_payment(10000), 20000),
            "The refund ($200.00) is more than is left to refund on this payment ($100.00).",
        ),
        (
            lambda: plan_refund(_payment(10000, Method.ACH), 4000),
            "Bank (ACH) payments can only be refunded in full ($100.00), not in part.",
        ),
        (lambda: allocate([_payable(100)], 0), "The amount must be more than zero."),
    ],
)
def test_given_a_refused_amount_then_the_message_is_a_sentence_in_money_format(refuse, expected):
    with pytest.raises((RuleViolation, InvalidInput)) as refused:
        refuse()
    assert refused.value.message == expected
    assert "cents" not in refused.value.message


ERROR_CLASSES = {
    name
    for name, value in vars(errors_module).items()
    if isinstance(value, type) and issubclass(value, DomainError)
} | {"TemplateProblem"}
# The last placeholder of these is itself a sentence (`_sentence(...)` ends it).
SENTENCE_MAKERS = ("_sentence",)


def _messages():
    """Every message literal that domain/ and services/ give a DomainError (or a template
    problem): the text people read in a 4xx, on a screen, or on an envelope's error."""
    for path in sorted((PACKAGE / "domain").rglob("*.py")) + sorted(
        (PACKAGE / "services").rglob("*.py")
    ):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ERROR_CLASSES
                and node.args
            ):
                yield f"{path.relative_to(PACKAGE)}:{node.lineno}", node.args[0]


def _parts(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.Constant) else v for v in node.values]
    if isinstance(node, ast.BinOp):
        return _parts(node.left) + _parts(node.right)
    return [node]


def test_scan_every_message_is_a_sentence_without_raw_cents():
    found = list(_messages())
    assert len(found) > 50  # the scan sees the messages (it would pass on none)
    bad = []
    for where, node in found:
        parts = _parts(node)
        literal = "".join(p for p in parts if isinstance(p, str))
        first, last = parts[0], parts[-1]
        starts = not isinstance(first, str) or first[:1].isupper() or first[:1].isdigit()
        if isinstance(first, ast.FormattedValue):
            # Starts with a value: a bill number, or a `what` capitalised in place.
            source = ast.unparse(first)
            starts = any(word in source for word in ("upper", "number", "TITLES"))
        if isinstance(last, str):
            ends = last.rstrip().endswith((".", "?"))
        else:
            ends = any(maker in ast.unparse(last) for maker in SENTENCE_MAKERS)
        if not (starts and ends) or "cents" in literal:
            bad.append(f"{where}: {ast.unparse(node)[:90]}")
    assert bad == []


def test_given_every_default_template_then_the_samples_render_with_money_format():
    from billbridge.domain.templates import SAMPLE, render

    settings = FirmSettings()
    for kind in ("invoice", "trust_request", "mixed"):
        body = render(getattr(settings.templates, kind).body, SAMPLE)
        assert "$" in body and "cents" not in body


def test_given_a_bill_not_payable_by_state_then_its_reason_names_the_state_in_a_sentence():
    problem = stored(5, state=BillState.VOID).unsendable()
    assert problem is not None
    assert problem.message == (
        "INV-5 cannot be sent: the firm voided it in Clio, so nothing is payable on it."
    )
