"""Composition root: which adapter serves which port, and each function's services built from
its config and those adapters.

As in Cosmic Python's `bootstrap.py`, the builders (`build_api`, `build_pay_page`, ...) take
their adapters as parameters with production defaults: a port left out of `Adapters` gets
its production adapter (DynamoDB, KMS, Secrets Manager, Stripe, SES, Step Functions, Lambda,
Clio), made from the config on first use. Tests pass fakes for every port
(`tests/fakes.py`, `FakeWorld.adapters()`) and build the whole app without AWS.

Handlers call the cached getters (`api_services()`, `pay_page()`, ...), built once per
container; tests reset them with `reset()` after changing the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from billbridge.config import (
    AccountsConfig,
    ClioConfig,
    ClioWebhookConfig,
    CommonConfig,
    MailConfig,
    PayConfig,
    PayLinkConfig,
    PaymentsApiConfig,
    PdfCacheConfig,
    PlanInstallmentsConfig,
    RemindersConfig,
    SendConfig,
    SesEventsConfig,
    StoreConfig,
    StripeConfig,
    StripeWebhookConfig,
    SyncWorkerConfig,
)
from billbridge.domain.sync import utcnow

# Each service, port and domain type is imported where a builder uses it, and here only for
# the annotations (postponed): a handler's cold start loads the services its own function
# builds, on its first request, and nothing of the others (tests/infra/test_cold_imports.py).
if TYPE_CHECKING:
    from billbridge.domain.connection import ClioConnection, Region
    from billbridge.domain.payment_links import PaymentLink
    from billbridge.services.accounts import AuditTrail, Signup, Users
    from billbridge.services.bill_pdfs import BillPdfs, PrefetchPolicy
    from billbridge.services.clio_webhooks import ClioWebhookService
    from billbridge.services.connect import ConnectService, WebhookSubscriptions
    from billbridge.services.envelopes import EnvelopeService
    from billbridge.services.invoices import InvoicesService
    from billbridge.services.onboarding import OnboardingService
    from billbridge.services.payment_accounts import PaymentAccountsService
    from billbridge.services.payments import PaymentLinks, PayPage, StripeEvents
    from billbridge.services.plans import PaymentPlans
    from billbridge.services.ports import (
        AppSecrets,
        AuditLog,
        BillRepository,
        ClioClientFactory,
        ClioGateway,
        ConnectionRepository,
        ConnectStateRepository,
        FirmHeaders,
        Mailer,
        MemberRepository,
        OnboardingRepository,
        PaymentGateway,
        PaymentLinkRepository,
        PaymentStore,
        PdfStore,
        PlanStore,
        ReceiptLog,
        ReminderStore,
        SavedMethodGateway,
        SenderIdentity,
        SendingRepository,
        SendStarter,
        SettingsRepository,
        SyncLauncher,
        SyncRepository,
        UserDirectory,
    )
    from billbridge.services.receipts import Receipts
    from billbridge.services.reconciliation import Reconciliation
    from billbridge.services.reminders import RemindersService
    from billbridge.services.saved_methods import SavedMethods
    from billbridge.services.sending import DeliveryEvents, SendRequests, SendSteps
    from billbridge.services.settings import SettingsService
    from billbridge.services.sync import SyncService

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Adapters:
    """The adapter behind each port; None means "the production adapter"."""

    bills: BillRepository | None = None
    syncs: SyncRepository | None = None
    settings: SettingsRepository | None = None
    headers: FirmHeaders | None = None
    connections: ConnectionRepository | None = None
    connect_states: ConnectStateRepository | None = None
    envelopes: SendingRepository | None = None
    links: PaymentLinkRepository | None = None
    payments: PaymentStore | None = None
    stripe: PaymentGateway | None = None
    mailer: Mailer | None = None
    receipts: ReceiptLog | None = None
    send_starter: SendStarter | None = None
    sync_launcher: SyncLauncher | None = None
    clio: ClioClientFactory | None = None
    secrets: AppSecrets | None = None
    pdfs: PdfStore | None = None
    clock: Clock | None = None
    reminders: ReminderStore | None = None
    # Payment plans; also which bills an active plan covers (their reminders stop meanwhile).
    plans: PlanStore | None = None
    onboarding: OnboardingRepository | None = None
    sender_identity: SenderIdentity | None = None
    # Accounts (docs/auth.md): the user pool, the firm's members, the audit trail.
    directory: UserDirectory | None = None
    members: MemberRepository | None = None
    audit: AuditLog | None = None


class SecretsManagerSecrets:
    """AppSecrets from Secrets Manager (cached by Powertools), by the ARNs the config names."""

    def __init__(self, config: Any) -> None:
        self._config = config

    def clio_state_key(self) -> bytes:
        from billbridge.adapters.app_secrets import load_clio_app_secrets

        return load_clio_app_secrets(self._config.clio_app_secret_arn).state_signing_key

    def pay_link_key(self) -> bytes:
        from billbridge.adapters.app_secrets import load_pay_link_key

        return load_pay_link_key(self._config.pay_link_secret_arn)

    def stripe_webhook_secret(self) -> str:
        from billbridge.adapters.app_secrets import load_stripe_secrets

        return load_stripe_secrets(self._config.stripe_secret_arn).webhook_secret

    def stripe_connect_webhook_secret(self) -> str | None:
        from billbridge.adapters.app_secrets import load_stripe_secrets

        return load_stripe_secrets(self._config.stripe_secret_arn).connect_webhook_secret


class ClioClients:
    """ClioClientFactory over the real Clio API: the app's credentials from Secrets Manager,
    refreshed tokens persisted on the firm's connection."""

    def __init__(
        self, config: StoreConfig, connections: ConnectionRepository, clock: Clock = utcnow
    ) -> None:
        self._config = config
        self._connections = connections
        self._clock = clock

    def host(self, region: Region) -> str:
        from billbridge.adapters.clio_wire import REGION_HOSTS

        return self._config.clio_base_url or REGION_HOSTS[region.value]

    def web_host(self, connection: ClioConnection) -> str:
        return self.host(connection.region)

    def for_region(self, region: Region, on_tokens: Any = None, tokens: Any = None) -> Any:
        from billbridge.adapters.app_secrets import load_clio_app_secrets
        from billbridge.adapters.clio import ClioClient

        assert isinstance(self._config, ClioConfig), "this function has no Clio app credentials"
        app = load_clio_app_secrets(self._config.clio_app_secret_arn)
        return ClioClient(
            self.host(region),
            app.client_id,
            app.client_secret,
            self._config.clio_redirect_uri,
            tokens=tokens,
            on_tokens=on_tokens,
            # Token expiry and Clio's rate-window resets counted on the services' clock.
            clock=lambda: self._clock().timestamp(),
        )

    def for_connection(self, connection: ClioConnection) -> Any:
        from billbridge.adapters.clio import ClioTokens

        def persist(tokens: ClioTokens) -> None:
            current = self._connections.get(connection.firm_id) or connection
            self._connections.save(
                current.with_tokens(tokens.access_token, tokens.refresh_token, tokens.expires_at)
            )

        tokens = ClioTokens(
            access_token=connection.access_token,
            refresh_token=connection.refresh_token,
            expires_at=connection.access_expires_at,
        )
        return self.for_region(connection.region, on_tokens=persist, tokens=tokens)


