"""In-memory fakes of every service port, for fast unit tests with the network blocked.

Each fake keeps state and applies the same rules as its adapter (conditions, idempotency,
what is written together), so tests check outcomes, not calls. `FakeWorld` holds one of each,
sharing state as the real store does, and builds the app on them through the composition
root (`billbridge.bootstrap`)."""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from billbridge.adapters.stripe_gateway import (
    account_params,
    checkout_intent_data,
    checkout_metadata,
)
from billbridge.domain.accounts import Member
from billbridge.domain.bills import Bill, BillState, StoredBill, is_sendable
from billbridge.domain.connection import ClioConnection, Region
from billbridge.domain.envelopes import (
    Batch,
    Envelope,
    EnvelopeStatus,
    check_editable,
    statuses_before,
)
from billbridge.domain.errors import ClioUnreachable, Conflict
from billbridge.domain.ledger import (
    BILL_MONEY,
    BillDelta,
    CheckoutHolds,
    LedgerEntry,
    PaymentChange,
)
from billbridge.domain.listing import (
    Position,
    Sort,
    SortField,
    after,
    arrange,
    is_overdue,
    matches,
    position_of,
)
from billbridge.domain.payment_accounts import (
    ConnectedAccount,
    StripeAccountState,
    parse_stripe_account,
)
from billbridge.domain.payment_links import PaymentLink
from billbridge.domain.payments import Account, Hold, Method, Transaction
from billbridge.domain.reconciliation import RecordedNote
from billbridge.domain.settings import FirmSettings
from billbridge.domain.sync import LOCK_TTL, SyncCheckpoint, SyncRun
from billbridge.services.ports import (
    BillsPage,
    CheckoutRequest,
    CheckoutSession,
    CheckoutSessionState,
    ConnectedAccountRequest,
    DuplicateEvent,
    FirmHeader,
    PaymentAccounts,
    RefundResult,
    SentRecord,
    SortedPage,
    StaleTransaction,
    WantedPdf,
)
from tests.fakes_plans import FakePlanStore, FakeSavedMethods


class FakeBills:
    def __init__(self) -> None:
        self.items: dict[tuple[str, int], StoredBill] = {}
        self.write_calls = 0
        # Bills whose PDF is wanted, as the store's sparse index keeps them.
        self.pdf_queue: set[tuple[str, int]] = set()

    def get(self, firm_id: str, bill_id: int) -> StoredBill | None:
        return self.items.get((firm_id, bill_id))

    def get_many(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, StoredBill]:
        return {i: self.items[(firm_id, i)] for i in bill_ids if (firm_id, i) in self.items}

    def etags(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, str]:
        return {
            i: self.items[(firm_id, i)].bill.etag for i in bill_ids if (firm_id, i) in self.items
        }

    def save_clio_bills(
        self, firm_id: str, bills: Sequence[Bill], synced_at: datetime, existing_ids: Any = None
    ) -> int:
        self.write_calls += 1
        written = 0
        for bill in bills:
            current = self.items.get((firm_id, bill.id))
            if current and current.bill.clio_updated_at > bill.clio_updated_at:
                continue
            base = current or StoredBill(bill=bill)
            self.items[(firm_id, bill.id)] = replace(base, bill=bill, synced_at=synced_at)
            if is_sendable(bill):
                self.pdf_queue.add((firm_id, bill.id))
            else:
                self.pdf_queue.discard((firm_id, bill.id))
            written += 1
        return written

    def mark_deleted(self, firm_id: str, bill_id: int, at: datetime) -> bool:
        current = self.items.get((firm_id, bill_id))
        if current is None:
            return False
        self.items[(firm_id, bill_id)] = replace(
            current, bill=replace(current.bill, state=BillState.DELETED)
        )
        self.pdf_queue.discard((firm_id, bill_id))
        return True

    def pdf_wanted(self, firm_id: str, limit: int) -> list[WantedPdf]:
        ids = sorted((i for f, i in self.pdf_queue if f == firm_id), reverse=True)[:limit]
        return [
            WantedPdf(
                bill_id=i,
                etag=self.items[(firm_id, i)].bill.etag,
                cached_etag=self.items[(firm_id, i)].pdf_etag,
            )
            for i in ids
        ]

    def mark_pdf_cached(self, firm_id: str, bill_id: int, etag: str) -> bool:
        current = self.items.get((firm_id, bill_id))
        if current is None or current.bill.etag != etag:
            return False
        self.items[(firm_id, bill_id)] = replace(current, pdf_etag=etag)
        self.pdf_queue.discard((firm_id, bill_id))
        return True

    def page(
        self, firm_id: str, states: Sequence[BillState], page_size: int, before_bill_id: int | None
    ) -> BillsPage:
        rows = sorted(
            (
                s
                for (f, _), s in self.items.items()
                if f == firm_id
                and s.bill.state in states
                and (before_bill_id is None or s.bill.id < before_bill_id)
            ),
            key=lambda s: -s.bill.id,
        )
        page = rows[:page_size]
        return BillsPage(
            items=page, last_bill_id=page[-1].bill.id if len(rows) > page_size else None
        )

    def search_page(
        self,
        firm_id: str,
        states: Sequence[BillState],
        *,
        sort: Sort | None,
        query: str | None,
        overdue_on: date | None,
        page_size: int,
        cursor: Position | None,
    ) -> SortedPage:
        if query is None and sort is None:
            sort = Sort(SortField.DUE_AT)
        rows = [
            s
            for (f, _), s in self.items.items()
            if f == firm_id
            and s.bill.state in states
            and s.bill.state is not BillState.DELETED
            and (overdue_on is None or is_overdue(s, overdue_on))
            and (query is None or matches(s, query))
            and after(s, sort, cursor)
        ]
        ordered = arrange(rows, sort)
        page = ordered[:page_size]
        last = position_of(page[-1], sort) if len(ordered) > page_size else None
        return SortedPage(items=page, last=last)


