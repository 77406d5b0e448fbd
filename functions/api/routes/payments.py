"""Payment links, their transactions and refunds (P6, P7), and reconciliation (X2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.accounts import AuditAction
from billbridge.domain.csv_export import write_csv
from billbridge.domain.errors import SesThrottled
from billbridge.domain.payments import ReconciliationAction
from routes.accounts import record
from routes.context import firm_id_of, principal_of, user_of
from schemas import (
    ID_PATTERN,
    Invoice,
    LineTransactionOut,
    PaymentLinkOut,
    ReconciliationItem,
    ReconciliationOut,
    RecordedOut,
    RecordedRequest,
    RefundRequest,
    TransactionOut,
)

# The payment services load on the first request that needs them, not with the handler.
if TYPE_CHECKING:
    from billbridge.services.reconciliation import ReconciliationLine

router = Router()
logger = Logger(child=True)

LinkId = Annotated[str, Path(pattern=ID_PATTERN, description="A payment link's id")]


@router.get(
    "/payment-links/<link_id>",
    summary="A payment link and its transactions",
    tags=["payments"],
    responses={200: {"description": "The link"}, **error_responses(401, 404, 422)},
)
def get_payment_link(link_id: LinkId) -> PaymentLinkOut:
    from billbridge.services.payments import currency_of

    links = api_services().payment_links
    found = links.get(firm_id_of(router), link_id)
    return PaymentLinkOut(
        id=found.link.id,
        url=links.link_url(found.link),
        bill_ids=[str(i) for i in found.link.bill_ids],
        currency=currency_of(found.bills),
        bills=[Invoice.of(b) for b in found.bills],
        transactions=[TransactionOut.of(t) for t in found.transactions],
    )


@router.post(
    "/payment-links/<link_id>/transactions/<txn_id>/refunds",
    summary="Refund all or part of a payment",
    tags=["payments"],
    responses={
        201: {"description": "The refund, pending or succeeded"},
        **error_responses(400, 401, 404, 409, 415, 422, 502),
    },
)
def refund(
    link_id: LinkId,
    txn_id: Annotated[str, Path(pattern=ID_PATTERN, description="The payment's id")],
    request: Annotated[RefundRequest, Body()],
) -> Response[TransactionOut]:
    services = api_services()
    principal = principal_of(router)
    firm_id = principal.firm_id
    made = services.payment_links.refund(
        firm_id,
        link_id,
        txn_id,
        request.amount_cents,
        by_user_id=principal.user_id,
        by_email=principal.email,
    )
    record(
        AuditAction.REFUND_CREATED,
        {
            "link_id": link_id,
            "transaction_id": txn_id,
            "refund_id": made.id,
            "amount_cents": made.amount_cents,
            "currency": made.currency,
        },
        router,
    )
    try:
        # A card refund usually succeeds at once: its receipt goes now. Otherwise (or when SES
        # throttles) Stripe's refund event sends it, once.
        services.receipts.send_due(firm_id, link_id, made.id)
    except SesThrottled:
        logger.warning("refund receipt throttled; the refund's event will send it")
    return Response(
        status_code=201, content_type=content_types.APPLICATION_JSON, body=TransactionOut.of(made)
    )


CSV_COLUMNS = [
    "bill_id",
    "number",
    "client_name",
    "action",
    "to_record",
    "currency",
    "payment_date",
    "method",
    "account",
    "reference",
    "paid_gl",
    "refunded",
    "clio_reflected",
    "clio_url",
    "bill_state",
    "amount",
    "overpaid",
    "unpayable",
    "note",
    "recorded_in_clio_by",
    "recorded_in_clio_at",
]


def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _item(line: ReconciliationLine) -> ReconciliationItem:
    from billbridge.services.reconciliation import RECORDED_IN_CLIO

    bill, money = line.bill.bill, line.bill.money
    recorded = line.action in RECORDED_IN_CLIO
    txns = line.transactions
    newest = txns[0] if txns else None
    note = line.recorded
    return ReconciliationItem(
        bill_id=str(bill.id),
        number=bill.number,
        client_name=bill.client.name,
        clio_url=bill.clio_url,
        currency=bill.currency,
        bill_state=bill.state,
        paid_gl_cents=line.bill.paid_gl_cents,
        refunded_cents=line.bill.refunded_cents,
        pending_cents=line.bill.pending_cents,
        clio_reflected_cents=money.clio_reflected_cents,
        overpaid_cents=money.overpaid_cents,
        unpayable_cents=money.unpayable_cents,
        action=line.action.value,
        amount_cents=line.amount_cents,
        to_record_cents=line.amount_cents if recorded else 0,
        note=line.note,
        transactions=[
            LineTransactionOut(
                id=t.id,
                kind=t.kind.value,
                date=t.date,
                method=t.method.value,
                account=t.account.value,
                amount_cents=t.amount_cents,
                reference=t.reference,
            )
            for t in txns
        ],
        payment_date=newest.date if newest else None,
        method=_one({t.method.value for t in txns}),  # type: ignore[arg-type]
        account=_one({t.account.value for t in txns}),  # type: ignore[arg-type]
        reference="; ".join(t.reference for t in txns) or None,
        recorded_in_clio=(
            RecordedOut(
                by_user_id=note.user_id,
                by_email=note.email,
                at=note.at,
                status=line.recorded_status.value,  # type: ignore[union-attr,arg-type]
            )
            if note
            else None
        ),
    )


def _one(values: set[str]) -> str | None:
    """The value all of a line's transactions share; none when they differ or there are none."""
    return next(iter(values)) if len(values) == 1 else None