class _Wiring:
    """The given adapters, and production ones made from the config for the ports left out
    (each on first use, so a function never builds clients it does not need)."""

    def __init__(self, config: CommonConfig, given: Adapters) -> None:
        self.config = config
        self.given = given

    @cached_property
    def dynamodb(self) -> Any:
        import boto3

        return boto3.client("dynamodb")

    @property
    def _table(self) -> str:
        return self.config.table_name

    @cached_property
    def clock(self) -> Clock:
        """The only source of "now" for the services: the given one (tests), the local
        stack's shifted clock (`LOCAL_CLOCK_FILE`), else the real one."""
        if self.given.clock is not None:
            return self.given.clock
        if self.config.local_clock_file:
            from billbridge.adapters.shifted_clock import ShiftedClock

            return ShiftedClock(self.config.local_clock_file)
        return utcnow

    @cached_property
    def bills(self) -> BillRepository:
        if self.given.bills is not None:
            return self.given.bills
        from billbridge.adapters.dynamo import DynamoBillRepository

        return DynamoBillRepository(self.dynamodb, self._table)

    @cached_property
    def syncs(self) -> SyncRepository:
        if self.given.syncs is not None:
            return self.given.syncs
        from billbridge.adapters.dynamo import DynamoSyncRepository

        return DynamoSyncRepository(self.dynamodb, self._table)

    @cached_property
    def settings(self) -> SettingsRepository:
        if self.given.settings is not None:
            return self.given.settings
        from billbridge.adapters.dynamo import DynamoSettingsRepository

        return DynamoSettingsRepository(self.dynamodb, self._table)

    @cached_property
    def headers(self) -> FirmHeaders:
        if self.given.headers is not None:
            return self.given.headers
        from billbridge.adapters.dynamo_header import DynamoFirmHeaders

        return DynamoFirmHeaders(self.dynamodb, self._table)

    @cached_property
    def pdf_store(self) -> PdfStore:
        if self.given.pdfs is not None:
            return self.given.pdfs
        import boto3

        from billbridge.adapters.s3_pdfs import S3PdfStore

        assert isinstance(self.config, PdfCacheConfig), "this function has no bill PDF bucket"
        return S3PdfStore(boto3.client("s3"), self.config.bill_pdf_bucket)

    def bill_pdfs(self, policy: PrefetchPolicy | None = None) -> BillPdfs:
        from billbridge.services.bill_pdfs import BillPdfs

        return BillPdfs(bills=self.bills, store=self.pdf_store, policy=policy)

    @cached_property
    def connections(self) -> ConnectionRepository:
        if self.given.connections is not None:
            return self.given.connections
        import boto3

        from billbridge.adapters.dynamo import DynamoConnectionRepository
        from billbridge.adapters.kms_cipher import KmsCipher

        assert isinstance(self.config, StoreConfig), "this function has no token key"
        cipher = KmsCipher(boto3.client("kms"), self.config.token_key_id)
        return DynamoConnectionRepository(self.dynamodb, self._table, cipher)

    @cached_property
    def connect_states(self) -> ConnectStateRepository:
        if self.given.connect_states is not None:
            return self.given.connect_states
        from billbridge.adapters.dynamo_firms import DynamoConnectStateRepository

        return DynamoConnectStateRepository(self.dynamodb, self._table)

    @cached_property
    def envelopes(self) -> SendingRepository:
        if self.given.envelopes is not None:
            return self.given.envelopes
        from billbridge.adapters.dynamo import DynamoSendingRepository

        return DynamoSendingRepository(self.dynamodb, self._table)

    @cached_property
    def links(self) -> PaymentLinkRepository:
        if self.given.links is not None:
            return self.given.links
        from billbridge.adapters.dynamo import DynamoPaymentLinkRepository

        return DynamoPaymentLinkRepository(self.dynamodb, self._table)

    @cached_property
    def payments(self) -> PaymentStore:
        if self.given.payments is not None:
            return self.given.payments
        from billbridge.adapters.dynamo_payments import DynamoPaymentStore

        return DynamoPaymentStore(self.dynamodb, self._table)

    @cached_property
    def audit_log(self) -> AuditLog:
        if self.given.audit is not None:
            return self.given.audit
        from billbridge.adapters.dynamo_accounts import DynamoAuditLog

        return DynamoAuditLog(self.dynamodb, self._table)

    @cached_property
    def reminders(self) -> ReminderStore:
        if self.given.reminders is not None:
            return self.given.reminders
        from billbridge.adapters.dynamo_reminders import DynamoReminderStore

        return DynamoReminderStore(self.dynamodb, self._table)

    def reminder_service(self, starter: Callable[[], SendStarter]) -> RemindersService:
        from billbridge.services.reminders import RemindersService

        return RemindersService(
            connections=self.connections,
            settings=self.settings,
            bills=self.bills,
            reminders=self.reminders,
            envelopes=self.envelopes,
            starter=starter,
            plans=self.plans,
            clock=self.clock,
        )

    @cached_property
    def onboarding(self) -> OnboardingRepository:
        if self.given.onboarding is not None:
            return self.given.onboarding
        from billbridge.adapters.dynamo_onboarding import DynamoOnboardingRepository

        return DynamoOnboardingRepository(self.dynamodb, self._table)

    def sender_identity(self) -> Callable[[], SenderIdentity]:
        given = self.given.sender_identity
        if given is not None:
            return lambda: given

        @cache
        def make() -> SenderIdentity:
            import boto3

            from billbridge.adapters.ses_identity import SesSenderIdentity

            return SesSenderIdentity(boto3.client("ses"))

        return make

    @cached_property
    def receipt_log(self) -> ReceiptLog:
        if self.given.receipts is not None:
            return self.given.receipts
        from billbridge.adapters.dynamo_receipts import DynamoReceiptLog

        return DynamoReceiptLog(self.dynamodb, self._table)

    def receipts(self, link_url: Callable[[PaymentLink], str] | None) -> Receipts:
        from billbridge.services.receipts import Receipts

        return Receipts(
            store=self.payments,
            bills=self.bills,
            links=self.links,
            settings=self.settings,
            log_=self.receipt_log,
            mailer=self.mailer(),
            link_url=link_url,
            clock=self.clock,
        )

    def link_url(self) -> Callable[[PaymentLink], str]:
        config = self.config
        assert isinstance(config, PayLinkConfig), "this function has no pay link key"

        def url_of(link: PaymentLink) -> str:
            from billbridge.domain.payment_links import link_token, link_url

            key = self.secrets.pay_link_key()
            return link_url(config.public_pay_base_url, link_token(key, link.firm_id, link.id))

        return url_of

    @cached_property
    def secrets(self) -> AppSecrets:
        return self.given.secrets or SecretsManagerSecrets(self.config)

    @cached_property
    def clio(self) -> ClioClientFactory:
        if self.given.clio is not None:
            return self.given.clio
        assert isinstance(self.config, StoreConfig)
        return ClioClients(self.config, self.connections, self.clock)

    @cached_property
    def plans(self) -> PlanStore:
        if self.given.plans is not None:
            return self.given.plans
        from billbridge.adapters.dynamo_plans import DynamoPlanStore

        return DynamoPlanStore(self.dynamodb, self._table)

    def payment_plans(self) -> PaymentPlans:
        """Payment plans (services/plans.py): Stripe and the pay link key on first use; SES
        only in the functions that tell a failed installment (the tick, the webhook)."""
        from billbridge.services.plans import PaymentPlans

        config = self.config
        assert isinstance(config, PayLinkConfig) and isinstance(config, StripeConfig)
        stripe = self.stripe()
        sends = self.given.mailer is not None or isinstance(config, MailConfig)
        mailer = self.mailer() if sends else _no_mailer
        return PaymentPlans(
            plans=self.plans,
            bills=self.bills,
            links=self.links,
            store=self.payments,
            gateway=lambda: cast("SavedMethodGateway", stripe()),
            settings=self.settings,
            mailer=mailer,
            pay_link_key=self.secrets.pay_link_key,
            pay_base_url=config.public_pay_base_url,
            firm_notice_address=getattr(config, "sender_address", None),
            clock=self.clock,
        )

    def saved_methods(self) -> SavedMethods:
        """Cards and bank accounts saved on the pay page (services/saved_methods.py)."""
        from billbridge.services.saved_methods import SavedMethods

        stripe = self.stripe()
        return SavedMethods(
            plans=self.plans,
            links=self.links,
            bills=self.bills,
            store=self.payments,
            gateway=stripe,
            saved=lambda: cast("SavedMethodGateway", stripe()),
            settings=self.settings,
            clock=self.clock,
        )

    def stripe(self) -> Callable[[], PaymentGateway]:
        """The gateway, made on first use (the Stripe secret is read then, and cached)."""
        given = self.given.stripe
        if given is not None:
            return lambda: given
        config = self.config
        assert isinstance(config, StripeConfig), "this function has no Stripe config"

        @cache
        def make() -> PaymentGateway:
            from billbridge.adapters.app_secrets import load_stripe_secrets
            from billbridge.adapters.stripe_gateway import StripeGateway

            secrets = load_stripe_secrets(config.stripe_secret_arn)
            return StripeGateway(secrets.api_key, api_base=config.stripe_api_base)

        return make

    def mailer(self) -> Callable[[], Mailer]:
        given = self.given.mailer
        if given is not None:
            return lambda: given
        config = self.config
        assert isinstance(config, MailConfig), "this function has no sender address"

        @cache  # made on first use, then kept: a client per send costs time and memory
        def make() -> Mailer:
            import boto3

            from billbridge.adapters.ses_mailer import SesMailer

            return SesMailer(
                boto3.client("sesv2"),
                from_address=config.sender_address,
                configuration_set=config.ses_configuration_set,
            )

        return make

    def send_starter(self) -> Callable[[], SendStarter]:
        given = self.given.send_starter
        if given is not None:
            return lambda: given
        config = self.config
        assert isinstance(config, (PaymentsApiConfig, RemindersConfig))

        @cache  # made on first use, then kept: a client per request costs time and memory
        def make() -> SendStarter:
            import boto3

            from billbridge.adapters.sfn_starter import StepFunctionsSendStarter

            return StepFunctionsSendStarter(
                boto3.client("stepfunctions"), config.send_state_machine_arn
            )

        return make

    def sync_launcher(self, function_name: str) -> SyncLauncher:
        if self.given.sync_launcher is not None:
            return self.given.sync_launcher
        import boto3

        from billbridge.adapters.lambda_launcher import LambdaSyncLauncher

        return LambdaSyncLauncher(boto3.client("lambda"), function_name)


