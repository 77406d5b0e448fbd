"""Ports: what the services need from the outside world. Adapters implement them; unit tests
use the in-memory fakes in tests/fakes.py."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

# The domain types are only annotations here (postponed, PEP 563): importing them when the
# ports are imported would load most of the domain into every handler's cold start.
if TYPE_CHECKING:
    from billbridge.domain.access import Role
    from billbridge.domain.accounts import AuditEntry, Member, MemberStatus
    from billbridge.domain.bills import Bill, BillState, StoredBill
    from billbridge.domain.connection import ClioConnection, Region
    from billbridge.domain.envelopes import Batch, Envelope, EnvelopeStatus
    from billbridge.domain.ledger import CheckoutHolds, PaymentChange
    from billbridge.domain.listing import Position, Sort
    from billbridge.domain.oauth_state import ConnectingUser, ConnectIntent
    from billbridge.domain.payment_accounts import ConnectedAccount, StripeAccountState
    from billbridge.domain.payment_links import PaymentLink
    from billbridge.domain.payments import Account, Allocation, Hold, Method, Transaction
    from billbridge.domain.plans import Plan, SavedMethod
    from billbridge.domain.reconciliation import RecordedNote
    from billbridge.domain.saved_methods import StoredMethod
    from billbridge.domain.settings import FirmSettings
    from billbridge.domain.sync import SyncCheckpoint, SyncRun


@dataclass(frozen=True)
class BillsPage:
    items: list[StoredBill]
    # The last bill id of this page when more bills follow, else None.
    last_bill_id: int | None


@dataclass(frozen=True)
class SortedPage:
    items: list[StoredBill]
    # Where this page ends when more bills follow, else None (the next page's cursor).
    last: Position | None


@dataclass(frozen=True)
class WantedPdf:
    """A sendable bill whose PDF is not known to be cached for its current Clio version."""

    bill_id: int
    etag: str
    # The version whose PDF is cached, when there is one (an older one, or this one again when
    # a webhook replayed a version already cached).
    cached_etag: str | None


class BillRepository(Protocol):
    def get(self, firm_id: str, bill_id: int) -> StoredBill | None: ...

    def get_many(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, StoredBill]:
        """Those of the bills that exist, by id (batched reads)."""
        ...

    def etags(self, firm_id: str, bill_ids: Sequence[int]) -> dict[int, str]:
        """Stored etags of those bills that exist (batched reads)."""
        ...

    def save_clio_bills(
        self,
        firm_id: str,
        bills: Sequence[Bill],
        synced_at: datetime,
        existing_ids: Collection[int] | None = None,
    ) -> int:
        """Write the Clio-owned attributes of these bills, never touching the fields this
        product owns, and never replacing a bill with an older Clio version (by
        `clio_updated_at`). Bills not in `existing_ids` (when given) are new to the store and
        go in batches. Returns how many were written."""
        ...

    def mark_deleted(self, firm_id: str, bill_id: int, at: datetime) -> bool: ...

    def page(
        self,
        firm_id: str,
        states: Sequence[BillState],
        page_size: int,
        before_bill_id: int | None,
    ) -> BillsPage:
        """Bills in any of `states`, newest Clio id first, strictly below `before_bill_id`."""
        ...

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
        """Bills in any of `states` (deleted ones left out), matching `query` (domain/listing:
        a field starts with it) and overdue on `overdue_on` when given, in `sort`'s order (a
        search without one: newest id first; no search and no sort: due date), after `cursor`."""
        ...

    def pdf_wanted(self, firm_id: str, limit: int) -> list[WantedPdf]:
        """Up to `limit` sendable bills whose PDF is not known to be cached, newest id first."""
        ...

    def mark_pdf_cached(self, firm_id: str, bill_id: int, etag: str) -> bool:
        """Record that the PDF of version `etag` is cached, only while the bill is still at
        that version (a newer one stays wanted). Answers whether it was recorded."""
        ...


class PdfStore(Protocol):
    """Rendered bill PDFs, one per bill version (a new Clio etag is a new object)."""

    def get(self, firm_id: str, bill_id: int, etag: str) -> bytes | None: ...

    def put(self, firm_id: str, bill_id: int, etag: str, pdf: bytes) -> None: ...


class EnvelopeRepository(Protocol):
    def create_batch(self, batch: Batch, envelopes: Sequence[Envelope]) -> None:
        """The batch and its envelopes, all or nothing."""
        ...

    def get(self, firm_id: str, envelope_id: str) -> Envelope | None: ...

    def get_batch(self, firm_id: str, batch_id: str) -> tuple[Batch, list[Envelope]] | None: ...

    def edit_draft(self, firm_id: str, envelope_id: str, subject: str, body: str) -> Envelope:
        """Change the text of an editable envelope (draft or failed); NotFound or RuleViolation
        when it is not an editable envelope of the firm."""
        ...

    def rewrite(self, envelope: Envelope, claim_token: str | None = None) -> bool:
        """Store an unedited envelope's re-rendered text, bills and amounts: while it is
        editable (no claim token), or while the run holding `claim_token` has not called SES.
        False when that does not hold."""
        ...

    def requeue(self, firm_id: str, envelope_id: str) -> bool:
        """A failed envelope back to draft (error cleared), to be sent again; False when it was
        not failed."""
        ...


class SendingRepository(EnvelopeRepository, Protocol):
    def claim(self, firm_id: str, envelope_id: str, claim_token: str, now: datetime) -> bool: ...

    def start_ses_call(
        self, firm_id: str, envelope_id: str, claim_token: str, now: datetime
    ) -> bool: ...

    def undo_ses_call(self, firm_id: str, envelope_id: str, claim_token: str) -> None: ...

    def mark_sent(
        self,
        envelope: Envelope,
        *,
        claim_token: str,
        message_id: str,
        link_id: str,
        url: str,
        now: datetime,
    ) -> None: ...

    def mark_failed(self, firm_id: str, envelope_id: str, claim_token: str, error: str) -> bool:
        """Failed for the run holding the claim, unless SES may have the email (then noted)."""
        ...

    def envelope_of_message(self, message_id: str) -> tuple[str, str] | None: ...

    def record_delivery_event(
        self,
        firm_id: str,
        envelope_id: str,
        status: EnvelopeStatus,
        allowed_from: tuple[EnvelopeStatus, ...],
    ) -> bool: ...


class PaymentLinkRepository(Protocol):
    def get(self, firm_id: str, link_id: str) -> PaymentLink | None: ...

    def for_bills(self, firm_id: str, bill_ids: tuple[int, ...]) -> PaymentLink | None: ...

    def create(self, link: PaymentLink, token_hash: str) -> PaymentLink: ...

    def by_token_hash(self, token_hash: str) -> tuple[str, str] | None:
        """(firm_id, link_id) of the link whose token hashes to this."""
        ...


class Mailer(Protocol):
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
        """Send one email; answer SES's message id. Raises SesThrottled / TransientSendError."""
        ...


