"""The sync worker: the one-minute schedule fans out to every connected firm (C4), and an
asynchronous invocation carries one firm's sync run forward (C2, C3, C5)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from billbridge.bootstrap import sync_worker_services
from billbridge.domain.errors import NotConnected
from billbridge.domain.sync import SyncTrigger
from billbridge.metrics import handler_metrics

logger = Logger()
tracer = Tracer()
metrics = handler_metrics()


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    firm_id: str = Field(min_length=1)
    run_id: str = Field(min_length=1)


def fan_out() -> dict[str, Any]:
    services = sync_worker_services()
    started = 0
    firms = services.connections.connected_firm_ids()
    for firm_id in firms:
        try:
            services.sync.request_sync(firm_id, SyncTrigger.SCHEDULE)
            started += 1
        except NotConnected:
            continue  # waiting for staff to reconnect Clio; nothing to sync
    metrics.add_metric(name="ScheduledSyncs", unit=MetricUnit.Count, value=started)
    return {"firms": len(firms), "requested": started}


def run_one(request: RunRequest, context: LambdaContext) -> dict[str, Any]:
    services = sync_worker_services()

    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000 - services.time_reserve_seconds

    outcome = services.sync.run(request.firm_id, request.run_id, seconds_left)
    if outcome is None:
        return {"run_id": request.run_id, "status": "skipped"}
    metrics.add_metric(name="BillsChanged", unit=MetricUnit.Count, value=outcome.run.bills_changed)
    return {
        "run_id": outcome.run.id,
        "status": outcome.run.status.value,
        "continued": outcome.continued,
    }


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("detail-type") == "Scheduled Event":
        parse(event=event, model=EventBridgeModel)
        return fan_out()
    return run_one(parse(event=event, model=RunRequest), context)