def _no_mailer() -> Mailer:
    raise RuntimeError("this function does not send email")


# --- building each function's services --------------------------------------------------------


def _webhooks(config: ClioConfig, w: _Wiring) -> WebhookSubscriptions:
    from billbridge.services.connect import WebhookSubscriptions

    return WebhookSubscriptions(
        connections=w.connections, public_api_base_url=config.public_api_base_url, clock=w.clock
    )


def _sync_service(
    config: ClioConfig, w: _Wiring, function_name: str, pdfs: BillPdfs | None = None
) -> SyncService:
    from billbridge.services.sync import SyncService

    return SyncService(
        bills=w.bills,
        syncs=w.syncs,
        connections=w.connections,
        clio_for=w.clio.for_connection,
        clio_web_host_for=w.clio.web_host,
        launcher=w.sync_launcher(function_name),
        webhooks=_webhooks(config, w).keep,
        pdfs=pdfs,
        clock=w.clock,
    )


def _oauth_client_for(w: _Wiring) -> Callable[[Region], ClioGateway]:
    return lambda region: w.clio.for_region(region)


class ApiServices:
    """The firm API's services, each built (and its module imported) on first use: a request
    builds what its route needs and no more, so a cold start pays for the services of the
    route it serves, not for all of them. One instance of each, shared (the sync that
    `invoices` starts on view is `sync`)."""

    def __init__(self, config: PaymentsApiConfig, w: _Wiring) -> None:
        self._config = config
        self._w = w
        self.web_base_url = config.web_base_url
        # The connect cookie (domain/oauth_state.py) goes only to the OAuth callback's path,
        # and only over https when the callback is https.
        callback = urlsplit(config.clio_redirect_uri)
        self.connect_cookie_path = callback.path or "/clio/callback"
        self.connect_cookie_secure = callback.scheme == "https"
        # "Now" for what a route stamps itself (a report's time): the services' clock.
        self.clock: Clock = w.clock

    @cached_property
    def sync(self) -> SyncService:
        return _sync_service(self._config, self._w, self._config.sync_function_name)

    @cached_property
    def sync_runs(self) -> SyncRepository:
        return self._w.syncs

    @cached_property
    def invoices(self) -> InvoicesService:
        from billbridge.services.invoices import InvoicesService

        w = self._w
        return InvoicesService(
            bills=w.bills, headers=w.headers, sync_on_view=self.sync.sync_on_view, clock=w.clock
        )

    @cached_property
    def settings(self) -> SettingsService:
        from billbridge.services.settings import SettingsService

        return SettingsService(self._w.settings)

    @cached_property
    def connect(self) -> ConnectService:
        from billbridge.services.connect import ConnectService

        w = self._w
        return ConnectService(
            connections=w.connections,
            connect_states=w.connect_states,
            state_key=w.secrets.clio_state_key(),
            oauth_client_for=_oauth_client_for(w),
            request_sync=self.sync.request_sync,
            webhooks=_webhooks(self._config, w),
            clock=w.clock,
        )

    @cached_property
    def envelopes(self) -> EnvelopeService:
        from billbridge.services.envelopes import EnvelopeService

        w = self._w
        return EnvelopeService(
            bills=w.bills,
            envelopes=w.envelopes,
            settings=w.settings,
            connections=w.connections,
            clio_for=w.clio.for_connection,
            pdfs=w.bill_pdfs(),
            clock=w.clock,
        )

    @cached_property
    def sending(self) -> SendRequests:
        from billbridge.services.sending import SendRequests

        w = self._w
        return SendRequests(
            envelopes=w.envelopes, starter=self._starter, bills=w.bills, settings=w.settings
        )

    @cached_property
    def _starter(self) -> Callable[[], SendStarter]:
        return self._w.send_starter()

    @cached_property
    def _link_url(self) -> Callable[[PaymentLink], str]:
        return self._w.link_url()

    @cached_property
    def payment_links(self) -> PaymentLinks:
        from billbridge.services.payments import PaymentLinks

        w = self._w
        return PaymentLinks(
            links=w.links,
            bills=w.bills,
            store=w.payments,
            gateway=w.stripe(),
            link_url=self._link_url,
            clock=w.clock,
        )

    @cached_property
    def reconciliation(self) -> Reconciliation:
        from billbridge.services.reconciliation import Reconciliation

        w = self._w
        return Reconciliation(
            store=w.payments,
            bills=w.bills,
            last_synced=lambda firm_id: w.headers.read(firm_id).checkpoint.last_synced_at,
            clock=w.clock,
        )

    @cached_property
    def reminders(self) -> RemindersService:
        return self._w.reminder_service(self._starter)

    @cached_property
    def payment_accounts(self) -> PaymentAccountsService:
        from billbridge.services.payment_accounts import PaymentAccountsService

        w = self._w
        return PaymentAccountsService(w.payments, w.stripe(), w.settings)

    @cached_property
    def onboarding(self) -> OnboardingService:
        from billbridge.services.onboarding import OnboardingService

        w = self._w
        return OnboardingService(
            marks=w.onboarding,
            connections=w.connections,
            accounts=self.payment_accounts,
            settings=w.settings,
            identity=w.sender_identity(),
            sender_address=self._config.sender_address,
            clock=w.clock,
        )

    @cached_property
    def receipts(self) -> Receipts:
        return self._w.receipts(self._link_url)


