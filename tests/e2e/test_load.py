"""The load test's short version (`make load` is the full one, with memory): a dozen clients
for about 20 seconds on the test session's stack, across the firm API, the pay page and
checkout, and both webhooks with duplicate deliveries (bench/load). It asserts the correctness
checks only; latency and memory are `make load`'s to print."""

from __future__ import annotations

import pytest

from bench.load import StackUrls, run_load
from bench.load.report import render

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)
def test_given_concurrent_clients_everywhere_when_loaded_then_no_5xx_no_crossing_money_exact(
    local_stack,
):
    urls = StackUrls(
        api=local_stack.api_url,
        clio=local_stack.clio_url,
        stripe=local_stack.stripe_url,
        aws=local_stack.aws_url,
        pid=local_stack.process.pid,
        admin_token=local_stack.admin_token,
    )
    # The session's stack is shared: no schedule tick (it would remind other tests' clients),
    # no memory measured (make load's).
    result = run_load(urls, clients=12, duration=20, firms=2, memory=False)
    table = render(result, check_memory=False)
    print(table)

    assert result.server_errors == [], table
    assert result.unanswered == [], table
    assert result.crossed == [], table
    assert result.money.problems == [], table
    # The run did what it is for: payments, duplicates and Clio changes reached the webhooks.
    routes = {route: count for route, count, *_ in result.rows}
    assert result.money.payments > 0 and routes.get("POST /pay/{token}/checkout", 0) > 0, table
    assert routes.get("POST /webhooks/stripe (duplicate)", 0) > 0, table
    assert routes.get("POST /webhooks/clio", 0) > 0, table