class SendStarter(Protocol):
    def start(self, firm_id: str, batch_id: str, envelope_ids: Sequence[str]) -> str:
        """Start the send workflow for these envelopes; answer the execution's id."""
        ...


class SyncRepository(Protocol):
    def checkpoint(self, firm_id: str) -> SyncCheckpoint: ...

    def start_run(self, run: SyncRun, now: datetime) -> tuple[SyncRun, bool]:
        """Take the firm's sync lock and record `run`, atomically. When another live run holds
        the lock, nothing is written and that run is returned with False."""
        ...

    def save_progress(self, checkpoint: SyncCheckpoint, run: SyncRun, now: datetime) -> None:
        """Store the checkpoint and the run's counts together, extending the lock; only while
        `run` still holds the lock."""
        ...

    def finish_run(self, checkpoint: SyncCheckpoint, run: SyncRun) -> None:
        """Store the final checkpoint and run, and release the lock."""
        ...

    def get_run(self, firm_id: str, run_id: str) -> SyncRun | None: ...


class ConnectionRepository(Protocol):
    def get(self, firm_id: str) -> ClioConnection | None: ...

    def save(self, connection: ClioConnection) -> None: ...

    def connected_firm_ids(self) -> list[str]: ...


class ConnectStateRepository(Protocol):
    """The single-use ids of Clio connects in progress (C1)."""

    def record(self, intent: ConnectIntent, user: ConnectingUser) -> None:
        """Note the connect's state id, who started it, and when it expires."""
        ...

    def consume(self, intent: ConnectIntent, now: datetime) -> ConnectingUser | None:
        """Use the state id up, atomically: the user who started it the first time; None when
        it was used before, never recorded, or expired."""
        ...