def build_api(config: PaymentsApiConfig, adapters: Adapters = Adapters()) -> ApiServices:
    return ApiServices(config, _Wiring(config, adapters))


def build_pay_page(config: PayConfig, adapters: Adapters = Adapters()) -> PayPage:
    from billbridge.domain.errors import ClioUnreachable
    from billbridge.services.payments import PayPage

    w = _Wiring(config, adapters)

    def clio_for_firm(firm_id: str) -> ClioGateway:
        connection = w.connections.get(firm_id)
        if connection is None or connection.needs_reconnect:
            raise ClioUnreachable(
                "The bill's PDF cannot be fetched from the firm's Clio account right now."
            )
        return w.clio.for_connection(connection)

    return PayPage(
        links=w.links,
        bills=w.bills,
        store=w.payments,
        gateway=w.stripe(),
        pay_base_url=config.public_pay_base_url,
        settings=w.settings,
        clock=w.clock,
        pdfs=w.bill_pdfs(),
        clio_for_firm=clio_for_firm,
        customer_for=w.saved_methods().customer_for,
    )


@dataclass(frozen=True)
class StripeWebhook:
    events: StripeEvents
    verify: Callable[[bytes, str | None], dict[str, object]]
    receipts: Receipts


def build_stripe_webhook(
    config: StripeWebhookConfig, adapters: Adapters = Adapters()
) -> StripeWebhook:
    from billbridge.services.payment_accounts import PaymentAccountsService
    from billbridge.services.payments import StripeEvents

    w = _Wiring(config, adapters)

    def verify(payload: bytes, signature: str | None) -> dict[str, object]:
        from billbridge.adapters.stripe_gateway import verify_event

        # The platform's endpoint, or the Connect endpoint (account.updated): each signs
        # with its own secret.
        connect = w.secrets.stripe_connect_webhook_secret()
        more = (connect,) if connect else ()
        return verify_event(payload, signature, w.secrets.stripe_webhook_secret(), *more)

    # Every change Stripe reports to an account goes in the firm's audit trail.
    accounts = PaymentAccountsService(w.payments, w.stripe(), w.settings, audit=w.audit_log)
    return StripeWebhook(
        events=StripeEvents(
            w.payments,
            clock=w.clock,
            accounts=accounts,
            plans=w.payment_plans(),
            saved=w.saved_methods(),
        ),
        verify=verify,
        receipts=w.receipts(w.link_url()),
    )


