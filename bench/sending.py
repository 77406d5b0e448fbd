"""Sending at the speed of SES: the shipped workflow on moto's Step Functions with the real task
handlers, after a sync has prefetched the bill PDFs, and again once half the bills changed."""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
import requests

from bench.common import Row, aws, count, start_api, wait_for

FIRM = "sender"


def _previews(clio: Any) -> tuple[int, int]:
    """(preview fetches, every Clio API request) since the stats were reset."""
    stats = clio.state.stats(FIRM)
    previews = sum(n for path, n in stats["by_path"].items() if path.endswith("/preview.json"))
    return previews, int(stats["api_requests"])


def sending(envelopes: int = 500) -> list[Row]:
    from billbridge import bootstrap
    from local.clio_sandbox import ClioSandbox
    from local.clio_sandbox.seed import seed_many
    from local.outbox import read_outbox_in_process
    from local.stack import connect_firm

    rows: list[Row] = []
    clio = ClioSandbox(host="127.0.0.1", port=0, rate_limit=10_000_000)
    clio.start()
    seeded = envelopes + envelopes // 5
    with aws(stepfunctions=True):
        # The rate limit is lifted here, so the prefetch's only bound is its per-run cap.
        provisioned, api = start_api(clio.url, "queue", PDF_PREFETCH_PER_RUN=str(seeded))
        # Seeded clients without an email address cannot be sent to: seed enough to have
        # `envelopes` sendable bills, and draft exactly that many.
        for bill_id in seed_many(clio.state, FIRM, seeded, 3):
            clio.state.update_bill(
                bill_id, state="awaiting_payment", balance_cents=5_000, notify=False
            )
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{FIRM}"
        connect_firm(api.url, FIRM, FIRM)
        clio.state.reset_stats()
        began = time.perf_counter()
        provisioned.lambdas.drain()  # the first sync, then its prefetch
        prefetched, _ = _previews(clio)
        if not prefetched:
            # Then "after a sync has prefetched" would not be what the send rows measured.
            raise RuntimeError("the first sync's prefetch fetched no bill PDF")
        rows.append(
            (
                "First sync's prefetch: bill PDFs fetched / wall",
                f"{prefetched} / {time.perf_counter() - began:.1f} s",
                "every sendable bill (the rate limit lifted; in Clio, its windows' leftovers)",
            )
        )
        bills: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"states": "awaiting_payment", "page_size": 200}
            if cursor:
                params["cursor"] = cursor
            page = session.get(f"{api.url}/invoices", params=params, timeout=600).json()
            bills += [i["id"] for i in page["items"] if i["client"]["email"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        bills = bills[:envelopes]
        if len(bills) < envelopes:
            raise RuntimeError(f"only {len(bills)} sendable bills listed, {envelopes} wanted")
        sfn = boto3.client("stepfunctions")

        def send_all() -> tuple[int, float]:
            batches = [
                session.post(
                    f"{api.url}/envelopes", json={"bill_ids": bills[i : i + 99]}, timeout=600
                ).json()
                for i in range(0, len(bills), 99)
            ]
            before = len(read_outbox_in_process())
            clio.state.reset_stats()
            started = time.perf_counter()
            runs = [
                session.post(f"{api.url}/batches/{b['batch_id']}/send", timeout=600).json()[
                    "execution_id"
                ]
                for b in batches
            ]
            for run in runs:

                def finished(run: str = run) -> bool:
                    return bool(sfn.describe_execution(executionArn=run)["status"] != "RUNNING")

                wait_for("a send workflow to finish", finished)
            return len(read_outbox_in_process()) - before, time.perf_counter() - started

        sent, wall = send_all()
        if not sent:
            # "0 Clio requests" of a send that sent nothing would measure nothing.
            raise RuntimeError(f"the send of {envelopes} envelopes sent none")
        previews, every = _previews(clio)
        rows.append(
            (
                f"Send {count(envelopes)} envelopes after a sync has prefetched: "
                "Clio requests at send time",
                f"{every} (PDFs {previews})",
                ("met" if every == 0 else "MISSED") + " (target 0)",
            )
        )
        rows.append(
            (
                "Send: SES sends / wall",
                f"{sent} / {wall:.1f} s",
                f"must equal {envelopes}: "
                + ("held" if sent == envelopes else "FAILED")
                + f"; {sent / wall:.1f} envelopes/s on moto",
            )
        )

        # Half the bills change in Clio; the store learns it (a sync with no prefetch after
        # it, as when changes land just before a send), and the same bills are sent again.
        changed = bills[::2]
        for changed_id in changed:
            clio.state.update_bill(int(changed_id), balance_cents=4_000, notify=False)
        os.environ["PDF_PREFETCH_PER_RUN"] = "0"
        bootstrap.reset()
        session.post(f"{api.url}/sync", timeout=600)
        provisioned.lambdas.drain()
        sent, wall = send_all()
        if not sent:
            raise RuntimeError(f"the second send of {envelopes} envelopes sent none")
        previews, every = _previews(clio)
        rows.append(
            (
                f"Send {count(envelopes)} envelopes, half the bills changed since the prefetch: "
                "Clio requests",
                f"{every} (PDFs {previews}); {sent} sent in {wall:.1f} s",
                ("met" if every == len(changed) and sent == envelopes else "MISSED")
                + f" (target = bills changed, {len(changed)})",
            )
        )
        api.stop()
        provisioned.lambdas.shutdown()
    clio.stop()
    return rows