class SettingsRepository(Protocol):
    def get(self, firm_id: str) -> FirmSettings: ...

    def put(self, firm_id: str, settings: FirmSettings) -> None: ...


@dataclass(frozen=True)
class FirmHeader:
    """What a list view needs of a firm besides its bills: settings and sync state, one read."""

    settings: FirmSettings
    checkpoint: SyncCheckpoint


class FirmHeaders(Protocol):
    def read(self, firm_id: str) -> FirmHeader: ...

    def read_with_member(self, firm_id: str, user_id: str) -> tuple[FirmHeader, Member | None]:
        """The header and the caller's member record (None: not a member) in one consistent
        request: the access check of a route that needs the header reads both at once."""
        ...


class SyncLauncher(Protocol):
    def launch(self, firm_id: str, run_id: str) -> None:
        """Hand the run to the sync worker, asynchronously."""
        ...


class ClioGateway(Protocol):
    """The slice of adapters.clio.ClioClient the services use."""

    requests_made: int

    @property
    def rate_limit(self) -> int | None:
        """Clio's requests per window, from its last answer (None before any)."""
        ...

    @property
    def rate_remaining(self) -> int | None:
        """Requests left in the current window, from Clio's last answer (None: unknown)."""
        ...

    def authorize_url(self, state: str) -> str: ...

    def exchange_code(self, code: str) -> Any:
        """Tokens with `access_token`, `refresh_token` and `expires_at`."""
        ...

    def ensure_fresh(self, min_valid_seconds: float = ...) -> None: ...

    def limit_waits(self, seconds_left: Callable[[], float] | None) -> None:
        """Wait for Clio (rate limits, retries) only as long as `seconds_left()` allows."""
        ...

    def who_am_i(self) -> dict[str, Any]: ...

    def iter_bill_pages(
        self,
        *,
        updated_since: datetime | None = None,
        state: str | None = None,
        start_url: str | None = None,
    ) -> Iterator[Any]: ...

    def get_bill(self, bill_id: int) -> dict[str, Any] | None: ...

    def bill_pdf(self, bill_id: int, *, wait_for_budget: bool = ...) -> bytes:
        """The bill rendered to PDF; without `wait_for_budget`, a spent rate window raises."""
        ...

    def create_bill_webhook(
        self, url: str, *, events: Sequence[str] = ..., expires_at: datetime
    ) -> dict[str, Any]: ...

    def activate_webhook(self, webhook_id: int, shared_secret: str) -> None: ...

    def renew_webhook(self, webhook_id: int, expires_at: datetime) -> dict[str, Any]: ...


class ClioClientFactory(Protocol):
    """Makes Clio clients: for a region (OAuth, before a firm is connected) or for a firm's
    connection (refreshed tokens are saved back)."""

    def for_region(self, region: Region) -> ClioGateway: ...

    def for_connection(self, connection: ClioConnection) -> ClioGateway: ...

    def web_host(self, connection: ClioConnection) -> str:
        """Clio's web address for the connection's region (bill links in the UI)."""
        ...


class AppSecrets(Protocol):
    """The secrets the services need (Secrets Manager in production), read on first use."""

    def clio_state_key(self) -> bytes: ...

    def pay_link_key(self) -> bytes: ...

    def stripe_webhook_secret(self) -> str: ...

    def stripe_connect_webhook_secret(self) -> str | None:
        """The Connect endpoint's signing secret (`account.updated`), when one is set."""
        ...