def build_payment_plans(
    config: PaymentsApiConfig | PayConfig | StripeWebhookConfig | PlanInstallmentsConfig,
    adapters: Adapters = Adapters(),
) -> PaymentPlans:
    return _Wiring(config, adapters).payment_plans()


@dataclass(frozen=True)
class SyncWorkerServices:
    sync: SyncService
    connections: ConnectionRepository
    time_reserve_seconds: float


def build_sync_worker(
    config: SyncWorkerConfig, adapters: Adapters = Adapters()
) -> SyncWorkerServices:
    from billbridge.services.bill_pdfs import PrefetchPolicy

    w = _Wiring(config, adapters)
    per_run = config.pdf_prefetch_per_run
    pdfs = w.bill_pdfs(PrefetchPolicy(per_run=per_run)) if per_run else None
    return SyncWorkerServices(
        sync=_sync_service(config, w, config.sync_function_name, pdfs),
        connections=w.connections,
        time_reserve_seconds=config.time_reserve_seconds,
    )


def build_clio_webhook(
    config: ClioWebhookConfig, adapters: Adapters = Adapters()
) -> ClioWebhookService:
    from billbridge.adapters.clio_wire import verify_webhook_signature
    from billbridge.services.clio_webhooks import ClioWebhookService

    w = _Wiring(config, adapters)
    return ClioWebhookService(
        bills=w.bills,
        connections=w.connections,
        verify=verify_webhook_signature,
        clio_web_host_for=w.clio.web_host,
        clock=w.clock,
    )


