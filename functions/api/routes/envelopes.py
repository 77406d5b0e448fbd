"""Review and send (S1, S2): draft envelopes, edit them, view their bills; batches."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from billbridge.api_errors import error_responses
from billbridge.bootstrap import api_services
from billbridge.domain.accounts import AuditAction
from billbridge.domain.errors import InvalidInput
from routes.accounts import record
from routes.context import firm_id_of
from schemas import (
    ID_PATTERN,
    BatchOut,
    BatchSendStarted,
    DraftRequest,
    EditRequest,
    EnvelopeOut,
    SendStarted,
)

router = Router()

EnvelopeId = Annotated[str, Path(pattern=ID_PATTERN, description="An envelope's id")]
BatchId = Annotated[str, Path(pattern=ID_PATTERN, description="A batch's id")]


@router.post(
    "/envelopes",
    summary="Draft envelopes for the selected bills",
    tags=["envelopes"],
    responses={
        201: {"description": "The batch of drafts"},
        **error_responses(400, 401, 404, 415, 422),
    },
)
def draft_envelopes(request: Annotated[DraftRequest, Body()]) -> Response[BatchOut]:
    service = api_services().envelopes
    firm_id = firm_id_of(router)
    batch, envelopes = service.draft(firm_id, [int(i) for i in request.bill_ids])
    bills = service.bills_of(firm_id, envelopes)
    body = BatchOut(batch_id=batch.id, envelopes=[EnvelopeOut.of(e, bills) for e in envelopes])
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=body)


@router.get(
    "/envelopes/<envelope_id>",
    summary="One envelope",
    tags=["envelopes"],
    responses={200: {"description": "The envelope"}, **error_responses(401, 404, 422)},
)
def get_envelope(envelope_id: EnvelopeId) -> EnvelopeOut:
    service = api_services().envelopes
    firm_id = firm_id_of(router)
    envelope = service.get(firm_id, envelope_id)
    return EnvelopeOut.of(envelope, service.bills_of(firm_id, [envelope]))


@router.patch(
    "/envelopes/<envelope_id>",
    summary="Edit a draft's subject or message",
    tags=["envelopes"],
    responses={
        200: {"description": "The edited draft"},
        **error_responses(400, 401, 404, 409, 415, 422),
    },
)
def edit_envelope(envelope_id: EnvelopeId, request: Annotated[EditRequest, Body()]) -> EnvelopeOut:
    if request.subject is None and request.body is None:
        raise InvalidInput("give subject and/or body", field="subject")
    service = api_services().envelopes
    firm_id = firm_id_of(router)
    edited = service.edit(firm_id, envelope_id, request.subject, request.body)
    return EnvelopeOut.of(edited, service.bills_of(firm_id, [edited]))


@router.get(
    "/envelopes/<envelope_id>/bills/<bill_file>",
    summary="The PDF of a bill attached to the envelope ({bill_id}.pdf)",
    tags=["envelopes"],
    responses={
        200: {
            "description": "The bill's PDF",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(401, 404, 422, 502, 503),
    },
)
def bill_pdf(  # type: ignore[no-untyped-def]
    envelope_id: EnvelopeId,
    bill_file: Annotated[str, Path(pattern=r"^[0-9]{1,18}\.pdf$", description="<bill_id>.pdf")],
):
    # No return annotation on purpose: Powertools would validate the body against it and try
    # to read the PDF's bytes as UTF-8. Unannotated, a non-JSON response passes through.
    stem = bill_file.removesuffix(".pdf")  # the path's pattern: <bill_id>.pdf
    pdf = api_services().envelopes.bill_pdf(firm_id_of(router), envelope_id, int(stem))
    return Response(
        status_code=200,
        content_type="application/pdf",
        body=pdf,
        headers={"Content-Disposition": f'inline; filename="{stem}.pdf"'},
    )


@router.get(
    "/batches/<batch_id>",
    summary="A batch of envelopes and their progress",
    tags=["envelopes"],
    responses={200: {"description": "The batch"}, **error_responses(401, 404, 422)},
)
def get_batch(batch_id: BatchId) -> BatchOut:
    service = api_services().envelopes
    firm_id = firm_id_of(router)
    batch, envelopes = service.get_batch(firm_id, batch_id)
    bills = service.bills_of(firm_id, envelopes)
    return BatchOut(batch_id=batch.id, envelopes=[EnvelopeOut.of(e, bills) for e in envelopes])


@router.post(
    "/envelopes/<envelope_id>/send",
    summary="Send one envelope (S3)",
    tags=["envelopes"],
    responses={202: {"description": "Sending started"}, **error_responses(401, 404, 409, 422)},
)
def send_envelope(envelope_id: EnvelopeId) -> Response[SendStarted]:
    services = api_services()
    firm_id = firm_id_of(router)
    envelope, execution = services.sending.send_envelope(firm_id, envelope_id)
    record(
        AuditAction.ENVELOPE_SENT,
        {
            "envelope_id": envelope.id,
            "batch_id": envelope.batch_id,
            "to": envelope.to,
            "bill_ids": [str(b) for b in envelope.bill_ids],
        },
        router,
    )
    bills = services.envelopes.bills_of(firm_id, [envelope])
    body = SendStarted(execution_id=execution, envelope=EnvelopeOut.of(envelope, bills))
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body)


@router.post(
    "/batches/<batch_id>/send",
    summary="Send every draft of the batch (S4)",
    tags=["envelopes"],
    responses={202: {"description": "Sending started"}, **error_responses(401, 404, 409, 422)},
)
def send_batch(batch_id: BatchId) -> Response[BatchSendStarted]:
    execution = api_services().sending.send_batch(firm_id_of(router), batch_id)
    record(AuditAction.ENVELOPE_SENT, {"batch_id": batch_id, "execution_id": execution}, router)
    body = BatchSendStarted(execution_id=execution)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body)