class OnboardingRepository(Protocol):
    """What a person marked on the onboarding checklist, per step (domain/onboarding.py)."""

    def marks(self, firm_id: str) -> dict[str, str]: ...

    def mark(self, firm_id: str, step: str, mark: str, at: datetime) -> None:
        """Record one step's mark; other steps' marks are kept (one attribute per step)."""
        ...


class SenderIdentity(Protocol):
    def verification_status(self, address: str) -> str:
        """SES's verification status of the identity mail is sent from (the address, else
        its domain): `verified`, `pending`, `failed` or `not_found`."""
        ...


# --- payments ----------------------------------------------------------------------------------


class DuplicateEvent(Exception):
    """The Stripe event was applied before: nothing was written the second time."""


class StaleTransaction(Exception):
    """A transaction changed between our read and our write; read again and re-plan."""


@dataclass(frozen=True)
class PaymentAccounts:
    """A firm's two Stripe connected accounts, one per bank account (docs/payments.md)."""

    firm_id: str
    trust_account_id: str
    operating_account_id: str

    def for_account(self, account: Account) -> str:
        from billbridge.domain.payments import Account

        return self.trust_account_id if account is Account.TRUST else self.operating_account_id


class PaymentStore(Protocol):
    def connected_accounts(self, firm_id: str) -> dict[Account, ConnectedAccount]:
        """The firm's trust and operating connected accounts that onboarding has begun."""
        ...

    def save_connected_account(self, account: ConnectedAccount) -> ConnectedAccount:
        """Write the account if the stored one still has `account.version` (0: none is
        stored); StaleTransaction otherwise. Answers it as stored (the version bumped)."""
        ...

    def get_transaction(self, firm_id: str, link_id: str, txn_id: str) -> Transaction | None: ...

    def transactions_for_link(self, firm_id: str, link_id: str) -> list[Transaction]: ...

    def payment_for_intent(self, payment_intent_id: str) -> tuple[str, str, str] | None: ...

    def reconciliation_bill_ids(self, firm_id: str) -> list[int]: ...

    def all_transactions(self, firm_id: str) -> list[Transaction]:
        """Every payment and refund of the firm, oldest first."""
        ...

    def recorded_notes(self, firm_id: str) -> list[RecordedNote]: ...

    def save_recorded_note(self, firm_id: str, note: RecordedNote) -> None: ...

    def payment_accounts(self, firm_id: str) -> PaymentAccounts | None: ...

    def record_event(self, firm_id: str | None, event_id: str, now: datetime) -> bool: ...

    def holds(self, firm_id: str, bill_ids: list[int], now: datetime) -> list[Hold]:
        """The checkout holds still alive on these bills, whatever link made them."""
        ...

    def hold_checkout(self, change: CheckoutHolds, now: datetime) -> None:
        """The checkout's holds and releases, only if its guards still hold (StaleTransaction
        otherwise)."""
        ...

    def apply(self, change: PaymentChange, now: datetime | None = None) -> None:
        """All of the change or none of it; DuplicateEvent / StaleTransaction as above."""
        ...


class ReceiptLog(Protocol):
    """One record per (transaction, receipt kind): the conditional write that makes a receipt
    go out at most once, whatever duplicate or late webhooks ask for it again."""

    def claim(self, firm_id: str, txn_id: str, kind: str, now: datetime) -> bool:
        """Record that this receipt is being sent; False when it was claimed before."""
        ...

    def finish(self, firm_id: str, txn_id: str, kind: str, outcome: str, detail: str) -> None:
        """Note how the send ended: `sent` (detail: SES's message id), `not_sent` (SES refused
        it, or the address cannot take mail: detail says why) or `uncertain` (SES did not
        answer; it may have sent it, so it is not sent again)."""
        ...

    def release(self, firm_id: str, txn_id: str, kind: str) -> None:
        """Forget a claim whose email SES certainly did not take (throttled), so the next
        delivery of the event sends it."""
        ...