def build_send_steps(config: SendConfig, adapters: Adapters = Adapters()) -> SendSteps:
    from billbridge.services.sending import SendSteps

    w = _Wiring(config, adapters)
    return SendSteps(
        envelopes=w.envelopes,
        bills=w.bills,
        links=w.links,
        settings=w.settings,
        connections=w.connections,
        clio_for=w.clio.for_connection,
        pdfs=w.bill_pdfs(),
        mailer=w.mailer(),
        pay_link_key=w.secrets.pay_link_key,
        pay_base_url=config.public_pay_base_url,
        clock=w.clock,
        plans=w.plans,
    )


def build_reminders(config: RemindersConfig, adapters: Adapters = Adapters()) -> RemindersService:
    w = _Wiring(config, adapters)
    return w.reminder_service(w.send_starter())


def build_delivery_events(config: CommonConfig, adapters: Adapters = Adapters()) -> DeliveryEvents:
    from billbridge.services.sending import DeliveryEvents

    return DeliveryEvents(_Wiring(config, adapters).envelopes)


# --- the handlers' getters: production adapters, built once per container ----------------------


@cache
def api_services() -> ApiServices:
    return build_api(PaymentsApiConfig())  # type: ignore[call-arg]


@dataclass(frozen=True)
class AccountServices:
    signup: Signup
    users: Users
    audit: AuditTrail


