"""The world a load run acts in: firms with bills in the Clio sandbox, connected through the
real OAuth redirects, with Stripe accounts and one emailed pay link per payable bill (sent by
the send workflow); and, afterwards, waiting for what the run set going and collecting both
webhooks' deliveries as the sandboxes recorded them."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from bench.load.record import TIMEOUT, Recorder
from bench.load.stack import StackUrls

ALL_STATES = "draft,awaiting_approval,awaiting_payment,paid,void,deleted"


@dataclass
class Link:
    id: str
    token: str
    url: str
    bill_ids: tuple[str, ...]
    numbers: tuple[str, ...]


@dataclass
class FirmWorld:
    id: str
    name: str
    domain: str  # the firm's clients' email domain
    bills: dict[str, str] = field(default_factory=dict)  # bill id -> number, all of them
    payable: list[str] = field(default_factory=list)
    churn: list[str] = field(default_factory=list)  # bills changed in Clio during the run
    changed: set[str] = field(default_factory=set)  # those of them actually changed
    links: list[Link] = field(default_factory=list)
    drafts: list[str] = field(default_factory=list)
    sending: list[str] = field(default_factory=list)
    pending_ach: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class World:
    """The firms of a run and what the clients share: pay links, drafts, Stripe events."""

    def __init__(self, urls: StackUrls) -> None:
        self.urls = urls
        self.recorder = Recorder()
        self.firms: list[FirmWorld] = []
        self.events: list[str] = []  # Stripe event ids the clients caused, to resend
        # Clio's deliveries as its sandbox ended them (delivered, of them after a retry), and
        # those it gave up on (webhook_samples fills them).
        self.clio_outcomes: Counter[str] = Counter()
        self.clio_lost: list[str] = []
        self.events_lock = threading.Lock()

    # -- set-up (not timed) -------------------------------------------------------------------

    def setup(self, firm_count: int, payable: int, churn: int) -> None:
        run = uuid.uuid4().hex[:6]
        for number in range(1, firm_count + 1):
            firm = FirmWorld(
                id=f"load-{run}-{number}",
                name=f"Load Firm {number} LLP",
                domain=f"firm{number}-{run}.client.example",
            )
            self._make_bills(firm, payable, churn)
            self._connect(firm)
            self.firms.append(firm)
        for firm in self.firms:
            self._sync(firm, set(firm.bills))
            self._send_links(firm)

    def _make_bills(self, firm: FirmWorld, payable: int, churn: int) -> None:
        for index in range(payable + churn):
            trust = index % 4 == 3 and index < payable
            answer = requests.post(
                f"{self.urls.clio}/_sandbox/bills",
                json={
                    "account": firm.id,
                    "kind": "trust_request" if trust else "invoice",
                    "total_cents": 500_000,
                    "state": "awaiting_payment",
                    "number": f"{firm.id}-{index}",
                    "client": {
                        "name": f"Client {index} of {firm.name}",
                        "email": f"client{index}@{firm.domain}",
                    },
                    "matter": {"display_number": f"{index:05d}-{firm.id}", "description": "Load"},
                },
                timeout=TIMEOUT,
            )
            answer.raise_for_status()
            bill_id = str(answer.json()["id"])
            firm.bills[bill_id] = answer.json()["number"]
            (firm.payable if index < payable else firm.churn).append(bill_id)

    def staff(self, firm: FirmWorld) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{firm.id}"
        return session

    def _connect(self, firm: FirmWorld) -> None:
        staff = self.staff(firm)
        start = staff.get(f"{self.urls.api}/clio/connect", allow_redirects=False, timeout=TIMEOUT)
        authorize = start.headers["Location"] + "&" + urlencode({"sandbox_account": firm.id})
        approved = requests.get(authorize, allow_redirects=False, timeout=TIMEOUT)
        # Back in the browser that started it: the connect's cookie binds the approval to it.
        callback = staff.get(approved.headers["Location"], allow_redirects=False, timeout=120)
        if callback.status_code != 302:
            raise RuntimeError(f"connecting {firm.id}: {callback.status_code} {callback.text}")
        made = requests.post(
            f"{self.urls.api}/_local/firms/{firm.id}/payment-accounts",
            headers={"Authorization": f"Bearer {self.urls.admin_token}"}
            if self.urls.admin_token
            else {},
            timeout=TIMEOUT,
        )
        made.raise_for_status()
        settings = staff.get(f"{self.urls.api}/settings", timeout=TIMEOUT).json()
        settings["firm_name"] = firm.name
        staff.put(f"{self.urls.api}/settings", json=settings, timeout=TIMEOUT).raise_for_status()

    def _sync(self, firm: FirmWorld, wanted: set[str]) -> None:
        staff = self.staff(firm)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            run = staff.post(f"{self.urls.api}/sync", timeout=TIMEOUT).json()
            while (
                staff.get(f"{self.urls.api}/sync/{run['id']}", timeout=TIMEOUT).json()["status"]
                == "running"
                and time.monotonic() < deadline
            ):
                time.sleep(0.3)
            listed = staff.get(
                f"{self.urls.api}/invoices?states={ALL_STATES}&page_size=200", timeout=TIMEOUT
            ).json()
            if wanted <= {item["id"] for item in listed["items"]}:
                return
        raise RuntimeError(f"{firm.id}'s bills never synced")

    def _send_links(self, firm: FirmWorld) -> None:
        """One emailed pay link per payable bill, through the send workflow."""
        staff = self.staff(firm)
        drafted = staff.post(
            f"{self.urls.api}/envelopes", json={"bill_ids": firm.payable}, timeout=TIMEOUT
        )
        drafted.raise_for_status()
        batch = drafted.json()["batch_id"]
        staff.post(f"{self.urls.api}/batches/{batch}/send", timeout=TIMEOUT).raise_for_status()
        deadline = time.monotonic() + 300
        while True:
            envelopes = staff.get(f"{self.urls.api}/batches/{batch}", timeout=TIMEOUT).json()[
                "envelopes"
            ]
            if all(e["status"] == "sent" for e in envelopes):
                break
            failed = [e for e in envelopes if e["status"] == "failed"]
            if failed or time.monotonic() > deadline:
                raise RuntimeError(f"sending {firm.id}'s pay links: {failed or envelopes}")
            time.sleep(0.5)
        for envelope in envelopes:
            self.add_link(firm, envelope)

    def add_link(self, firm: FirmWorld, envelope: dict[str, Any]) -> None:
        url = envelope["payment_url"]
        link = Link(
            id=envelope["payment_link_id"],
            token=url.rsplit("/", 1)[1],
            url=f"{self.urls.api}/pay/{url.rsplit('/', 1)[1]}",
            bill_ids=tuple(envelope["bill_ids"]),
            numbers=tuple(firm.bills[b] for b in envelope["bill_ids"]),
        )
        with firm.lock:
            if all(existing.id != link.id for existing in firm.links):
                firm.links.append(link)

    # -- afterwards ---------------------------------------------------------------------------

    def quiesce(self) -> None:
        """Wait for what the run set going: Stripe's queued webhooks, Clio's deliveries and
        retries, sends in flight."""
        requests.get(f"{self.urls.stripe}/_sandbox/idle", params={"timeout": 60}, timeout=90)
        deadline = time.monotonic() + 60
        last = -1
        while time.monotonic() < deadline:
            deliveries = self.clio_deliveries()
            # A delivery whose last attempt is "retrying" has a retry to come (seconds later).
            latest: dict[tuple[Any, ...], str] = {}
            for attempt in deliveries:
                key = (attempt["webhook_id"], attempt["bill_id"], attempt["body"])
                latest[key] = attempt["outcome"]
            if len(deliveries) == last and "retrying" not in latest.values():
                break
            last = len(deliveries)
            time.sleep(3)
        for firm in self.firms:
            staff = self.staff(firm)
            while firm.sending and time.monotonic() < deadline + 60:
                envelope_id = firm.sending[0]
                answer = staff.get(f"{self.urls.api}/envelopes/{envelope_id}", timeout=TIMEOUT)
                if answer.status_code != 200 or answer.json()["status"] != "sending":
                    firm.sending.pop(0)
                else:
                    time.sleep(0.5)

    def clio_changes_reflected(self) -> tuple[int, list[str]]:
        """How many bills changed in Clio during the run show Clio's last balance once its
        webhooks have landed (no sync is asked for), and those that do not."""
        behind = []
        for firm in self.firms:
            listed = self.staff(firm).get(
                f"{self.urls.api}/invoices?states={ALL_STATES}&page_size=200", timeout=TIMEOUT
            )
            ours = {item["id"]: item for item in listed.json()["items"]}
            for bill in sorted(firm.changed):
                clio = requests.get(f"{self.urls.clio}/_sandbox/bills/{bill}", timeout=TIMEOUT)
                balance = round(clio.json()["balance"] * 100)
                if bill not in ours or ours[bill]["outstanding_clio_cents"] != balance:
                    shown = ours.get(bill, {}).get("outstanding_clio_cents")
                    behind.append(f"bill {bill}: Clio {balance}, ours {shown}")
        return sum(len(f.changed) for f in self.firms), behind

    def clio_deliveries(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for firm in self.firms:
            answer = requests.get(
                f"{self.urls.clio}/_sandbox/webhook_deliveries",
                params={"account": firm.id},
                timeout=TIMEOUT,
            )
            found += answer.json()["data"]
        return found

    def webhook_samples(self) -> None:
        """Both webhooks' deliveries as the sandboxes recorded them: status and duration."""
        events = requests.get(f"{self.urls.stripe}/_sandbox/events", timeout=120).json()
        firm_ids = {firm.id for firm in self.firms}
        # Ours: events about our firms' objects, and charges of our PaymentIntents (a charge
        # carries no metadata). The test session's stack is shared with other tests.
        intents = {
            event["data"]["object"]["id"]
            for event in events
            if event["data"]["object"].get("object") == "payment_intent"
            and (event["data"]["object"].get("metadata") or {}).get("firm_id") in firm_ids
        }
        for event in events:
            obj = event["data"]["object"]
            if (obj.get("metadata") or {}).get("firm_id") not in firm_ids and obj.get(
                "payment_intent"
            ) not in intents:
                continue
            attempts = requests.get(
                f"{self.urls.stripe}/_sandbox/events/{event['id']}/deliveries", timeout=TIMEOUT
            ).json()
            for number, attempt in enumerate(attempts):
                route = "POST /webhooks/stripe" + (" (duplicate)" if number else "")
                self.recorder.add(
                    route,
                    int(attempt["status"] or 0),
                    float(attempt.get("duration_ms") or 0.0),
                    f"{event['type']} {event['id']} {attempt.get('error') or ''}",
                )
        for attempt in self.clio_deliveries():
            if attempt["kind"] == "handshake":
                continue
            if attempt["outcome"] in ("delivered", "suspended"):
                self.clio_outcomes["delivered"] += 1
                if int(attempt["attempt"]) > 1:
                    self.clio_outcomes["after a retry"] += 1
            elif attempt["outcome"] == "gave_up":
                self.clio_lost.append(
                    f"bill {attempt['bill_id']} {attempt['event']}: gave up after "
                    f"{attempt['attempt']} attempts ({attempt.get('status')} "
                    f"{attempt.get('error') or ''})"
                )
            self.recorder.add(
                "POST /webhooks/clio",
                int(attempt["status"] or 0),
                float(attempt.get("duration_ms") or 0.0),
                f"bill {attempt['bill_id']} {attempt['event']} attempt {attempt['attempt']} at "
                f"{attempt.get('at')} ({attempt.get('outcome')}) {attempt.get('error') or ''}",
            )