@dataclass(frozen=True)
class CheckoutSessionState:
    """A Checkout Session as Stripe holds it, for the confirmation screen when the client is
    back before Stripe's webhook."""

    id: str
    status: str  # open / complete / expired
    payment_status: str  # paid / unpaid / no_payment_required
    amount_cents: int
    currency: str
    created_at: datetime
    metadata: dict[str, str]


@dataclass(frozen=True)
class CheckoutRequest:
    firm_id: str
    link_id: str
    account: Account
    destination_account_id: str
    method: Method
    currency: str
    allocations: tuple[Allocation, ...]
    line_items: tuple[tuple[str, int], ...]  # (name, cents) per bill
    success_url: str
    cancel_url: str
    customer_email: str | None
    idempotency_key: str
    expires_at: datetime  # Stripe allows 30 minutes to 24 hours from now
    # What the platform keeps of the charge to cover processing (domain/fees.py): operating
    # charges only; a trust charge always carries 0 and no application fee is sent.
    application_fee_cents: int = 0
    # A card surcharge on the operating part (domain/surcharge.py), one of the line items.
    surcharge_cents: int = 0
    # The client ticked "Save this card or bank account": the session is made for their
    # Stripe Customer (`customer`, not `customer_email`) with
    # `payment_intent_data[setup_future_usage]=off_session`, and its metadata names the client.
    save_method: bool = False
    customer_id: str | None = None
    client_id: int | None = None


@dataclass(frozen=True)
class ConnectedAccountRequest:
    """A Stripe connected account for one of a firm's bank accounts (docs/payments.md)."""

    firm_id: str
    account: Account
    business_name: str
    idempotency_key: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    amount_cents: int  # what the client pays: the bills and any surcharge
    surcharge_cents: int = 0


@dataclass(frozen=True)
class RefundResult:
    stripe_refund_id: str
    status: str  # Stripe's: pending, succeeded, failed, canceled, requires_action