class FakeEnvelopes:
    def __init__(self) -> None:
        self.envelopes: dict[tuple[str, str], Envelope] = {}
        self.batches: dict[tuple[str, str], Batch] = {}

    def create_batch(self, batch: Batch, envelopes: Sequence[Envelope]) -> None:
        self.batches[(batch.firm_id, batch.id)] = batch
        for envelope in envelopes:
            self.envelopes[(envelope.firm_id, envelope.id)] = envelope

    def get(self, firm_id: str, envelope_id: str) -> Envelope | None:
        return self.envelopes.get((firm_id, envelope_id))

    def get_batch(self, firm_id: str, batch_id: str) -> tuple[Batch, list[Envelope]] | None:
        batch = self.batches.get((firm_id, batch_id))
        if batch is None:
            return None
        return batch, [self.envelopes[(firm_id, i)] for i in batch.envelope_ids]

    def edit_draft(self, firm_id: str, envelope_id: str, subject: str, body: str) -> Envelope:
        current = self.envelopes[(firm_id, envelope_id)]
        check_editable(current)
        edited = replace(current, subject=subject, body=body, edited=True)
        self.envelopes[(firm_id, envelope_id)] = edited
        return edited

    def rewrite(self, envelope: Envelope, claim_token: str | None = None) -> bool:
        from billbridge.domain.envelopes import EDITABLE, EnvelopeStatus

        key = (envelope.firm_id, envelope.id)
        current = self.envelopes.get(key)
        if current is None or current.edited:
            return False
        if claim_token is None:
            if current.status not in EDITABLE:
                return False
        else:
            claims = getattr(self, "claims", {})
            started = getattr(self, "ses_started", set())
            if (
                current.status is not EnvelopeStatus.SENDING
                or claims.get(key) != claim_token
                or key in started
            ):
                return False
        self.envelopes[key] = replace(
            current,
            subject=envelope.subject,
            body=envelope.body,
            bill_ids=envelope.bill_ids,
            drafted_amounts=envelope.drafted_amounts,
            send_note=envelope.send_note or current.send_note,
        )
        return True

    def requeue(self, firm_id: str, envelope_id: str) -> bool:
        from billbridge.domain.envelopes import EnvelopeStatus, statuses_before

        current = self.envelopes.get((firm_id, envelope_id))
        if current is None or current.status not in statuses_before(EnvelopeStatus.DRAFT):
            return False
        self.envelopes[(firm_id, envelope_id)] = replace(
            current, status=EnvelopeStatus.DRAFT, error=None
        )
        return True


class FakeSyncs:
    def __init__(self) -> None:
        self.checkpoints: dict[str, SyncCheckpoint] = {}
        self.runs: dict[tuple[str, str], SyncRun] = {}

    def checkpoint(self, firm_id: str) -> SyncCheckpoint:
        return self.checkpoints.get(firm_id, SyncCheckpoint(firm_id=firm_id))

    def start_run(self, run: SyncRun, now: datetime) -> tuple[SyncRun, bool]:
        cp = self.checkpoint(run.firm_id)
        if cp.lock_run_id and cp.lock_expires_at and cp.lock_expires_at > now:
            return self.runs[(run.firm_id, cp.lock_run_id)], False
        self.checkpoints[run.firm_id] = replace(
            cp, lock_run_id=run.id, lock_expires_at=now + LOCK_TTL, run=run
        )
        self.runs[(run.firm_id, run.id)] = run
        return run, True

    def save_progress(self, checkpoint: SyncCheckpoint, run: SyncRun, now: datetime) -> None:
        if self.checkpoint(run.firm_id).lock_run_id != run.id:
            raise Conflict("lost the sync lock")
        self.checkpoints[run.firm_id] = replace(
            checkpoint, lock_run_id=run.id, lock_expires_at=now + LOCK_TTL, run=run
        )
        self.runs[(run.firm_id, run.id)] = run

    def finish_run(self, checkpoint: SyncCheckpoint, run: SyncRun) -> None:
        if self.checkpoint(run.firm_id).lock_run_id != run.id:
            raise Conflict("lost the sync lock")
        self.checkpoints[run.firm_id] = replace(
            checkpoint, lock_run_id=None, lock_expires_at=None, last_run_id=run.id, run=run
        )
        self.runs[(run.firm_id, run.id)] = run

    def get_run(self, firm_id: str, run_id: str) -> SyncRun | None:
        return self.runs.get((firm_id, run_id))


class FakeConnections:
    def __init__(self) -> None:
        self.items: dict[str, ClioConnection] = {}

    def get(self, firm_id: str) -> ClioConnection | None:
        return self.items.get(firm_id)

    def save(self, connection: ClioConnection) -> None:
        self.items[connection.firm_id] = connection

    def connected_firm_ids(self) -> list[str]:
        return sorted(self.items)


class FakeSettings:
    def __init__(self) -> None:
        self.items: dict[str, FirmSettings] = {}

    def get(self, firm_id: str) -> FirmSettings:
        return self.items.get(firm_id, FirmSettings())

    def put(self, firm_id: str, settings: FirmSettings) -> None:
        self.items[firm_id] = settings


class FakeHeaders:
    """The firm header: the fakes' settings and sync state, read together; with the caller's
    member record (from `members`, a FakeMembers) in one read too."""

    def __init__(self, settings: FakeSettings, syncs: FakeSyncs, members: Any = None) -> None:
        self._settings = settings
        self._syncs = syncs
        self.members = members
        self.reads = 0

    def read(self, firm_id: str) -> FirmHeader:
        self.reads += 1
        return FirmHeader(
            settings=self._settings.get(firm_id), checkpoint=self._syncs.checkpoint(firm_id)
        )

    def read_with_member(self, firm_id: str, user_id: str) -> tuple[FirmHeader, Member | None]:
        header = self.read(firm_id)  # one read, as the store's one BatchGetItem
        return header, self.members.get(firm_id, user_id) if self.members is not None else None


class FakePdfStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, int, str], bytes] = {}

    def get(self, firm_id: str, bill_id: int, etag: str) -> bytes | None:
        return self.objects.get((firm_id, bill_id, etag))

    def put(self, firm_id: str, bill_id: int, etag: str, pdf: bytes) -> None:
        self.objects[(firm_id, bill_id, etag)] = pdf


class FakeLauncher:
    def __init__(self) -> None:
        self.launched: list[tuple[str, str]] = []

    def launch(self, firm_id: str, run_id: str) -> None:
        self.launched.append((firm_id, run_id))


@dataclass
class Page:
    bills: list[dict[str, Any]]
    next_url: str | None


T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def clio_bill(
    bill_id: int,
    *,
    state: str = "awaiting_payment",
    kind: str = "revenue_kind",
    total: str = "100.00",
    balance: str | None = None,
    updated: datetime | None = None,
    etag: str | None = None,
    client_email: str | None = "client@example.com",
) -> dict[str, Any]:
    """A Clio API v4 bill record as asked with BILL_FIELDS (money as Decimal, as parsed)."""
    from decimal import Decimal

    stamp = updated or T0 + timedelta(seconds=bill_id)
    return {
        "id": bill_id,
        "etag": etag or f'"{bill_id}-{stamp.timestamp()}"',
        "number": f"INV-{bill_id:05d}",
        "state": state,
        "kind": kind,
        "issued_at": "2026-10-01",
        "due_at": "2026-10-31",
        "updated_at": stamp.isoformat().replace("+00:00", "Z"),
        "total": Decimal(total),
        "balance": Decimal(balance if balance is not None else total),
        "currency": {"code": "USD"},
        "client": {"id": 7, "name": "Acme Ltd", "primary_email_address": client_email},
        "matters": [{"id": 55, "display_number": "00042-Acme", "description": "Lease dispute"}],
    }


