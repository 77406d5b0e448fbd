"""GET and PUT /settings: the firm's settings (T1)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.accounts import AuditAction
from billbridge.domain.settings import FirmSettings
from routes.accounts import record
from routes.context import firm_id_of

router = Router()


@router.get(
    "/settings",
    summary="The firm's settings",
    tags=["settings"],
    responses={200: {"description": "The settings"}, **error_responses(401, 422)},
)
def get_settings() -> FirmSettings:
    return api_services().settings.get(firm_id_of(router))


@router.put(
    "/settings",
    summary="Replace the firm's settings",
    tags=["settings"],
    responses={
        200: {"description": "The settings as saved"},
        **error_responses(400, 401, 415, 422),
    },
)
def put_settings(settings: Annotated[FirmSettings, Body()]) -> FirmSettings:
    firm_id = firm_id_of(router)
    before = api_services().settings.get(firm_id).model_dump(mode="json")
    api_services().settings.put(firm_id, settings)
    saved = api_services().settings.get(firm_id)
    after = saved.model_dump(mode="json")
    changed = sorted(k for k in after if before.get(k) != after.get(k))
    record(AuditAction.SETTINGS_UPDATED, {"fields": changed}, router)
    return saved
