"""Integration fixtures: the handlers in-process on moto (`mock_aws`), with the Clio sandbox
over HTTP and the local API Gateway in front, asynchronous Lambda invocations run inline."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from billbridge import bootstrap
from local import moto_speedups
from local.apigw import LocalApiGateway
from local.clio_sandbox import ClioSandbox
from local.lambdas import LocalLambdas
from local.provision import FAKE_AWS_ENV, provision


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class InProcessStack:
    api: LocalApiGateway
    clio: ClioSandbox
    lambdas: LocalLambdas
    env: dict[str, str]

    def firm(self, firm_id: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{firm_id}"
        return session

    def connect(self, firm_id: str, clio_account: str) -> requests.Response:
        """The OAuth redirects as a browser walks them: one cookie jar, the connect's cookie
        brought back to the callback, which carries no Authorization header."""
        browser = self.firm(firm_id)
        start = browser.get(f"{self.api.url}/clio/connect", allow_redirects=False, timeout=30)
        del browser.headers["Authorization"]
        approved = browser.get(
            f"{start.headers['Location']}&sandbox_account={clio_account}",
            allow_redirects=False,
            timeout=30,
        )
        return browser.get(approved.headers["Location"], allow_redirects=False, timeout=60)

    def outbox(self) -> list[dict[str, Any]]:
        from local.outbox import read_outbox_in_process

        return read_outbox_in_process()

    def wait_execution(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        import time

        import boto3

        sfn = boto3.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return dict(described)
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still running: {execution_arn}")
            time.sleep(0.1)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        import json

        import boto3

        answer = boto3.client("lambda").invoke(
            FunctionName=self.lambdas.name_of(logical_id), Payload=json.dumps(event).encode()
        )
        return json.loads(answer["Payload"].read())


@pytest.fixture
def inproc(monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessStack]:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    clio = ClioSandbox(host="127.0.0.1", port=0, webhook_delay_seconds=0.01)
    clio.start()
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}"
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        provisioned = provision(api_base_url=api_url, clio_base_url=clio.url, lambda_mode="inline")
        for key, value in provisioned.env.items():
            monkeypatch.setenv(key, value)
        bootstrap.reset()
        api = LocalApiGateway(provisioned.lambdas, port=port)
        api.start()
        try:
            yield InProcessStack(
                api=api, clio=clio, lambdas=provisioned.lambdas, env=provisioned.env
            )
        finally:
            api.stop()
            provisioned.lambdas.shutdown()
            bootstrap.reset()
    clio.stop()


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    """One mocked AWS and one DynamoDB client for a module of store tests (each test makes its
    own table), with the local stack's moto patches (transactions safe under threads)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            monkeypatch.delenv(name, raising=False)
        with mock_aws():
            moto_speedups.install()
            yield boto3.client("dynamodb", region_name="us-east-1")