@dataclass
class FakeClio:
    """Clio's bill listing: id-ordered pages, `updated_since`, `state`, and failure injection."""

    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    page_size: int = 200
    requests_made: int = 0
    fail_after_pages: int | None = None
    fail_with: Exception | None = None
    list_includes_deleted: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Errors the next bill_pdf calls raise, in order (Clio refusing or failing a preview).
    pdf_fail_next: list[Exception] = field(default_factory=list)
    # Clio answering 429s: the Retry-After of each, in order, before the next page. Waited out
    # (through `sleep`) when it fits the time left, as the real client does, else raised.
    rate_limited: list[float] = field(default_factory=list)
    sleep: Any = None
    waits: list[float] = field(default_factory=list)
    seconds_left: Any = None
    # Clio's rate window as its last answer told it (None: no answer yet); each request
    # spends one.
    rate_limit: int | None = 50
    rate_remaining: int | None = None
    pdf_fetches: list[int] = field(default_factory=list)

    def _spend(self) -> None:
        self.requests_made += 1
        if self.rate_remaining is None and self.rate_limit is not None:
            self.rate_remaining = self.rate_limit
        if self.rate_remaining is not None:
            self.rate_remaining -= 1

    def ensure_fresh(self, min_valid_seconds: float = 86400) -> None:
        return None

    def limit_waits(self, seconds_left: Any) -> None:
        self.seconds_left = seconds_left

    def _answer_rate_limits(self) -> None:
        while self.rate_limited:
            wait = self.rate_limited[0]
            if self.seconds_left is not None and wait > self.seconds_left():
                limited = ClioUnreachable(
                    f"Clio rate-limited GET /bills (retry after {wait:.0f} s)"
                )
                limited.transient, limited.retry_after = True, wait
                raise limited
            self.rate_limited.pop(0)
            self.waits.append(wait)
            if self.sleep is not None:
                self.sleep(wait)

    def who_am_i(self) -> dict[str, Any]:
        return {"id": 1, "name": "Sandbox User"}

    def authorize_url(self, state: str) -> str:
        return f"https://clio.test/oauth/authorize?state={state}"

    def exchange_code(self, code: str) -> Any:
        raise NotImplementedError

    def iter_bill_pages(
        self,
        *,
        updated_since: datetime | None = None,
        state: str | None = None,
        start_url: str | None = None,
    ) -> Iterator[Page]:
        self.calls.append({"updated_since": updated_since, "state": state, "start_url": start_url})
        rows = sorted(self.records.values(), key=lambda r: r["id"])
        if state is not None:
            rows = [r for r in rows if r["state"] == state]
        elif not self.list_includes_deleted:
            rows = [r for r in rows if r["state"] != "deleted"]
        if updated_since is not None:
            rows = [
                r
                for r in rows
                if datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")) > updated_since
            ]
        offset = int(start_url.rsplit("=", 1)[1]) if start_url else 0
        pages = 0
        while True:
            if (
                self.fail_after_pages is not None
                and pages >= self.fail_after_pages
                and self.fail_with
            ):
                raise self.fail_with
            self._answer_rate_limits()
            chunk = rows[offset : offset + self.page_size]
            offset += self.page_size
            self._spend()
            pages += 1
            more = offset < len(rows)
            yield Page(
                bills=chunk, next_url=f"https://clio.test/bills?offset={offset}" if more else None
            )
            if not more:
                return

    def get_bill(self, bill_id: int) -> dict[str, Any] | None:
        return self.records.get(bill_id)

    def bill_pdf(self, bill_id: int, *, wait_for_budget: bool = True) -> bytes:
        self._spend()
        if self.pdf_fail_next:
            raise self.pdf_fail_next.pop(0)
        self.pdf_fetches.append(bill_id)
        # A known record's PDF names its version, so a new version is a different PDF.
        version = f" {self.records[bill_id]['etag']}" if bill_id in self.records else ""
        return f"%PDF-1.4 bill {bill_id}{version}".encode()

    def create_bill_webhook(
        self, url: str, *, events: Sequence[str] = (), expires_at: datetime
    ) -> dict[str, Any]:
        return {
            "id": 42,
            "shared_secret": "s3cret",
            "status": "pending",
            "expires_at": expires_at.isoformat(),
        }

    def activate_webhook(self, webhook_id: int, shared_secret: str) -> None:
        return None

    def renew_webhook(self, webhook_id: int, expires_at: datetime) -> dict[str, Any]:
        return {"id": webhook_id, "expires_at": expires_at.isoformat()}


def connection(firm_id: str = "firm-a", **overrides: Any) -> ClioConnection:
    values: dict[str, Any] = dict(
        firm_id=firm_id,
        region=Region.US,
        access_token="at",
        refresh_token="rt",
        access_expires_at=T0 + timedelta(days=30),
        connected_at=T0,
    )
    values.update(overrides)
    return ClioConnection(**values)


# --- sending ---------------------------------------------------------------------------------


class Crash(Exception):
    """A Lambda dying, or a write failing, at the point a test chose (`FakeSending.crash_next`)."""


class FakeSending(FakeEnvelopes):
    """The send step's conditional writes (SendingRepository), with DynamoSendingRepository's
    conditions, taken from the same domain status rules (`statuses_before`): a claim per send,
    one SES call per claim, a failure only by the run holding the claim, status only forward.

    `before[call]` runs once just before that call (another run's step, interleaved there);
    `crash_next[call]` makes that many of the next such calls raise `Crash`."""

    def __init__(self, bills: FakeBills | None = None) -> None:
        super().__init__()
        self.bills = bills
        self.claims: dict[tuple[str, str], str] = {}
        self.ses_started: set[tuple[str, str]] = set()
        self.messages: dict[str, tuple[str, str]] = {}
        self.before: dict[str, Callable[[], Any]] = {}
        self.crash_next: dict[str, int] = {}
        self.sent_log: list[SentRecord] = []  # the bills' send history, in send order

    def _at(self, call: str) -> None:
        interleaved = self.before.pop(call, None)
        if interleaved is not None:
            interleaved()
        if self.crash_next.get(call, 0) > 0:
            self.crash_next[call] -= 1
            raise Crash(f"crashed in {call}")

    def message_of(self, firm_id: str, envelope_id: str) -> str | None:
        """The SES message id the envelope was marked sent with."""
        return next((m for m, key in self.messages.items() if key == (firm_id, envelope_id)), None)

    def claim(self, firm_id: str, envelope_id: str, claim_token: str, now: datetime) -> bool:
        self._at("claim")
        key = (firm_id, envelope_id)
        current = self.envelopes.get(key)
        if current is None:
            return False
        mine = current.status is EnvelopeStatus.SENDING and self.claims.get(key) == claim_token
        if current.status not in statuses_before(EnvelopeStatus.SENDING) and not mine:
            return False
        self.envelopes[key] = replace(current, status=EnvelopeStatus.SENDING, error=None)
        self.claims[key] = claim_token
        return True

    def start_ses_call(
        self, firm_id: str, envelope_id: str, claim_token: str, now: datetime
    ) -> bool:
        self._at("start_ses_call")
        key = (firm_id, envelope_id)
        if (
            self.claims.get(key) != claim_token
            or self.envelopes[key].status is not EnvelopeStatus.SENDING
            or key in self.ses_started
        ):
            return False
        self.ses_started.add(key)
        return True

    def undo_ses_call(self, firm_id: str, envelope_id: str, claim_token: str) -> None:
        self._at("undo_ses_call")
        key = (firm_id, envelope_id)
        if self.claims.get(key) == claim_token:
            self.ses_started.discard(key)

    def mark_sent(
        self,
        envelope: Envelope,
        *,
        claim_token: str,
        message_id: str,
        link_id: str,
        url: str,
        now: datetime,
    ) -> None:
        self._at("mark_sent")
        key = (envelope.firm_id, envelope.id)
        current = self.envelopes[key]
        if self.claims.get(key) != claim_token or current.status not in statuses_before(
            EnvelopeStatus.SENT
        ):
            raise Conflict("the envelope is no longer this send's")  # the transaction fails
        self.envelopes[key] = replace(
            current,
            status=EnvelopeStatus.SENT,
            payment_link_id=link_id,
            payment_url=url,
            sent_at=now,
        )
        if self.bills is not None:
            for bill_id in envelope.bill_ids:
                stored = self.bills.items[(envelope.firm_id, bill_id)]
                self.bills.items[(envelope.firm_id, bill_id)] = replace(
                    stored,
                    payment_link_id=link_id,
                    last_sent_at=now,
                    first_sent_at=stored.first_sent_at or now,
                )
                self.sent_log.append(
                    SentRecord(
                        bill_id=bill_id,
                        envelope_id=envelope.id,
                        purpose=envelope.purpose.value,
                        reminder_number=envelope.reminder_number,
                        to=envelope.to,
                        subject=envelope.subject,
                        sent_at=now,
                        send_note=envelope.send_note,
                    )
                )
        self.messages[message_id] = key

    def mark_failed(self, firm_id: str, envelope_id: str, claim_token: str, error: str) -> bool:
        self._at("mark_failed")
        key = (firm_id, envelope_id)
        current = self.envelopes[key]
        ours = current.status is EnvelopeStatus.SENDING and self.claims.get(key) == claim_token
        unclaimed = current.status in statuses_before(EnvelopeStatus.FAILED) and (
            current.status is not EnvelopeStatus.SENDING
        )
        if key not in self.ses_started and (ours or unclaimed):
            self.envelopes[key] = replace(current, status=EnvelopeStatus.FAILED, error=error[:500])
            return True
        if ours:
            self.envelopes[key] = replace(current, error=f"delivery unconfirmed: {error}"[:500])
        return False

    def envelope_of_message(self, message_id: str) -> tuple[str, str] | None:
        return self.messages.get(message_id)

    def record_delivery_event(
        self,
        firm_id: str,
        envelope_id: str,
        status: EnvelopeStatus,
        allowed_from: tuple[EnvelopeStatus, ...],
    ) -> bool:
        self._at("record_delivery_event")
        key = (firm_id, envelope_id)
        current = self.envelopes.get(key)
        if current is None or current.status not in allowed_from:
            return False
        self.envelopes[key] = replace(current, status=status, error=None)
        return True


