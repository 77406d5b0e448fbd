"""GET /invoices: one page of the firm's bills, starting a sync on view (C2, L1-L3); a bill's
reminders paused and resumed, and its send history (X3)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.bills import BillState, StoredBill
from billbridge.domain.listing import MAX_QUERY_CHARS, SortField
from billbridge.services.invoices import MAX_PAGE_SIZE
from routes.context import firm_id_of, header_of
from schemas import (
    CURSOR_PATTERN,
    BillHistoryOut,
    Invoice,
    InvoicesPageOut,
    SentRecordOut,
    SyncRef,
)

router = Router()

_STATE = "|".join(s.value for s in BillState)
# One or more Clio bill states, comma-separated: the same list parse_states reads.
STATES_PATTERN = rf"^({_STATE})(,({_STATE}))*$"
SORT_PATTERN = rf"^-?({'|'.join(f.value for f in SortField)})$"


@router.get(
    "/invoices",
    summary="One page of the firm's Clio bills",
    tags=["invoices"],
    responses={200: {"description": "One page of bills"}, **error_responses(400, 401, 404, 422)},
)
def list_invoices(
    states: Annotated[
        str | None,
        Query(
            pattern=STATES_PATTERN,
            max_length=200,
            description="Comma-separated Clio bill states; default: the firm's default filter",
        ),
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Bills per page")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            max_length=800,
            description="next_cursor of the previous page, with the same states, q, sort and "
            "overdue",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=MAX_QUERY_CHARS,
            description="Search (word start): the client's name read from the start of any of "
            "its words ('smith' and 'john sm' find 'John Smith', 'ltd' finds 'Acme Ltd'), or the "
            "start of the bill number or of the matter's display number; case- and "
            "accent-insensitive; newest first unless sorted",
        ),
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            pattern=SORT_PATTERN,
            description="due_at, amount (Outstanding (Clio)) or client; a leading - sorts "
            "descending. Ties go by Clio id",
        ),
    ] = None,
    overdue: Annotated[
        bool,
        Query(
            description="Only bills awaiting payment with a balance, due before today (sorted "
            "by due date unless sort says otherwise)"
        ),
    ] = False,
) -> InvoicesPageOut:
    page = api_services().invoices.list(
        firm_id_of(router),
        states=states,
        page_size=page_size,
        cursor=cursor,
        q=q,
        sort=sort,
        overdue=overdue,
        # Read by the access check with the caller's member record, in one request.
        header=header_of(router),
    )
    services = api_services()
    firm_id = firm_id_of(router)
    reminders = (
        services.reminders.next_reminders(firm_id, page.items, page.settings)
        if page.settings is not None
        else {}
    )
    return InvoicesPageOut(
        items=[Invoice.of(item, reminders.get(item.bill.id)) for item in page.items],
        next_cursor=page.next_cursor,
        synced_at=page.synced_at,
        sync=SyncRef(id=page.sync.id, status=page.sync.status.value) if page.sync else None,
        states=list(page.states),
        sort=page.sort,
        q=page.q,
        overdue=page.overdue,
    )


BillId = Annotated[str, Path(pattern=r"^[0-9]{1,18}$", description="A Clio bill id")]


def _invoice(firm_id: str, stored: StoredBill) -> Invoice:
    services = api_services()
    settings = services.settings.get(firm_id)
    upcoming = services.reminders.next_reminders(firm_id, [stored], settings)
    return Invoice.of(stored, upcoming.get(stored.bill.id))


@router.post(
    "/invoices/<bill_id>/reminders/pause",
    summary="Pause a bill's payment reminders (X3)",
    tags=["invoices"],
    responses={
        200: {"description": "The bill, its reminders paused"},
        **error_responses(400, 401, 404),
    },
)
def pause_reminders(bill_id: BillId) -> Invoice:
    firm_id = firm_id_of(router)
    return _invoice(firm_id, api_services().reminders.pause(firm_id, int(bill_id)))


@router.post(
    "/invoices/<bill_id>/reminders/resume",
    summary="Resume a bill's payment reminders (X3)",
    tags=["invoices"],
    responses={
        200: {"description": "The bill, its reminders on again"},
        **error_responses(400, 401, 404),
    },
)
def resume_reminders(bill_id: BillId) -> Invoice:
    firm_id = firm_id_of(router)
    return _invoice(firm_id, api_services().reminders.resume(firm_id, int(bill_id)))


@router.get(
    "/invoices/<bill_id>/envelopes",
    summary="The emails that carried a bill: first sends and reminders apart",
    tags=["invoices"],
    responses={200: {"description": "The bill's send history"}, **error_responses(400, 401, 404)},
)
def bill_history(bill_id: BillId) -> BillHistoryOut:
    records = api_services().reminders.history(firm_id_of(router), int(bill_id))
    return BillHistoryOut(
        bill_id=bill_id,
        items=[
            SentRecordOut(
                envelope_id=r.envelope_id,
                purpose="reminder" if r.purpose == "reminder" else "send",
                reminder_number=r.reminder_number,
                to=r.to,
                subject=r.subject,
                sent_at=r.sent_at,
                label=(
                    f"Reminder {r.reminder_number}"
                    if r.purpose == "reminder" and r.reminder_number
                    else "Reminder"
                    if r.purpose == "reminder"
                    else "First send"
                ),
                send_note=r.send_note,
            )
            for r in records
        ],
    )
