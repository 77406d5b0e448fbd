"""GET /invoices: one page of the firm's bills, starting a sync on view (C2, L1-L3)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.bills import BillState
from billbridge.services.invoices import MAX_PAGE_SIZE
from routes.context import firm_id_of
from schemas import CURSOR_PATTERN, Invoice, InvoicesPageOut, SyncRef

router = Router()

_STATE = "|".join(s.value for s in BillState)
# One or more Clio bill states, comma-separated: the same list parse_states reads.
STATES_PATTERN = rf"^({_STATE})(,({_STATE}))*$"


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
            max_length=400,
            description="next_cursor of the previous page, with the same states",
        ),
    ] = None,
) -> InvoicesPageOut:
    page = api_services().invoices.list(
        firm_id_of(router), states=states, page_size=page_size, cursor=cursor
    )
    return InvoicesPageOut(
        items=[Invoice.of(item) for item in page.items],
        next_cursor=page.next_cursor,
        synced_at=page.synced_at,
        sync=SyncRef(id=page.sync.id, status=page.sync.status.value) if page.sync else None,
        states=list(page.states),
    )