@dataclass
class SentEmail:
    to: list[str]
    subject: str
    text: str
    html: str
    reply_to: str | None
    sender_name: str | None
    attachments: list[tuple[str, bytes]]
    tags: dict[str, str]
    message_id: str


class FakeMailer:
    """SES: keeps what it accepted (`sent`). `fail_with` makes every send raise; `refuse_next`
    raises those errors, in order, before anything is accepted (SesThrottled, EmailNotSent);
    `crash_after_accepting` makes that many sends accept the email and then raise `Crash`, as
    a Lambda dying after SES answered."""

    def __init__(self) -> None:
        self.sent: list[SentEmail] = []
        self.fail_with: Exception | None = None
        self.refuse_next: list[Exception] = []
        self.crash_after_accepting = 0
        self.calls = 0

    def send(
        self,
        *,
        to: list[str],
        subject: str,
        text: str,
        html: str,
        reply_to: str | None,
        sender_name: str | None,
        attachments: list[tuple[str, bytes]],
        tags: dict[str, str],
    ) -> str:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        if self.refuse_next:
            raise self.refuse_next.pop(0)
        message_id = f"msg-{len(self.sent) + 1}"
        self.sent.append(
            SentEmail(to, subject, text, html, reply_to, sender_name, attachments, tags, message_id)
        )
        if self.crash_after_accepting:
            self.crash_after_accepting -= 1
            raise Crash("the function died after SES took the email")
        return message_id

    def to(self, address: str) -> list[SentEmail]:
        return [m for m in self.sent if m.to == [address]]


class FakeSendStarter:
    def __init__(self) -> None:
        self.started: list[tuple[str, str, tuple[str, ...]]] = []

    def start(self, firm_id: str, batch_id: str, envelope_ids: Sequence[str]) -> str:
        self.started.append((firm_id, batch_id, tuple(envelope_ids)))
        return f"exec-{len(self.started)}"


class FakeClioFactory:
    """ClioClientFactory over FakeClio accounts: one FakeClio per firm (`clients[firm_id]`),
    and `oauth` for the connect flow."""

    def __init__(self) -> None:
        self.clients: dict[str, FakeClio] = {}
        self.oauth = FakeClio()

    def for_region(self, region: Region) -> FakeClio:
        return self.oauth

    def for_connection(self, connection: ClioConnection) -> FakeClio:
        return self.clients.setdefault(connection.firm_id, FakeClio())

    def web_host(self, connection: ClioConnection) -> str:
        return "https://app.clio.test"


@dataclass
class FakeSecrets:
    state_key: bytes = b"clio-state-key"
    link_key: bytes = b"pay-link-key"
    webhook_secret: str = "whsec_fake"
    connect_webhook_secret: str | None = "whsec_fake_connect"

    def clio_state_key(self) -> bytes:
        return self.state_key

    def pay_link_key(self) -> bytes:
        return self.link_key

    def stripe_webhook_secret(self) -> str:
        return self.webhook_secret

    def stripe_connect_webhook_secret(self) -> str | None:
        return self.connect_webhook_secret


class FakeOnboarding:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, str]] = {}

    def marks(self, firm_id: str) -> dict[str, str]:
        return dict(self.items.get(firm_id, {}))

    def mark(self, firm_id: str, step: str, mark: str, at: datetime) -> None:
        self.items.setdefault(firm_id, {})[step] = mark


class FakeSenderIdentity:
    """SES's identities: address (or domain) -> verification status."""

    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}

    def verification_status(self, address: str) -> str:
        domain = address.rpartition("@")[2]
        return self.statuses.get(address) or self.statuses.get(domain) or "not_found"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


# --- payments --------------------------------------------------------------------------------


class FakeLinks:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], PaymentLink] = {}
        self.sets: dict[tuple[str, tuple[int, ...]], str] = {}
        self.tokens: dict[str, tuple[str, str]] = {}

    def get(self, firm_id: str, link_id: str) -> PaymentLink | None:
        return self.items.get((firm_id, link_id))

    def for_bills(self, firm_id: str, bill_ids: tuple[int, ...]) -> PaymentLink | None:
        link_id = self.sets.get((firm_id, tuple(sorted(bill_ids))))
        return self.items.get((firm_id, link_id)) if link_id else None

    def create(self, link: PaymentLink, token_hash: str) -> PaymentLink:
        existing = self.for_bills(link.firm_id, link.bill_ids)
        if existing is not None:
            return existing
        self.items[(link.firm_id, link.id)] = link
        self.sets[(link.firm_id, tuple(sorted(link.bill_ids)))] = link.id
        self.tokens[token_hash] = (link.firm_id, link.id)
        return link

    def by_token_hash(self, token_hash: str) -> tuple[str, str] | None:
        return self.tokens.get(token_hash)