def build_accounts(config: AccountsConfig, adapters: Adapters = Adapters()) -> AccountServices:
    from billbridge.services.accounts import AuditTrail, Signup, Users

    w = _Wiring(config, adapters)
    audit_log = adapters.audit
    members = adapters.members
    directory = adapters.directory
    if audit_log is None or members is None:
        from billbridge.adapters.dynamo_accounts import DynamoAuditLog, DynamoMembers

        audit_log = audit_log or DynamoAuditLog(w.dynamodb, config.table_name)
        members = members or DynamoMembers(w.dynamodb, config.table_name)
    if directory is None:
        import boto3

        from billbridge.adapters.cognito_directory import CognitoDirectory

        directory = CognitoDirectory(
            boto3.client("cognito-idp"), config.user_pool_id, config.signup_client_id
        )
    audit = AuditTrail(audit_log, w.clock)
    return AccountServices(
        signup=Signup(directory, members, w.settings, audit, w.clock),
        users=Users(
            directory,
            members,
            audit,
            w.clock,
            # Only the local stack's stage trusts its `dev-<firm>` stand-in (docs/auth.md).
            trust_local_stand_in=config.stage == "local",
            # The access check of a route that reads the firm header reads it with the
            # caller's record, in one request (routes/context.py); made on first use.
            headers=lambda: w.headers,
        ),
        audit=audit,
    )