class PaymentGateway(Protocol):
    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession: ...

    def expire_checkout_session(self, session_id: str) -> bool:
        """Close a session if it is still open. True when it can no longer be paid (closed now
        or before); False when it was completed (its payment is on its way)."""
        ...

    def checkout_session(self, session_id: str) -> CheckoutSessionState | None:
        """The session as Stripe holds it; None when Stripe has no such session."""
        ...

    def create_refund(
        self,
        payment_intent_id: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> RefundResult: ...

    def create_connected_account(self, request: ConnectedAccountRequest) -> StripeAccountState:
        """`POST /v1/accounts`: the account, as Stripe answers it."""
        ...

    def create_account_link(self, stripe_account_id: str, refresh_url: str, return_url: str) -> str:
        """`POST /v1/account_links` (type account_onboarding): the hosted onboarding URL."""
        ...

    def retrieve_account(self, stripe_account_id: str) -> StripeAccountState:
        """`GET /v1/accounts/{id}`: the account as Stripe has it now."""
        ...


# --- reminders (X3) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SentRecord:
    """One email that carried a bill: a first send or a reminder (the bill's send history)."""

    bill_id: int
    envelope_id: str
    purpose: str  # EnvelopePurpose's value
    reminder_number: int | None
    to: str
    subject: str
    sent_at: datetime
    # What the send changed so the email asked for what was payable then (Envelope.send_note).
    send_note: str | None = None


class ReminderStore(Protocol):
    def claim(
        self,
        firm_id: str,
        bill_id: int,
        slot: int,
        anchor: datetime,
        batch: Batch,
        envelope: Envelope,
    ) -> bool:
        """Claim reminder `slot` of the bill and write its draft envelope and batch, in one
        conditional write: only while the bill's claimed slot is below `slot` and it is not
        paused. False: another tick (or a retry) claimed it first, or it was paused."""
        ...

    def clear_pending(self, firm_id: str, bill_id: int, envelope_id: str) -> None:
        """Forget the bill's pending reminder, if it is still this envelope."""
        ...

    def set_paused(self, firm_id: str, bill_id: int, paused: bool) -> bool:
        """False when the firm has no such bill."""
        ...

    def history(self, firm_id: str, bill_id: int) -> list[SentRecord]:
        """The emails that carried the bill, oldest first."""
        ...


class PlanCoverage(Protocol):
    """Which bills an active payment plan covers (X6): their reminders stop meanwhile."""

    def covered_bill_ids(self, firm_id: str, bill_ids: Sequence[int]) -> set[int]: ...


class NoPlans:
    """No bill is covered by a plan: the default until payment plans provide the port."""

    def covered_bill_ids(self, firm_id: str, bill_ids: Sequence[int]) -> set[int]:
        return set()


# --- accounts: the user pool, the firm's members, the audit trail ------------------------------


class UserDirectory(Protocol):
    """The user pool (Cognito): who can sign in, to which firm, in which group."""

    def sign_up(self, firm_id: str, email: str, password: str) -> str:
        """A new, unconfirmed user of a new firm; Cognito emails the code. Answers the `sub`.
        Raises EmailTaken, or InvalidInput (field password) for a password the pool refuses."""
        ...

    def confirm_sign_up(self, email: str, code: str) -> tuple[str, str]:
        """Confirm with the emailed code; answers (user id, firm id). NotFound `wrong_code`
        or `nothing_to_confirm`, RuleViolation `code_expired` otherwise."""
        ...

    def invite(self, firm_id: str, email: str) -> str:
        """A user of the firm, emailed a temporary password by Cognito. Answers the `sub`."""
        ...

    def set_role(self, user_id: str, role: Role) -> None:
        """Put the user in the role's group and out of the other."""
        ...

    def remove(self, user_id: str) -> None:
        """Sign the user out everywhere and delete them from the pool."""
        ...


class MemberRepository(Protocol):
    """The firm's users as the API lists them, with the count of admins that guards the
    last-admin rule."""

    def list(self, firm_id: str) -> list[Member]: ...

    def get(self, firm_id: str, user_id: str) -> Member | None: ...

    def add(self, member: Member) -> None:
        """Conflict if the user is already a member."""
        ...

    def set_status(self, firm_id: str, user_id: str, status: MemberStatus) -> None: ...

    def change_role(self, firm_id: str, user_id: str, role: Role) -> Member:
        """LastAdmin when it would leave the firm no admin; NotFound for no such member."""
        ...

    def remove(self, firm_id: str, user_id: str) -> Member:
        """LastAdmin when it would leave the firm no admin; NotFound for no such member."""
        ...


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEntry]
    next_cursor: str | None


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> None: ...

    def page(self, firm_id: str, cursor: str | None, limit: int) -> AuditPage:
        """Newest first; NotFound `unknown_cursor` for a cursor these pages never gave."""


# --- saved methods and payment plans ------------------------------------------------------------


@dataclass(frozen=True)
class SetupRequest:
    """A Checkout Session in `mode=setup`: the client saves a card or bank account on the
    Customer for a plan's off-session installments."""

    customer_id: str
    method: Method
    metadata: dict[str, str]  # firm_id, plan_id, client_id: the webhook finds the plan by it
    success_url: str
    cancel_url: str
    idempotency_key: str


@dataclass(frozen=True)
class SetupResult:
    status: str  # Stripe's SetupIntent status: succeeded, requires_payment_method, ...
    customer_id: str | None
    method: SavedMethod | None


@dataclass(frozen=True)
class OffSessionCharge:
    """One installment part: a PaymentIntent confirmed at once on the saved method
    (`off_session=true, confirm=true`), a destination charge into the part's account."""

    customer_id: str
    payment_method_id: str
    method: Method
    amount_cents: int
    currency: str
    destination_account_id: str
    metadata: dict[str, str]
    description: str
    idempotency_key: str
    receipt_email: str | None = None
    # The platform's fee, operating parts only (domain/fees.py): a trust part carries 0.
    application_fee_cents: int = 0