class FakeReceiptLog:
    """ReceiptLog: `records[(firm, txn, kind)] = (status, detail)`; `claims` counts attempts."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.claims = 0

    def claim(self, firm_id: str, txn_id: str, kind: str, now: datetime) -> bool:
        self.claims += 1
        key = (firm_id, txn_id, kind)
        if key in self.records:
            return False
        self.records[key] = ("sending", "")
        return True

    def finish(self, firm_id: str, txn_id: str, kind: str, outcome: str, detail: str) -> None:
        self.records[(firm_id, txn_id, kind)] = (outcome, detail)

    def release(self, firm_id: str, txn_id: str, kind: str) -> None:
        if self.records.get((firm_id, txn_id, kind), ("",))[0] == "sending":
            del self.records[(firm_id, txn_id, kind)]


class LedgerEntryExists(Exception):
    """The append-only ledger refused a second entry with the same id (a failed condition)."""


class FakePaymentStore:
    """PaymentStore in memory, with DynamoPaymentStore's rules: every change all or nothing;
    the event's dedupe record first (DuplicateEvent), each transaction conditional on the
    version read (StaleTransaction), ledger entries append-only, bill money ADDed on the bills
    of `bills` (and their `money_version`), the session's checkout holds removed; a checkout's
    holds written only if its guards still match the bills (StaleTransaction). `before_apply`
    and `before_hold` (when set) run once at the start of the next write, so a test can force
    an interleaving: another writer going first, between a read and a write."""

    def __init__(self, bills: FakeBills) -> None:
        self.bills = bills
        self.transactions: dict[tuple[str, str, str], Transaction] = {}
        self.ledger: list[LedgerEntry] = []
        self.events: dict[str, str | None] = {}
        self.intents: dict[str, tuple[str, str, str]] = {}
        self.recon: set[tuple[str, int]] = set()
        self.connected: dict[tuple[str, Account], ConnectedAccount] = {}
        # Runs once at the start of the next save_connected_account (a racing writer).
        self.before_save_account: Callable[[ConnectedAccount], None] | None = None
        self.notes: dict[tuple[str, tuple[int, str, int]], RecordedNote] = {}
        self.hold_items: dict[tuple[str, int, str], Hold] = {}
        self.before_apply: Callable[[PaymentChange], None] | None = None
        self.before_hold: Callable[[CheckoutHolds], None] | None = None
        self.applied: list[PaymentChange] = []

    # -- reads --
    def get_transaction(self, firm_id: str, link_id: str, txn_id: str) -> Transaction | None:
        return self.transactions.get((firm_id, link_id, txn_id))

    def transactions_for_link(self, firm_id: str, link_id: str) -> list[Transaction]:
        found = [t for (f, k, _), t in self.transactions.items() if (f, k) == (firm_id, link_id)]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    def payment_for_intent(self, payment_intent_id: str) -> tuple[str, str, str] | None:
        return self.intents.get(payment_intent_id)

    def reconciliation_bill_ids(self, firm_id: str) -> list[int]:
        return sorted(b for f, b in self.recon if f == firm_id)

    def connected_accounts(self, firm_id: str) -> dict[Account, ConnectedAccount]:
        return {k: a for (f, k), a in self.connected.items() if f == firm_id}

    def all_transactions(self, firm_id: str) -> list[Transaction]:
        found = [t for (f, _, _), t in self.transactions.items() if f == firm_id]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    def recorded_notes(self, firm_id: str) -> list[RecordedNote]:
        return [n for (f, _), n in self.notes.items() if f == firm_id]

    def save_recorded_note(self, firm_id: str, note: RecordedNote) -> None:
        self.notes[(firm_id, (note.bill_id, note.action.value, note.amount_cents))] = note

    def payment_accounts(self, firm_id: str) -> PaymentAccounts | None:
        found = self.connected_accounts(firm_id)
        ids = [found[k].stripe_account_id if k in found else None for k in Account]
        trust, operating = ids
        if trust is None or operating is None:
            return None
        return PaymentAccounts(firm_id, trust, operating)

    def holds(self, firm_id: str, bill_ids: list[int], now: datetime) -> list[Hold]:
        wanted = set(bill_ids)
        return [
            h
            for (f, b, _), h in sorted(self.hold_items.items())
            if f == firm_id and b in wanted and h.expires_at > now
        ]

    # -- writes --
    def save_connected_account(self, account: ConnectedAccount) -> ConnectedAccount:
        if self.before_save_account is not None:
            hook, self.before_save_account = self.before_save_account, None
            hook(account)
        key = (account.firm_id, account.account)
        stored = self.connected.get(key)
        if (stored.version if stored else 0) != account.version:
            raise StaleTransaction("the connected account changed since it was read")
        saved = replace(account, version=account.version + 1)
        self.connected[key] = saved
        return saved

    def save_payment_accounts(self, accounts: PaymentAccounts) -> None:
        """Two accounts Stripe already enabled (as the adapter records them)."""
        for kind in Account:
            base = self.connected.get((accounts.firm_id, kind)) or ConnectedAccount(
                firm_id=accounts.firm_id, account=kind
            )
            self.save_connected_account(
                replace(
                    base,
                    stripe_account_id=accounts.for_account(kind),
                    charges_enabled=True,
                    payouts_enabled=True,
                    details_submitted=True,
                    currently_due=(),
                    past_due=(),
                    disabled_reason=None,
                )
            )

    def hold_checkout(self, change: CheckoutHolds, now: datetime) -> None:
        if self.before_hold is not None:
            hook, self.before_hold = self.before_hold, None
            hook(change)
        for guard in change.guards:
            stored = self.bills.items.get((change.firm_id, guard.bill_id))
            if stored is None or (
                stored.money_version,
                stored.bill.state,
                stored.bill.outstanding_clio_cents,
            ) != (guard.money_version, guard.state, guard.outstanding_clio_cents):
                raise StaleTransaction("a bill changed since the checkout read it")
        for guard in change.guards:
            key = (change.firm_id, guard.bill_id)
            stored = self.bills.items[key]
            self.bills.items[key] = replace(stored, money_version=stored.money_version + 1)
        for hold in change.released:
            self.hold_items.pop((change.firm_id, hold.bill_id, hold.session_id), None)
        for hold in change.holds:
            self.hold_items[(change.firm_id, hold.bill_id, hold.session_id)] = hold

    def record_event(self, firm_id: str | None, event_id: str, now: datetime) -> bool:
        if event_id in self.events:
            return False
        self.events[event_id] = firm_id
        return True

    def apply(self, change: PaymentChange, now: datetime | None = None) -> None:
        if self.before_apply is not None:
            hook, self.before_apply = self.before_apply, None  # once: the hook may apply too
            hook(change)
        if change.event_id and change.event_id in self.events:
            raise DuplicateEvent(change.event_id)
        for write in change.txns:
            current = self.transactions.get(_txn_key(write.txn))
            expected = None if current is None else current.version
            if expected != write.expected_version:
                raise StaleTransaction("a transaction changed since it was read")
        ids = {e.id for e in self.ledger}
        if any(entry.id in ids for entry in change.ledger):
            raise LedgerEntryExists(next(e.id for e in change.ledger if e.id in ids))
        # Every condition held: write it all.
        if change.event_id:
            self.events[change.event_id] = change.firm_id
        for write in change.txns:
            self.transactions[_txn_key(write.txn)] = write.txn
        self.ledger.extend(change.ledger)
        for delta in change.bills:
            self._apply_bill(change.firm_id, delta)
        for bill_id, session_id in change.released_holds:
            self.hold_items.pop((change.firm_id, bill_id, session_id), None)
        if change.payment_intent_id and change.txns:
            txn = change.txns[0].txn
            self.intents[change.payment_intent_id] = (change.firm_id, txn.link_id, txn.id)
        self.applied.append(change)

    def _apply_bill(self, firm_id: str, delta: BillDelta) -> None:
        key = (firm_id, delta.bill_id)
        stored = self.bills.items[key]
        baseline = stored.baseline_outstanding_cents
        if delta.set_baseline:
            self.recon.add(key)
            if baseline is None:
                baseline = stored.bill.outstanding_clio_cents
        added = {name: getattr(stored, name) + getattr(delta, name) for name in BILL_MONEY}
        self.bills.items[key] = replace(
            stored,
            baseline_outstanding_cents=baseline,
            money_version=stored.money_version + 1,
            **added,
        )


def _txn_key(txn: Transaction) -> tuple[str, str, str]:
    return (txn.firm_id, txn.link_id, txn.id)


class FakeStripe(FakeSavedMethods):
    """The PaymentGateway with Stripe's behaviour the services rely on: Checkout Sessions
    (idempotency keys, expiring, paying), refunds (idempotency keys, a chosen status or error),
    and the webhook events each of those sends, in Stripe's shapes. Events are returned, not
    delivered: a test hands them to StripeEvents in the order it wants."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: T0)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.refund_status = "succeeded"
        self.refund_error: Exception | None = None
        self.expired: list[str] = []
        self.accounts: dict[str, dict[str, Any]] = {}  # connected accounts, Stripe's shape
        self.account_links: list[tuple[str, str, str]] = []
        self.account_reads = 0
        self.before_create_session: Callable[[CheckoutRequest], None] | None = None
        self._ids = itertools.count(1)
        self._init_saved()

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self._id("evt_"),
            "object": "event",
            "type": type_,
            "data": {"object": copy.deepcopy(obj)},
        }

    # -- the port --
    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        if self.before_create_session is not None:
            self.before_create_session(request)
        if request.idempotency_key in self.keys:
            session = self.sessions[self.keys[request.idempotency_key]]
        else:
            session = {
                "id": self._id("cs_test_"),
                "object": "checkout.session",
                "amount_total": sum(cents for _, cents in request.line_items),
                "currency": request.currency.lower(),
                "metadata": checkout_metadata(request),
                "payment_intent": None,
                "payment_status": "unpaid",
                "status": "open",
                "url": None,
                "method": request.method.value,
                "destination": request.destination_account_id,
                "expires_at": int(request.expires_at.timestamp()),
                # What the gateway sends Stripe (the real builder, so tests see the wire).
                "payment_intent_data": checkout_intent_data(request, checkout_metadata(request)),
                "customer": request.customer_id,
                "customer_email": None if request.customer_id else request.customer_email,
            }
            session["url"] = f"https://checkout.stripe.test/{session['id']}"
            self.sessions[session["id"]] = session
            self.keys[request.idempotency_key] = session["id"]
        return CheckoutSession(session["id"], session["url"], session["amount_total"])

    def expire_checkout_session(self, session_id: str) -> bool:
        session = self.sessions[session_id]
        if session["status"] == "complete":
            return False
        if session["status"] == "open":
            session.update(status="expired", url=None)
            self.expired.append(session_id)
        return True

    def checkout_session(self, session_id: str) -> CheckoutSessionState | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        return CheckoutSessionState(
            id=session["id"],
            status=session["status"],
            payment_status=session["payment_status"],
            amount_cents=session["amount_total"],
            currency=session["currency"].upper(),
            created_at=self.clock(),
            metadata=dict(session["metadata"]),
        )

    def create_refund(
        self,
        payment_intent_id: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> RefundResult:
        if self.refund_error is not None:
            raise self.refund_error
        if idempotency_key in self.keys:
            refund = self.refunds[self.keys[idempotency_key]]
        else:
            refund = {
                "id": self._id("re_"),
                "object": "refund",
                "amount": amount_cents,
                "metadata": dict(metadata),
                "payment_intent": payment_intent_id,
                "status": self.refund_status,
                "failure_reason": None,
            }
            self.refunds[refund["id"]] = refund
            self.keys[idempotency_key] = refund["id"]
        return RefundResult(stripe_refund_id=refund["id"], status=refund["status"])

    # -- Connect --
    def create_connected_account(self, request: ConnectedAccountRequest) -> StripeAccountState:
        if request.idempotency_key in self.keys:
            return parse_stripe_account(self.accounts[self.keys[request.idempotency_key]])
        params = account_params(request)
        account: dict[str, Any] = {
            "id": self._id("acct_"),
            "object": "account",
            "type": params["type"],
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "metadata": dict(params["metadata"]),
            "requirements": {
                "currently_due": ["external_account", "tos_acceptance.date"],
                "past_due": ["external_account", "tos_acceptance.date"],
                "disabled_reason": "requirements.past_due",
            },
        }
        self.accounts[account["id"]] = account
        self.keys[request.idempotency_key] = account["id"]
        return parse_stripe_account(account)

    def create_account_link(self, stripe_account_id: str, refresh_url: str, return_url: str) -> str:
        assert stripe_account_id in self.accounts
        self.account_links.append((stripe_account_id, refresh_url, return_url))
        return f"https://connect.stripe.test/setup/s/{stripe_account_id}/{len(self.account_links)}"

    def retrieve_account(self, stripe_account_id: str) -> StripeAccountState:
        self.account_reads += 1
        return parse_stripe_account(self.accounts[stripe_account_id])

    def onboard(
        self, stripe_account_id: str, *, due: tuple[str, ...] = (), past_due: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The person submits onboarding (all of it, or all but `due`): Stripe's state moves
        and the `account.updated` event it sends is answered (created = the clock's now)."""
        account = self.accounts[stripe_account_id]
        enabled = not past_due and not due
        account.update(charges_enabled=enabled, payouts_enabled=enabled, details_submitted=True)
        account["requirements"] = {
            "currently_due": list(due) + list(past_due),
            "past_due": list(past_due),
            "disabled_reason": "requirements.past_due" if past_due else None,
        }
        event = self._event("account.updated", account)
        event["account"] = stripe_account_id
        event["created"] = int(self.clock().timestamp())
        return event

    # -- what a client or a bank does, and the events Stripe sends for it --
    def pay(self, session_id: str, test: str = "4242") -> list[dict[str, Any]]:
        """The client pays the session: card paid at once, ACH pending. A session made to
        save the method keeps it on the Customer (`test`: the test card's last four)."""
        session = self.sessions[session_id]
        assert session["status"] == "open", f"session {session_id} is {session['status']}"
        session["payment_intent"] = f"pi_{session_id}"
        session["status"] = "complete"
        if session["method"] == "card":
            session["payment_status"] = "paid"
        future = session["payment_intent_data"].get("setup_future_usage")
        if future and session.get("customer"):
            method = Method.CARD if session["method"] == "card" else Method.ACH
            self.saved_by_checkout(session["payment_intent"], session["customer"], method, test)
        return [self._event("checkout.session.completed", session)]

    def settle(self, session_id: str) -> list[dict[str, Any]]:
        session = self.sessions[session_id]
        session["payment_status"] = "paid"
        return [self._event("checkout.session.async_payment_succeeded", session)]

    def fail(self, session_id: str) -> list[dict[str, Any]]:
        return [self._event("checkout.session.async_payment_failed", self.sessions[session_id])]

    def expire_event(self, session_id: str) -> list[dict[str, Any]]:
        return [self._event("checkout.session.expired", self.sessions[session_id])]

    def refund_event(self, refund_id: str, type_: str, status: str) -> dict[str, Any]:
        refund = self.refunds[refund_id]
        refund["status"] = status
        if status == "failed":
            refund["failure_reason"] = "unknown"
        return self._event(type_, refund)

    def charge_refunded_event(self, refund_id: str) -> dict[str, Any]:
        """`charge.refunded`: the charge (not the refund) with its refunded total, in Stripe's
        shape: it names no refund of ours, so the refund events drive our records."""
        refund = self.refunds[refund_id]
        intent = str(refund["payment_intent"])
        charge = {
            "id": f"ch_{intent}",
            "object": "charge",
            "payment_intent": intent,
            "amount_refunded": sum(
                r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent
            ),
            "refunded": False,
            "metadata": {},
        }
        return self._event("charge.refunded", charge)

    def dispute_event(
        self,
        payment_intent_id: str,
        type_: str,
        status: str,
        amount_cents: int,
        balance: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        """A `charge.dispute.*` event; `balance` holds the amounts of the dispute's balance
        transactions (negative: funds withdrawn, positive: reinstated)."""
        dispute = {
            "id": f"dp_{payment_intent_id}",
            "object": "dispute",
            "amount": amount_cents,
            "currency": "usd",
            "payment_intent": payment_intent_id,
            "status": status,
            "balance_transactions": [
                {"id": f"txn_{i}", "object": "balance_transaction", "amount": a}
                for i, a in enumerate(balance)
            ],
        }
        return self._event(type_, dispute)


FAKE_CONFIG = {
    "TABLE_NAME": "fake-table",
    "TOKEN_KMS_KEY_ID": "fake-key",
    "CLIO_APP_SECRET_ARN": "arn:fake:clio",
    "CLIO_REDIRECT_URI": "https://api.test/clio/callback",
    "PUBLIC_API_BASE_URL": "https://api.test",
    "WEB_BASE_URL": "https://app.test/",
    "SYNC_FUNCTION_NAME": "sync-worker",
    "SEND_STATE_MACHINE_ARN": "arn:fake:sfn",
    "PAY_LINK_SECRET_ARN": "arn:fake:pay",
    "PUBLIC_PAY_BASE_URL": "https://pay.test",
    "STRIPE_SECRET_ARN": "arn:fake:stripe",
    "SENDER_ADDRESS": "billing@firm.test",
    "BILL_PDF_BUCKET": "fake-bill-pdfs",
}


@functools.cache
def fake_config(kind: type[Any]) -> Any:
    """A function's config with FAKE_CONFIG's values (parsed once per kind)."""
    return kind(**FAKE_CONFIG)


class FakeReminders:
    """ReminderStore with DynamoReminderStore's claim condition: the bill exists, is awaiting
    payment, is not paused, and its claimed slot is below the one claimed; the draft envelope
    and its batch written with the claim, or nothing."""

    def __init__(self, bills: FakeBills, envelopes: FakeSending) -> None:
        self.bills = bills
        self.envelopes = envelopes
        self.claims: list[tuple[str, int, int]] = []  # (firm, bill, slot) of every claim won
        self.before_claim: Callable[[], Any] | None = None  # another tick, interleaved

    def claim(
        self,
        firm_id: str,
        bill_id: int,
        slot: int,
        anchor: datetime,
        batch: Batch,
        envelope: Envelope,
    ) -> bool:
        interleaved, self.before_claim = self.before_claim, None
        if interleaved is not None:
            interleaved()
        stored = self.bills.items.get((firm_id, bill_id))
        if (
            stored is None
            or stored.bill.state is not BillState.AWAITING_PAYMENT
            or stored.reminders_paused
            or stored.reminder_slot >= slot
        ):
            return False
        self.bills.items[(firm_id, bill_id)] = replace(
            stored,
            reminder_slot=slot,
            first_sent_at=stored.first_sent_at or anchor,
            pending_reminder=(batch.id, envelope.id, envelope.created_at),
        )
        self.envelopes.create_batch(batch, [envelope])
        self.claims.append((firm_id, bill_id, slot))
        return True

    def clear_pending(self, firm_id: str, bill_id: int, envelope_id: str) -> None:
        stored = self.bills.items.get((firm_id, bill_id))
        if (
            stored is not None
            and stored.pending_reminder
            and (stored.pending_reminder[1] == envelope_id)
        ):
            self.bills.items[(firm_id, bill_id)] = replace(stored, pending_reminder=None)

    def set_paused(self, firm_id: str, bill_id: int, paused: bool) -> bool:
        stored = self.bills.items.get((firm_id, bill_id))
        if stored is None:
            return False
        self.bills.items[(firm_id, bill_id)] = replace(stored, reminders_paused=paused)
        return True

    def history(self, firm_id: str, bill_id: int) -> list[SentRecord]:
        return [
            r
            for r in self.envelopes.sent_log
            if r.bill_id == bill_id and self.envelopes.envelopes.get((firm_id, r.envelope_id))
        ]


class FakeWorld:
    """Every port's fake, sharing state as the real store does (the payment store and the
    sending repository write on the same bills), and the whole app built on them through the
    composition root: `world.api()`, `world.pay_page()`, `world.stripe_webhook()`, ..."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.bills = FakeBills()
        self.syncs = FakeSyncs()
        self.settings = FakeSettings()
        self.headers = FakeHeaders(self.settings, self.syncs)
        self.pdfs = FakePdfStore()
        self.connections = FakeConnections()
        self.connect_states = FakeConnectStates()
        self.envelopes = FakeSending(self.bills)
        self.links = FakeLinks()
        self.payments = FakePaymentStore(self.bills)
        self.stripe = FakeStripe(self.clock)
        self.mailer = FakeMailer()
        self.receipts = FakeReceiptLog()
        self.send_starter = FakeSendStarter()
        self.launcher = FakeLauncher()
        self.clio = FakeClioFactory()
        self.secrets = FakeSecrets()
        self.reminders = FakeReminders(self.bills, self.envelopes)
        self.plans = FakePlanStore()
        self.onboarding = FakeOnboarding()
        from tests.fakes_accounts import FakeAuditLog  # it imports this module

        self.audit_log = FakeAuditLog()
        self.sender_identity = FakeSenderIdentity()
        # A test's own state that snapshot() and restore() carry along.
        self.scratch: dict[str, Any] = {}

    def snapshot(self) -> dict[str, Any]:
        """The money state (bills, payment store, Stripe's objects, the clock, `scratch`), to
        `restore` later: replaying many orderings of events from one starting point. Cheap:
        the stored values are frozen dataclasses, only Stripe's objects are copied."""
        store, stripe = self.payments, self.stripe
        return {
            "bills": dict(self.bills.items),
            "transactions": dict(store.transactions),
            "ledger": list(store.ledger),
            "events": dict(store.events),
            "intents": dict(store.intents),
            "recon": set(store.recon),
            "holds": dict(store.hold_items),
            "applied": list(store.applied),
            "hooks": (store.before_apply, store.before_hold),
            "sessions": {k: dict(v) for k, v in stripe.sessions.items()},
            "refunds": {k: dict(v) for k, v in stripe.refunds.items()},
            "keys": dict(stripe.keys),
            "expired": list(stripe.expired),
            "now": self.clock.now,
            "scratch": copy.deepcopy(self.scratch),
            # Plans and Stripe's off-session PaymentIntents (frozen plans; dicts copied).
            "plans": dict(self.plans.plans),
            "off_session": (
                {k: dict(v) for k, v in stripe.intents.items()},
                dict(stripe.charge_answers),
                list(stripe.charges),
                dict(stripe.charge_requests),
            ),
            # Payments on saved methods as first sent to Stripe (frozen).
            "attempts": dict(self.plans.attempts),
        }

    def restore(self, saved: dict[str, Any]) -> None:
        store, stripe = self.payments, self.stripe
        self.bills.items = dict(saved["bills"])
        store.transactions = dict(saved["transactions"])
        store.ledger = list(saved["ledger"])
        store.events = dict(saved["events"])
        store.intents = dict(saved["intents"])
        store.recon = set(saved["recon"])
        store.hold_items = dict(saved["holds"])
        store.applied = list(saved["applied"])
        store.before_apply, store.before_hold = saved["hooks"]
        stripe.sessions = {k: dict(v) for k, v in saved["sessions"].items()}
        stripe.refunds = {k: dict(v) for k, v in saved["refunds"].items()}
        stripe.keys = dict(saved["keys"])
        stripe.expired = list(saved["expired"])
        self.clock.now = saved["now"]
        self.plans.plans = dict(saved["plans"])
        intents, answers, charges, requests = saved["off_session"]
        stripe.intents = {k: dict(v) for k, v in intents.items()}
        stripe.charge_answers, stripe.charges = dict(answers), list(charges)
        stripe.charge_requests = dict(requests)
        self.plans.attempts = dict(saved["attempts"])
        self.scratch.clear()  # in place: tests hold on to it
        self.scratch.update(copy.deepcopy(saved["scratch"]))

    def adapters(self) -> Any:
        from billbridge.bootstrap import Adapters

        return Adapters(
            bills=self.bills,
            syncs=self.syncs,
            settings=self.settings,
            headers=self.headers,
            connections=self.connections,
            connect_states=self.connect_states,
            envelopes=self.envelopes,
            links=self.links,
            payments=self.payments,
            stripe=self.stripe,
            mailer=self.mailer,
            receipts=self.receipts,
            send_starter=self.send_starter,
            sync_launcher=self.launcher,
            clio=self.clio,
            secrets=self.secrets,
            pdfs=self.pdfs,
            clock=self.clock,
            reminders=self.reminders,
            plans=self.plans,
            onboarding=self.onboarding,
            sender_identity=self.sender_identity,
            audit=self.audit_log,
        )

    def api(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import PaymentsApiConfig

        return bootstrap.build_api(fake_config(PaymentsApiConfig), self.adapters())

    def pay_page(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import PayConfig

        return bootstrap.build_pay_page(fake_config(PayConfig), self.adapters())

    def stripe_webhook(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import StripeWebhookConfig

        return bootstrap.build_stripe_webhook(fake_config(StripeWebhookConfig), self.adapters())

    def send_steps(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import SendConfig

        return bootstrap.build_send_steps(fake_config(SendConfig), self.adapters())

    def delivery_events(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import SesEventsConfig

        return bootstrap.build_delivery_events(fake_config(SesEventsConfig), self.adapters())

    def sync_worker(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import SyncWorkerConfig

        return bootstrap.build_sync_worker(fake_config(SyncWorkerConfig), self.adapters())

    def reminder_service(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import RemindersConfig

        return bootstrap.build_reminders(fake_config(RemindersConfig), self.adapters())

    def payment_plans(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import PaymentsApiConfig

        return bootstrap.build_payment_plans(fake_config(PaymentsApiConfig), self.adapters())

    def clio_webhook(self) -> Any:
        from billbridge import bootstrap
        from billbridge.config import ClioWebhookConfig

        return bootstrap.build_clio_webhook(fake_config(ClioWebhookConfig), self.adapters())


def stored_bill(
    bill_id: int,
    *,
    total: int = 10_000,
    outstanding: int | None = None,
    kind: str = "invoice",
    state: str = "awaiting_payment",
    due: str | None = None,
    client_id: int = 7,
    email: str | None = "client@example.com",
    currency: str = "USD",
) -> StoredBill:
    """A synced bill as the store holds it, before any money of ours touched it."""
    from datetime import date

    from billbridge.domain.bills import BillKind, Client

    bill = Bill(
        id=bill_id,
        etag=f'"{bill_id}"',
        number=f"INV-{bill_id:05d}",
        state=BillState(state),
        kind=BillKind(kind),
        client=Client(id=client_id, name="Acme Ltd", email=email),
        matter=None,
        total_cents=total,
        outstanding_clio_cents=total if outstanding is None else outstanding,
        currency=currency,
        issued_at=date(2026, 10, 1),
        due_at=date.fromisoformat(due) if due else date(2026, 10, 1) + timedelta(days=bill_id % 28),
        clio_updated_at=T0,
        clio_url=f"https://app.clio.test/nc/#/bills/{bill_id}",
    )
    return StoredBill(bill=bill, synced_at=T0)


# The trust and operating connected accounts a fake firm's payments go to.
FIRM_ACCOUNTS = ("acct_trust", "acct_operating")


# --- connecting Clio ------------------------------------------------------------------------


class FakeConnectStates:
    """ConnectStateRepository: record, then consume once before it expires."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def record(self, intent: Any, user: Any) -> None:
        assert intent.state_id not in self.items
        self.items[intent.state_id] = {"intent": intent, "user": user, "consumed": False}

    def consume(self, intent: Any, now: datetime) -> Any:
        item = self.items.get(intent.state_id)
        if item is None or item["consumed"] or item["intent"].expires_at <= now:
            return None
        item["consumed"] = True
        return item["user"]
