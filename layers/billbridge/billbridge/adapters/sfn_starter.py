"""Starting the send workflow: one Step Functions execution per send call."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any


class StepFunctionsSendStarter:
    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self._sfn = sfn_client
        self._arn = state_machine_arn

    def start(self, firm_id: str, batch_id: str, envelope_ids: Sequence[str]) -> str:
        # The claim token names this run: a retry of its steps may re-claim an envelope, and
        # any other run (a repeated send call) finds it claimed and skips it.
        claim_token = secrets.token_urlsafe(16)
        answer = self._sfn.start_execution(
            stateMachineArn=self._arn,
            name=f"{batch_id}-{claim_token[:12]}",
            input=json.dumps(
                {
                    "firm_id": firm_id,
                    "batch_id": batch_id,
                    "claim_token": claim_token,
                    "envelope_ids": list(envelope_ids),
                }
            ),
        )
        return str(answer["executionArn"])