@dataclass(frozen=True)
class SavedAttempt:
    """A payment on a saved method exactly as it is sent to Stripe, kept under the client's
    attempt (its Idempotency-Key) before Stripe is called: a retry of the attempt sends these
    same requests again, with the same idempotency keys, so Stripe answers the first charge
    instead of refusing new parameters. `held_until`: the end of its holds; after it, a part
    Stripe never confirmed is not sent again (no hold keeps its bills)."""

    firm_id: str
    attempt_id: str
    saved_method_id: str
    charges: tuple[OffSessionCharge, ...]
    held_until: datetime


@dataclass(frozen=True)
class ChargeResult:
    status: str  # succeeded | processing | failed
    payment_intent_id: str | None
    failure_code: str | None = None  # card_declined, authentication_required, ...
    failure_message: str | None = None


class SavedMethodGateway(Protocol):
    """Stripe's Customers, SetupIntents and off-session PaymentIntents."""

    def create_customer(self, email: str, name: str, metadata: dict[str, str], key: str) -> str:
        """A Customer's id (one per firm and client; `key` makes a retry answer the same)."""
        ...

    def create_setup_session(self, request: SetupRequest) -> CheckoutSession: ...

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupResult: ...

    def charge_off_session(self, charge: OffSessionCharge) -> ChargeResult:
        """A decline or a needed authentication is a `failed` result, not an exception; a
        Stripe that did not answer raises PaymentProviderError(definitive=False)."""
        ...

    def retrieve_intent_method(self, payment_intent_id: str) -> SetupResult:
        """The PaymentIntent's status, Customer and PaymentMethod (as the client would name
        it): what a Checkout payment with `setup_future_usage` saved."""
        ...

    def detach_payment_method(self, payment_method_id: str) -> None:
        """Detach it from its Customer (it can never be charged again); one already detached
        is not an error."""
        ...


class PlanStore(Protocol):
    def get(self, firm_id: str, plan_id: str) -> Plan | None: ...

    def save(self, plan: Plan, now: datetime) -> Plan:
        """Write the plan if its stored version is still `plan.version` (0: new); answers it
        with the next version. StaleTransaction otherwise. The due index and the bills'
        "covered by an active plan" markers move in the same transaction."""
        ...

    def due(self, today: date) -> list[tuple[str, str]]:
        """(firm id, plan id) of every active plan with something to do on or before today."""
        ...

    def for_link(self, firm_id: str, link_id: str) -> list[Plan]: ...

    def covering(
        self, firm_id: str, bill_ids: Sequence[int], active_only: bool = True
    ) -> dict[int, str]:
        """The bills among these that an active plan covers (or, with `active_only` False,
        any open plan, one waiting for its method too), with the plan's id."""
        ...

    def customer(self, firm_id: str, client_id: int) -> str | None:
        """The client's Stripe Customer id, if one was made."""
        ...

    def save_customer(self, firm_id: str, client_id: int, customer_id: str) -> str:
        """Keep the first Customer made for the client; answers the one kept."""
        ...

    def covered_bill_ids(self, firm_id: str, bill_ids: Sequence[int]) -> set[int]:
        """PlanCoverage: the bills an active plan covers (reminders leave them alone)."""
        ...

    def saved_methods(self, firm_id: str, client_id: int) -> list[StoredMethod]:
        """The client's saved methods, forgotten ones too (their tombstones), oldest first."""
        ...

    def save_method(self, method: StoredMethod) -> bool:
        """Keep it if no method of that id was ever kept (a forgotten one stays forgotten);
        False when one was."""
        ...

    def forget_method(
        self, firm_id: str, client_id: int, method_id: str, at: datetime
    ) -> StoredMethod | None:
        """Mark it forgotten, if it is kept and live; answers it as it was, else None."""
        ...

    def for_client(self, firm_id: str, client_id: int) -> list[Plan]:
        """Every plan of the client in the firm, on any of their links, oldest first."""
        ...

    def saved_attempt(self, firm_id: str, attempt_id: str) -> SavedAttempt | None:
        """The payment on a saved method kept under this attempt, if any."""
        ...

    def begin_saved_attempt(self, attempt: SavedAttempt) -> SavedAttempt:
        """Keep it if no attempt of that id was kept; answers the one kept (the first)."""
        ...
