"""POST /sync and GET /sync/{id}: the Sync button and its progress (C3)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.errors import NotFound
from billbridge.domain.sync import SyncTrigger
from routes.context import firm_id_of
from schemas import ID_PATTERN, SyncOut

router = Router()


@router.post(
    "/sync",
    summary="Start a sync (or answer the one running)",
    tags=["sync"],
    responses={202: {"description": "The sync run"}, **error_responses(401, 409, 422)},
)
def start_sync() -> Response[SyncOut]:
    run = api_services().sync.request_sync(firm_id_of(router), SyncTrigger.MANUAL)
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=SyncOut.of(run)
    )


@router.get(
    "/sync/<sync_id>",
    summary="A sync run's progress",
    tags=["sync"],
    responses={200: {"description": "The sync run"}, **error_responses(401, 404, 422)},
)
def get_sync(sync_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> SyncOut:
    run = api_services().sync_runs.get_run(firm_id_of(router), sync_id)
    if run is None:
        raise NotFound("no such sync run", field="id")
    return SyncOut.of(run)
