"""The searched and sorted invoices page (L5) among N bills (default 20,000): `GET /invoices`
with `sort`, and with `q` and `sort` (the start of a client's name, a later word of it, a bill
number), through the API handler, against one raw Query of the same page on the index (or the
word items) that holds it. Run alone: `python -m bench --only listing`."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import boto3
import requests

from bench.common import Row, aws, call_invoices, count, seed_spread, start_api

FIRM = "bench"
PAGE = 50


def listing(n: int, repeats: int = 15) -> list[Row]:
    from local.clio_sandbox import ClioSandbox
    from local.lambdas import load_handler
    from local.stack import connect_firm

    rows: list[Row] = []
    offset = {"seconds": 0.0}
    clio = ClioSandbox(
        host="127.0.0.1",
        port=0,
        rate_limit=10_000_000,
        clock=lambda: time.time() + offset["seconds"],
    )
    clio.start()
    with aws() as counter:
        provisioned, api = start_api(clio.url, "queue", PDF_PREFETCH_PER_RUN="0")
        seed_spread(clio.state, FIRM, n, offset)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{FIRM}"
        connect_firm(api.url, FIRM, FIRM)
        provisioned.lambdas.drain()  # the full import

        spec = provisioned.lambdas.specs["ApiFunction"]
        handler = load_handler(spec)
        route = next(r for r in api.routes if r.path == "/invoices")
        ddb = boto3.session.Session().client("dynamodb")  # not counted: the handler's calls are

        def handler_call(query: str, full: bool) -> Callable[[], float]:
            def call() -> float:
                answer, spent = call_invoices(handler, spec, route, FIRM, query)
                items = json.loads(answer["body"])["items"]
                assert len(items) == PAGE if full else 0 < len(items) < PAGE, answer["body"][:300]
                return spent

            return call

        def raw(index: str | None, condition: str, values: dict[str, str], forward: bool):
            def call() -> float:
                began = time.thread_time()
                ddb.query(
                    TableName=provisioned.table_name,
                    **({"IndexName": index} if index else {}),
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues={k: {"S": v} for k, v in values.items()},
                    ScanIndexForward=forward,
                    Limit=PAGE,
                )
                return time.thread_time() - began

            return call

        firm_pk = f"FIRM#{FIRM}"
        # "ava" begins one client's name in every seeded group of clients (about one bill in
        # ten matches: every match is read to sort them); "smith3" is the second word of one
        # client's name in every group (as many matches, found by their word items, then read
        # by BatchGetItem); "inv-0012" ten bill numbers.
        cases = [
            (
                f"Sorted page (sort=-amount) of {PAGE} among {count(n)}",
                f"page_size={PAGE}&sort=-amount",
                raw(
                    "gsi5",
                    "pk = :p AND begins_with(lsort_amount, :s)",
                    {":p": firm_pk, ":s": "awaiting_payment#"},
                    False,
                ),
                True,
            ),
            (
                f"Searched and sorted page (q=ava, sort=due_at) of {PAGE} among {count(n)}",
                f"page_size={PAGE}&q=ava&sort=due_at",
                raw(
                    "gsi6",
                    "pk = :p AND begins_with(lsort_client, :s)",
                    {":p": firm_pk, ":s": "awaiting_payment#ava"},
                    True,
                ),
                True,
            ),
            (
                f"Word-start search (q=smith3, a later word, sort=due_at) of {PAGE} among "
                f"{count(n)}",
                f"page_size={PAGE}&q=smith3&sort=due_at",
                raw(
                    None,
                    "pk = :p AND begins_with(sk, :s)",
                    {":p": firm_pk, ":s": "WORD#awaiting_payment#smith3"},
                    True,
                ),
                True,
            ),
            (
                f"Searched and sorted page (q=inv-0012, sort=-amount) among {count(n)}",
                "page_size=50&q=inv-0012&sort=-amount",
                raw(
                    "gsi7",
                    "pk = :p AND begins_with(lsearch_number, :s)",
                    {":p": firm_pk, ":s": "awaiting_payment#inv-0012"},
                    True,
                ),
                False,
            ),
        ]
        for label, query, raw_query, full in cases:
            call = handler_call(query, full)
            for _ in range(3):  # warm
                call()
                raw_query()
            counter.reset()
            handled, raws = [], []
            for _ in range(repeats):  # interleaved: the machine's other work weighs on both
                handled.append(call())
                raws.append(raw_query())
            per_page = {op: c / repeats for op, c in counter.calls.items()}
            h, r = statistics.median(handled), statistics.median(raws)
            rows.append(
                (
                    f"{label}: handler vs one raw Query",
                    f"{h * 1000:.1f} ms vs {r * 1000:.1f} ms",
                    f"{h / r:.2f}x; DynamoDB calls per page: "
                    + ", ".join(f"{op} {c:g}" for op, c in sorted(per_page.items()))
                    + f"; {counter.items_read / repeats:g} items read",
                )
            )
        api.stop()
        provisioned.lambdas.shutdown()
    clio.stop()
    return rows