@router.get(
    "/reconciliation",
    summary="What staff should do about our money Clio does not show: record, refund, apply",
    tags=["payments"],
    responses={
        200: {
            "description": "The report; `format=csv` gives it as a CSV download",
            "content": {
                "application/json": {"model": ReconciliationOut},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **error_responses(401, 422),
    },
)
def reconciliation(  # type: ignore[no-untyped-def]  # JSON or CSV: no one response model
    format: Annotated[Literal["json", "csv"], Query()] = "json",
):
    items = [_item(line) for line in api_services().reconciliation.report(firm_id_of(router))]
    if format == "csv":
        body_text = write_csv(
            CSV_COLUMNS,
            (
                [
                    item.bill_id,
                    item.number,
                    item.client_name,
                    item.action,
                    _dollars(item.to_record_cents),
                    item.currency,
                    item.payment_date.date().isoformat() if item.payment_date else "",
                    item.method or "; ".join(t.method for t in item.transactions),
                    item.account or "; ".join(t.account for t in item.transactions),
                    item.reference or "",
                    _dollars(item.paid_gl_cents),
                    _dollars(item.refunded_cents),
                    _dollars(item.clio_reflected_cents),
                    item.clio_url,
                    item.bill_state.value,
                    _dollars(item.amount_cents),
                    _dollars(item.overpaid_cents),
                    _dollars(item.unpayable_cents),
                    item.note,
                    (
                        item.recorded_in_clio.by_email or item.recorded_in_clio.by_user_id
                        if item.recorded_in_clio
                        else ""
                    ),
                    item.recorded_in_clio.at.isoformat() if item.recorded_in_clio else "",
                ]
                for item in items
            ),
        )
        return Response(
            status_code=200,
            content_type="text/csv; charset=utf-8",
            body=body_text,
            headers={"Content-Disposition": 'attachment; filename="reconciliation.csv"'},
        )
    body = ReconciliationOut(items=items, generated_at=api_services().clock())
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump(mode="json"),
    )


@router.post(
    "/reconciliation/recorded",
    summary="Mark a reconciliation line as recorded in Clio (until a sync shows Clio caught up)",
    tags=["payments"],
    responses={
        201: {"description": "The line, with who recorded it and when"},
        **error_responses(400, 401, 404, 415, 422),
    },
)
def mark_recorded(request: Annotated[RecordedRequest, Body()]) -> Response[ReconciliationItem]:
    line = api_services().reconciliation.mark_recorded(
        firm_id_of(router),
        int(request.bill_id),
        ReconciliationAction(request.action),
        request.amount_cents,
        user_of(router),
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=_item(line))
