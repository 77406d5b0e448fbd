"""How cost grows with a firm's size: full sync, re-sync and the default list at N bills.

The sync is measured alone (the PDF prefetch off: bench/prefetch.py measures it), with the
sandbox's rate limit lifted: the point is what we ask of Clio and what we write, not Clio's
50-a-minute wall, which the pacing tests cover.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any

import boto3
import requests

from bench.common import Row, add_member, aws, call_invoices, count, seed_spread, start_api

FIRM = "bench"
PAGE = 50
# The page is asked as a signed-in staff member: their record is read, as every user's is.
CLERK = "bench-clerk"


def word_items(state: Any, account: str) -> int:
    """How many word items the seeded bills of `account` make (each word of a client's name
    after the first, for every bill not deleted): with the bills themselves, the actions of a
    full import's TransactWriteItems (docs/data-model.md, "Word-start search")."""
    from billbridge.domain.listing import client_search_texts

    return sum(
        len(client_search_texts(state.contacts[b.client_id].name)) - 1
        for b in state.bills.values()
        if b.account == account and b.state != "deleted"
    )


def scaling(n: int, *, increments: bool = True, repeats: int = 25) -> list[Row]:
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
        ids = seed_spread(clio.state, FIRM, n, offset)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{FIRM}"
        connect_firm(api.url, FIRM, FIRM)

        def synced() -> tuple[int, float]:
            clio.state.reset_stats()
            counter.reset()
            began = time.perf_counter()
            provisioned.lambdas.drain()
            return int(clio.state.stats(FIRM)["api_requests"]), time.perf_counter() - began

        made, wall = synced()
        if not made or not counter.bill_writes:
            raise RuntimeError(f"the full sync of {n} bills asked Clio {made} times and wrote none")
        least = math.ceil(n / 200)
        words = word_items(clio.state, FIRM)
        rows.append(
            (
                f"Full sync of {count(n)} bills: Clio requests / bill writes / wall",
                f"{made} / {counter.bill_writes} / {wall:.1f} s",
                f"⌈N/200⌉ + 1 deleted pass = {least + 1} / at least ⌈(N + W)/100⌉ = "
                f"{math.ceil((n + words) / 100)} (W = {count(words)} word items) / "
                f"{n / wall:.0f} bills/s",
            )
        )
        bookkeeping = counter.other_writes
        session.post(f"{api.url}/sync")
        made, wall = synced()
        rows.append(
            (
                f"Re-sync of {count(n)}, nothing changed: Clio requests / bill writes / wall",
                f"{made} / {counter.bill_writes} / {wall:.2f} s",
                "target: 0 bill writes",
            )
        )
        if increments:
            rows.append(
                (
                    f"Full sync of {count(n)}: bookkeeping writes (checkpoint, run)",
                    f"{bookkeeping}",
                    "two UpdateItems a page, plus the lock's start and finish",
                )
            )
            for bill_id in ids[:: max(1, len(ids) // 100)][:100]:
                clio.state.update_bill(bill_id, balance_cents=1, notify=False)
            session.post(f"{api.url}/sync")
            made, wall = synced()
            rows.append(
                (
                    "Incremental after 100 changes: Clio requests / bill writes",
                    f"{made} / {counter.bill_writes}",
                    "minimum 1 (+1 deleted pass) / one conditional UpdateItem per change",
                )
            )

        spec = provisioned.lambdas.specs["ApiFunction"]
        handler = load_handler(spec)
        route = next(r for r in api.routes if r.path == "/invoices")
        # A client of its own session: the counter counts the handler's calls only.
        ddb = boto3.session.Session().client("dynamodb")
        add_member(provisioned.table_name, FIRM, CLERK)

        def handler_call(query: str) -> float:
            answer, spent = call_invoices(handler, spec, route, FIRM, query, user=CLERK)
            assert len(json.loads(answer["body"])["items"]) == PAGE
            return spent

        def raw_query() -> float:
            # The same page asked by hand: one Query of the index the default filter lives in.
            began = time.thread_time()
            ddb.query(
                TableName=provisioned.table_name,
                IndexName="gsi2",
                KeyConditionExpression="gsi2pk = :p",
                ExpressionAttributeValues={":p": {"S": f"FIRM#{FIRM}#GROUP#issued"}},
                ScanIndexForward=False,
                Limit=PAGE,
            )
            return time.thread_time() - began

        for _ in range(3):  # warm: clients made, the view's sync started (and left running)
            handler_call(f"page_size={PAGE}")
            raw_query()
        # Interleaved, so that whatever else the machine does weighs on both alike; CPU time
        # of this thread, where the handler and moto both run.
        raws, handled = [], []
        counter.reset()
        for _ in range(repeats):
            handled.append(handler_call(f"page_size={PAGE}"))
            raws.append(raw_query())
        per_page = {op: c / repeats for op, c in counter.calls.items()}
        raw, default = statistics.median(raws), statistics.median(handled)
        items_per_page = counter.items_read / repeats
        ratio = default / raw
        rows.append(
            (
                f"Default two-state page of {PAGE} among {count(n)}: handler vs one raw Query",
                f"{default * 1000:.1f} ms vs {raw * 1000:.1f} ms",
                f"{ratio:.2f}x: " + ("met" if ratio <= 1.2 else "MISSED") + " (target <= 1.2x)",
            )
        )
        # A view whose firm last synced over 30 s ago starts a sync: its TransactWriteItems (the
        # lock) and the connection's GetItem, one each a start, averaged in. The page's own
        # reads are the rest: the Query, and one request for the caller's member record with
        # the firm header (a BatchGetItem of both).
        starts = per_page.get("TransactWriteItems", 0)
        reads = per_page.get("GetItem", 0) + per_page.get("BatchGetItem", 0) - starts
        within = (
            per_page.get("Query", 0) <= 1
            and reads <= 1 + 1e-9
            and set(per_page) <= {"Query", "GetItem", "BatchGetItem", "TransactWriteItems"}
        )
        rows.append(
            (
                f"DynamoDB requests per default page ({count(n)} bills, a signed-in staff member)",
                ", ".join(f"{op} {c:g}" for op, c in sorted(per_page.items()))
                + f"; {items_per_page:g} items read",
                ("met" if within else "MISSED")
                + f" (target: 1 Query + at most 1 GetItem-equivalent read: {reads:g}"
                + (f", besides {starts:g} sync starts" if starts else "")
                + ")",
            )
        )
        api.stop()
        provisioned.lambdas.shutdown()
    clio.stop()
    return rows
