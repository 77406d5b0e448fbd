"""The clients: threads acting as a firm's staff and as its clients, each request one whose
answer proves whose it is."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from bench.load.record import TIMEOUT
from bench.load.world import ALL_STATES, FirmWorld, Link, World


class Pacer:
    """At most one action every `every` seconds across all clients (sends, syncs)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.next = 0.0
        self.lock = threading.Lock()

    def ready(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if now < self.next:
                return False
            self.next = now + self.every
            return True


class Clients:
    """The client threads of a run, over the world's firms."""

    def __init__(self, world: World, seed: int) -> None:
        self.world = world
        self.urls = world.urls
        self.recorder = world.recorder
        self.seed = seed
        self.send_pacer = Pacer(1.5)
        self.sync_pacer = Pacer(2.0)

    def run(self, clients: int, duration: float, warm_up: Callable[[float], None] | None) -> float:
        """`clients` threads, each a firm's staff member or one of its clients, acting until
        `duration` seconds have passed; `warm_up(started)` runs beside them from the start, on
        a thread of its own. Answers how long the run took."""
        actions = self._actions()
        names = [name for name, _, _ in actions]
        weights = [weight for _, weight, _ in actions]
        table = {name: act for name, _, act in actions}
        started = time.monotonic()
        deadline = started + duration

        def client(number: int) -> None:
            rng = random.Random(self.seed * 1000 + number)
            firm = self.world.firms[number % len(self.world.firms)]
            staff = self.world.staff(firm)
            public = requests.Session()
            while time.monotonic() < deadline:
                name = rng.choices(names, weights)[0]
                table[name](firm, staff, public, rng)
                time.sleep(rng.uniform(0.02, 0.2))

        threads = [
            threading.Thread(target=client, args=(n,), name=f"client-{n}", daemon=True)
            for n in range(clients)
        ]
        if warm_up is not None:
            threads.append(
                threading.Thread(target=warm_up, args=(started,), name="warm-up", daemon=True)
            )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=duration + 4 * TIMEOUT)
        return time.monotonic() - started

    def clio_burst(self, count: int) -> int:
        """`count` churn bills changed in Clio at once (round the firms): as many webhook
        deliveries at the same moment."""
        bills = [
            (firm, bill)
            for row in itertools.zip_longest(*(firm.churn for firm in self.world.firms))
            for firm, bill in zip(self.world.firms, row, strict=True)
            if bill is not None
        ][:count]
        jobs = [
            threading.Thread(
                target=self.change_bill,
                args=(firm, bill, requests.Session(), random.Random(bill)),
                daemon=True,
            )
            for firm, bill in bills
        ]
        for job in jobs:
            job.start()
        for job in jobs:
            job.join(timeout=TIMEOUT)
        return len(jobs)

    def _actions(self) -> list[tuple[str, int, Callable[..., None]]]:
        return [
            ("list", 14, self.list_invoices),
            ("sync", 3, self.sync),
            ("settings", 6, self.settings),
            ("draft", 6, self.draft),
            ("send", 3, self.send),
            ("watch", 3, self.watch_sends),
            ("pay_html", 8, self.pay_html),
            ("pay_json", 8, self.pay_json),
            ("checkout", 9, self.checkout_and_pay),
            ("settle", 2, self.settle_ach),
            ("resend", 6, self.resend),
            ("refund", 6, self.payment_link_and_refund),
            ("clio", 4, self.change_in_clio),
            ("reconciliation", 2, self.reconciliation),
        ]

    def _link(self, firm: FirmWorld, rng: random.Random) -> Link | None:
        with firm.lock:
            return rng.choice(firm.links) if firm.links else None

    def list_invoices(self, firm: FirmWorld, staff: requests.Session, _: Any, rng: Any) -> None:
        route = "GET /invoices"
        states = rng.choice(["awaiting_payment,paid", ALL_STATES, "awaiting_payment"])
        params: dict[str, Any] = {"states": states, "page_size": rng.choice([3, 7, 25, 50])}
        for _page in range(3):
            answer = self.recorder.call(
                route, staff, "GET", f"{self.urls.api}/invoices", params=params
            )
            if answer is None or answer.status_code != 200:
                return
            body = answer.json()
            foreign = [i["id"] for i in body["items"] if i["id"] not in firm.bills]
            if foreign or body["states"] != states.split(","):
                self.recorder.cross(route, f"{firm.id} asked {params}, got {foreign or body}")
            if any(i["state"] not in states.split(",") for i in body["items"]):
                self.recorder.cross(route, f"{firm.id}: states other than {states}")
            if not body["next_cursor"]:
                return
            params = {**params, "cursor": body["next_cursor"]}

    def sync(self, firm: FirmWorld, staff: requests.Session, _: Any, rng: Any) -> None:
        if not self.sync_pacer.ready():
            return self.list_invoices(firm, staff, _, rng)
        started = self.recorder.call("POST /sync", staff, "POST", f"{self.urls.api}/sync")
        if started is None or started.status_code != 202:
            return
        run_id = started.json()["id"]
        answer = self.recorder.call(
            "GET /sync/{id}", staff, "GET", f"{self.urls.api}/sync/{run_id}"
        )
        # The run the firm just started is the firm's: a 404 would be another firm's run.
        if answer is not None and (answer.status_code != 200 or answer.json()["id"] != run_id):
            self.recorder.cross("GET /sync/{id}", f"{firm.id} {run_id}: {answer.status_code}")

    def settings(self, firm: FirmWorld, staff: requests.Session, _: Any, rng: Any) -> None:
        answer = self.recorder.call("GET /settings", staff, "GET", f"{self.urls.api}/settings")
        if answer is None or answer.status_code != 200:
            return
        settings = answer.json()
        if settings.get("firm_name") != firm.name:
            self.recorder.cross("GET /settings", f"{firm.id} got {settings.get('firm_name')}")
            return
        if rng.random() < 0.3:
            sender = f"Billing {rng.randrange(1000)}"
            saved = self.recorder.call(
                "PUT /settings",
                staff,
                "PUT",
                f"{self.urls.api}/settings",
                json={**settings, "sender_name": sender},
            )
            if saved is not None and saved.status_code == 200:
                body = saved.json()
                if body["firm_name"] != firm.name:
                    self.recorder.cross("PUT /settings", f"{firm.id} got {body['firm_name']}")

    def draft(self, firm: FirmWorld, staff: requests.Session, _: Any, rng: Any) -> None:
        chosen = rng.sample(firm.payable, rng.choice([1, 2]))
        route = "POST /envelopes"
        answer = self.recorder.call(
            route, staff, "POST", f"{self.urls.api}/envelopes", json={"bill_ids": chosen}
        )
        if answer is None or answer.status_code != 201:
            return
        envelopes = answer.json()["envelopes"]
        for envelope in envelopes:
            if not set(envelope["bill_ids"]) <= set(chosen) or not envelope["to"].endswith(
                f"@{firm.domain}"
            ):
                self.recorder.cross(route, f"{firm.id} drafted {chosen}, got {envelope}")
                return
        envelope = rng.choice(envelopes)
        subject = f"Load {uuid.uuid4().hex[:8]}"
        edited = self.recorder.call(
            "PATCH /envelopes/{id}",
            staff,
            "PATCH",
            f"{self.urls.api}/envelopes/{envelope['id']}",
            json={"subject": subject},
        )
        if edited is not None and edited.status_code == 200:
            body = edited.json()
            if (body["id"], body["subject"]) != (envelope["id"], subject):
                self.recorder.cross("PATCH /envelopes/{id}", f"{envelope['id']}: {body}")
        shown = self.recorder.call(
            "GET /envelopes/{id}", staff, "GET", f"{self.urls.api}/envelopes/{envelope['id']}"
        )
        if shown is not None and shown.status_code == 200 and shown.json()["id"] != envelope["id"]:
            self.recorder.cross("GET /envelopes/{id}", f"{envelope['id']}: {shown.json()['id']}")
        with firm.lock:
            firm.drafts.append(envelope["id"])

    def send(self, firm: FirmWorld, staff: requests.Session, public: Any, rng: Any) -> None:
        with firm.lock:
            envelope_id = firm.drafts.pop() if firm.drafts and self.send_pacer.ready() else None
        if envelope_id is None:
            return self.draft(firm, staff, public, rng)
        route = "POST /envelopes/{id}/send"
        answer = self.recorder.call(
            route, staff, "POST", f"{self.urls.api}/envelopes/{envelope_id}/send"
        )
        if answer is not None and answer.status_code == 202:
            if answer.json()["envelope"]["id"] != envelope_id:
                self.recorder.cross(route, f"{envelope_id}: {answer.json()['envelope']['id']}")
            with firm.lock:
                firm.sending.append(envelope_id)

    def watch_sends(self, firm: FirmWorld, staff: requests.Session, public: Any, rng: Any) -> None:
        with firm.lock:
            envelope_id = rng.choice(firm.sending) if firm.sending else None
        if envelope_id is None:
            return self.pay_json(firm, staff, public, rng)
        route = "GET /envelopes/{id}"
        answer = self.recorder.call(route, staff, "GET", f"{self.urls.api}/envelopes/{envelope_id}")
        if answer is None or answer.status_code != 200:
            return
        envelope = answer.json()
        if envelope["id"] != envelope_id:
            self.recorder.cross(route, f"{envelope_id}: {envelope['id']}")
        elif envelope["status"] != "sending":
            with firm.lock:
                if envelope_id in firm.sending:  # another client may have seen it first
                    firm.sending.remove(envelope_id)
            if envelope["status"] == "sent":
                self.world.add_link(firm, envelope)

    def pay_html(self, firm: FirmWorld, _: Any, public: requests.Session, rng: Any) -> None:
        link = self._link(firm, rng)
        if link is None:
            return
        route = "GET /pay/{token} (HTML)"
        answer = self.recorder.call(route, public, "GET", link.url, headers={"Accept": "text/html"})
        if answer is None or answer.status_code != 200:
            return
        if not answer.headers.get("Content-Type", "").startswith("text/html") or not all(
            number in answer.text for number in link.numbers
        ):
            self.recorder.cross(route, f"{link.id}: {answer.headers.get('Content-Type')}")

    def pay_json(self, firm: FirmWorld, _: Any, public: requests.Session, rng: Any) -> None:
        link = self._link(firm, rng)
        if link is None:
            return
        route = "GET /pay/{token} (JSON)"
        answer = self.recorder.call(
            route, public, "GET", link.url, headers={"Accept": "application/json"}
        )
        if answer is None or answer.status_code != 200:
            return
        if not answer.headers.get("Content-Type", "").startswith("application/json"):
            self.recorder.cross(route, f"{link.id}: {answer.headers.get('Content-Type')}")
            return
        body = answer.json()
        if {b["id"] for b in body["bills"]} != set(link.bill_ids) or body["firm"] != firm.name:
            self.recorder.cross(route, f"{link.id} of {firm.id}: {body}")

    def checkout_and_pay(self, firm: FirmWorld, _: Any, public: requests.Session, rng: Any) -> None:
        link = self._link(firm, rng)
        if link is None:
            return
        method = "ach" if rng.random() < 0.2 else "card"
        amount = rng.randrange(100, 2_000)
        route = "POST /pay/{token}/checkout"
        answer = self.recorder.call(
            route,
            public,
            "POST",
            f"{link.url}/checkout",
            json={"bill_ids": list(link.bill_ids), "amount_cents": amount, "method": method},
        )
        if answer is None or answer.status_code != 201:
            return
        sessions = answer.json()["checkout_sessions"]
        if sum(s["amount_cents"] for s in sessions) != amount:
            self.recorder.cross(route, f"{link.id} asked {amount}: {sessions}")
            return
        for session in sessions:
            outcome = "failed" if rng.random() < 0.05 else "succeeded"
            paid = self.recorder.call(
                "Stripe sandbox: pay a checkout",
                public,
                "POST",
                f"{self.urls.stripe}/_sandbox/checkout_sessions/{session['id']}/pay",
                json={"method": method, "outcome": outcome},
            )
            if paid is None or paid.status_code != 200:
                continue
            result = paid.json()
            with self.world.events_lock:
                self.world.events.extend(result.get("events", []))
            if method == "ach" and outcome == "succeeded":
                with firm.lock:
                    firm.pending_ach.append(result["payment_intent"]["id"])

    def settle_ach(self, firm: FirmWorld, staff: Any, public: requests.Session, rng: Any) -> None:
        with firm.lock:
            intent = firm.pending_ach.pop(0) if firm.pending_ach else None
        if intent is None:
            return self.pay_html(firm, staff, public, rng)
        outcome = "fail" if rng.random() < 0.1 else "settle"
        answer = self.recorder.call(
            "Stripe sandbox: settle or fail ACH",
            public,
            "POST",
            f"{self.urls.stripe}/_sandbox/payment_intents/{intent}/{outcome}",
            json={},
        )
        if answer is not None and answer.status_code == 200:
            with self.world.events_lock:
                self.world.events.extend(answer.json().get("events", []))

    def resend_one(self) -> None:
        """One resend of the first delivered event, if any (after the timed run)."""
        with self.world.events_lock:
            event = self.world.events[0] if self.world.events else None
        if event is None:
            return
        with requests.Session() as public:
            self.recorder.call(
                "Stripe sandbox: resend an event",
                public,
                "POST",
                f"{self.urls.stripe}/_sandbox/events/{event}/resend",
                json={},
            )

    def resend(self, firm: FirmWorld, staff: Any, public: requests.Session, rng: Any) -> None:
        with self.world.events_lock:
            event = rng.choice(self.world.events) if self.world.events else None
        if event is None:
            return self.pay_json(firm, staff, public, rng)
        self.recorder.call(
            "Stripe sandbox: resend an event",
            public,
            "POST",
            f"{self.urls.stripe}/_sandbox/events/{event}/resend",
            json={},
        )

    def payment_link_and_refund(
        self, firm: FirmWorld, staff: requests.Session, _: Any, rng: Any
    ) -> None:
        link = self._link(firm, rng)
        if link is None:
            return
        route = "GET /payment-links/{id}"
        answer = self.recorder.call(route, staff, "GET", f"{self.urls.api}/payment-links/{link.id}")
        if answer is None or answer.status_code != 200:
            return
        body = answer.json()
        if body["id"] != link.id or tuple(body["bill_ids"]) != link.bill_ids:
            self.recorder.cross(route, f"{link.id}: {body['id']} {body['bill_ids']}")
            return
        refundable = [
            t
            for t in body["transactions"]
            if t["kind"] == "payment"
            and t["status"] == "succeeded"
            and t["method"] == "card"
            and t["refundable_cents"] > 0
            and not t["disputed"]
        ]
        if not refundable:
            return
        payment = rng.choice(refundable)
        amount = min(payment["refundable_cents"], rng.randrange(50, 600))
        refund_route = "POST /payment-links/{id}/transactions/{txn}/refunds"
        made = self.recorder.call(
            refund_route,
            staff,
            "POST",
            f"{self.urls.api}/payment-links/{link.id}/transactions/{payment['id']}/refunds",
            json={"amount_cents": amount},
        )
        if made is not None and made.status_code == 201:
            refund = made.json()
            if (refund["kind"], refund["payment_id"]) != ("refund", payment["id"]):
                self.recorder.cross(refund_route, f"{payment['id']}: {refund}")

    def change_in_clio(
        self, firm: FirmWorld, staff: Any, public: requests.Session, rng: Any
    ) -> None:
        self.change_bill(firm, rng.choice(firm.churn), public, rng)

    def change_bill(
        self, firm: FirmWorld, bill: str, public: requests.Session, rng: random.Random
    ) -> None:
        with firm.lock:
            firm.changed.add(bill)
        self.recorder.call(
            "Clio sandbox: change a bill",
            public,
            "PATCH",
            f"{self.urls.clio}/_sandbox/bills/{bill}",
            json={"balance_cents": rng.randrange(1_000, 500_000)},
        )

    def reconciliation(self, firm: FirmWorld, staff: requests.Session, _: Any, rng: Any) -> None:
        route = "GET /reconciliation"
        answer = self.recorder.call(route, staff, "GET", f"{self.urls.api}/reconciliation")
        if answer is not None and answer.status_code == 200:
            foreign = [
                i["bill_id"] for i in answer.json()["items"] if i["bill_id"] not in firm.bills
            ]
            if foreign:
                self.recorder.cross(route, f"{firm.id}: {foreign}")

    # -- afterwards ---------------------------------------------------------------------------
