"""Starting the sync worker: an asynchronous Lambda invocation (Lambda retries it on failure)."""

from __future__ import annotations

import json
from typing import Any


class LambdaSyncLauncher:
    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._lambda = lambda_client
        self._function_name = function_name

    def launch(self, firm_id: str, run_id: str) -> None:
        self._lambda.invoke(
            FunctionName=self._function_name,
            InvocationType="Event",
            Payload=json.dumps({"firm_id": firm_id, "run_id": run_id}).encode(),
        )