@cache
def account_services() -> AccountServices:
    return build_accounts(AccountsConfig())  # type: ignore[call-arg]


@cache
def pay_page() -> PayPage:
    return build_pay_page(PayConfig())  # type: ignore[call-arg]


def build_saved_methods(config: PayConfig, adapters: Adapters = Adapters()) -> SavedMethods:
    return _Wiring(config, adapters).saved_methods()


@cache
def pay_saved() -> SavedMethods:
    return build_saved_methods(PayConfig())  # type: ignore[call-arg]


@cache
def api_plans() -> PaymentPlans:
    return build_payment_plans(PaymentsApiConfig())  # type: ignore[call-arg]


@cache
def pay_plans() -> PaymentPlans:
    return build_payment_plans(PayConfig())  # type: ignore[call-arg]


@cache
def tick_plans() -> PaymentPlans:
    return build_payment_plans(PlanInstallmentsConfig())  # type: ignore[call-arg]


@cache
def stripe_webhook() -> StripeWebhook:
    return build_stripe_webhook(StripeWebhookConfig())  # type: ignore[call-arg]


@cache
def sync_worker_services() -> SyncWorkerServices:
    return build_sync_worker(SyncWorkerConfig())  # type: ignore[call-arg]


@cache
def clio_webhook_service() -> ClioWebhookService:
    return build_clio_webhook(ClioWebhookConfig())  # type: ignore[call-arg]


@cache
def send_steps() -> SendSteps:
    return build_send_steps(SendConfig())  # type: ignore[call-arg]


@cache
def reminders_service() -> RemindersService:
    return build_reminders(RemindersConfig())  # type: ignore[call-arg]


@cache
def delivery_events() -> DeliveryEvents:
    return build_delivery_events(SesEventsConfig())  # type: ignore[call-arg]


def reset() -> None:
    api_services.cache_clear()
    account_services.cache_clear()
    sync_worker_services.cache_clear()
    clio_webhook_service.cache_clear()
    send_steps.cache_clear()
    delivery_events.cache_clear()
    reminders_service.cache_clear()
    pay_page.cache_clear()
    stripe_webhook.cache_clear()
    api_plans.cache_clear()
    pay_plans.cache_clear()
    tick_plans.cache_clear()
    pay_saved.cache_clear()
