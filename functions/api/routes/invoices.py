"""GET /invoices: one page of the firm's bills, starting a sync on view (C2, L1-L3)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from billbridge.bootstrap import api_services
from routes.context import firm_id_of
from schemas import Invoice, InvoicesPageOut, SyncRef

router = Router()


@router.get("/invoices", summary="One page of the firm's Clio bills", tags=["invoices"])
def list_invoices(
    states: Annotated[
        str | None,
        Query(description="Comma-separated Clio bill states; default: the firm's default filter"),
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=200, description="Bills per page")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
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
