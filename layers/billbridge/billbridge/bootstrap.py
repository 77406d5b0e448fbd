"""Composition root: builds each function's services from its config, once per container.

The only module that knows which adapter implements which port. Handlers call the getters;
tests reset them with `reset()` after changing the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import boto3

from billbridge.adapters.app_secrets import (
    load_clio_app_secrets,
    load_pay_link_key,
    load_stripe_secrets,
)
from billbridge.adapters.clio import REGION_HOSTS, ClioClient, ClioTokens, verify_webhook_signature
from billbridge.adapters.dynamo import (
    DynamoBillRepository,
    DynamoConnectionRepository,
    DynamoEnvelopeRepository,
    DynamoPaymentLinkRepository,
    DynamoSendingRepository,
    DynamoSettingsRepository,
    DynamoSyncRepository,
)
from billbridge.adapters.dynamo_payments import DynamoPaymentStore
from billbridge.adapters.kms_cipher import KmsCipher
from billbridge.adapters.lambda_launcher import LambdaSyncLauncher
from billbridge.adapters.ses_mailer import SesMailer
from billbridge.adapters.sfn_starter import StepFunctionsSendStarter
from billbridge.adapters.stripe_gateway import StripeGateway, verify_event
from billbridge.config import (
    ClioConfig,
    ClioWebhookConfig,
    PayConfig,
    PaymentsApiConfig,
    SendConfig,
    SesEventsConfig,
    StoreConfig,
    StripeConfig,
    StripeWebhookConfig,
    SyncWorkerConfig,
)
from billbridge.domain.connection import ClioConnection, Region
from billbridge.domain.payment_links import PaymentLink, link_token, link_url
from billbridge.services.clio_webhooks import ClioWebhookService
from billbridge.services.connect import ConnectService, WebhookSubscriptions
from billbridge.services.envelopes import EnvelopeService
from billbridge.services.invoices import InvoicesService
from billbridge.services.payments import PaymentLinks, PayPage, Reconciliation, StripeEvents
from billbridge.services.sending import DeliveryEvents, SendRequests, SendSteps
from billbridge.services.settings import SettingsService
from billbridge.services.sync import SyncService


@dataclass(frozen=True)
class Repositories:
    bills: DynamoBillRepository
    syncs: DynamoSyncRepository
    settings: DynamoSettingsRepository
    connections: DynamoConnectionRepository
    envelopes: DynamoEnvelopeRepository


def _repositories(config: StoreConfig) -> Repositories:
    dynamodb = boto3.client("dynamodb")
    cipher = KmsCipher(boto3.client("kms"), config.token_key_id)
    return Repositories(
        bills=DynamoBillRepository(dynamodb, config.table_name),
        syncs=DynamoSyncRepository(dynamodb, config.table_name),
        settings=DynamoSettingsRepository(dynamodb, config.table_name),
        connections=DynamoConnectionRepository(dynamodb, config.table_name, cipher),
        envelopes=DynamoEnvelopeRepository(dynamodb, config.table_name),
    )


class ClioClients:
    """Makes Clio clients for a region or for a firm's connection, persisting refreshed tokens."""

    def __init__(self, config: StoreConfig, connections: DynamoConnectionRepository) -> None:
        self._config = config
        self._connections = connections

    def host(self, region: Region) -> str:
        return self._config.clio_base_url or REGION_HOSTS[region.value]

    def web_host(self, connection: ClioConnection) -> str:
        return self.host(connection.region)

    def for_region(
        self,
        region: Region,
        on_tokens: Callable[[ClioTokens], None] | None = None,
        tokens: ClioTokens | None = None,
    ) -> ClioClient:
        assert isinstance(self._config, ClioConfig), "this function has no Clio app credentials"
        app = load_clio_app_secrets(self._config.clio_app_secret_arn)
        return ClioClient(
            self.host(region),
            app.client_id,
            app.client_secret,
            self._config.clio_redirect_uri,
            tokens=tokens,
            on_tokens=on_tokens,
        )

    def for_connection(self, connection: ClioConnection) -> ClioClient:
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


@dataclass(frozen=True)
class ApiServices:
    invoices: InvoicesService
    sync: SyncService
    sync_runs: DynamoSyncRepository
    settings: SettingsService
    connect: ConnectService
    envelopes: EnvelopeService
    sending: SendRequests
    payment_links: PaymentLinks
    reconciliation: Reconciliation
    web_base_url: str


def _webhooks(config: ClioConfig, repos: Repositories) -> WebhookSubscriptions:
    return WebhookSubscriptions(
        connections=repos.connections, public_api_base_url=config.public_api_base_url
    )


def _sync_service(
    config: ClioConfig, repos: Repositories, clio: ClioClients, function_name: str
) -> SyncService:
    return SyncService(
        bills=repos.bills,
        syncs=repos.syncs,
        connections=repos.connections,
        clio_for=clio.for_connection,
        clio_web_host_for=clio.web_host,
        launcher=LambdaSyncLauncher(boto3.client("lambda"), function_name),
        webhooks=_webhooks(config, repos).keep,
    )


def _connect_service(
    config: ClioConfig, repos: Repositories, clio: ClioClients, sync: SyncService
) -> ConnectService:
    return ConnectService(
        connections=repos.connections,
        state_key=load_clio_app_secrets(config.clio_app_secret_arn).state_signing_key,
        oauth_client_for=clio.for_region,
        request_sync=sync.request_sync,
        webhooks=_webhooks(config, repos),
    )


@cache
def api_services() -> ApiServices:
    config = PaymentsApiConfig()  # type: ignore[call-arg]
    repos = _repositories(config)
    clio = ClioClients(config, repos.connections)
    sync = _sync_service(config, repos, clio, config.sync_function_name)
    dynamodb = boto3.client("dynamodb")
    store = DynamoPaymentStore(dynamodb, config.table_name)

    def url_of(link: PaymentLink) -> str:
        key = load_pay_link_key(config.pay_link_secret_arn)
        return link_url(config.public_pay_base_url, link_token(key, link.firm_id, link.id))

    return ApiServices(
        invoices=InvoicesService(
            bills=repos.bills, settings=repos.settings, sync_on_view=sync.sync_on_view
        ),
        sync=sync,
        sync_runs=repos.syncs,
        settings=SettingsService(repos.settings),
        connect=_connect_service(config, repos, clio, sync),
        envelopes=EnvelopeService(
            bills=repos.bills,
            envelopes=repos.envelopes,
            settings=repos.settings,
            connections=repos.connections,
            clio_for=clio.for_connection,
        ),
        sending=SendRequests(
            envelopes=repos.envelopes,
            starter=lambda: StepFunctionsSendStarter(
                boto3.client("stepfunctions"), config.send_state_machine_arn
            ),
        ),
        payment_links=PaymentLinks(
            links=DynamoPaymentLinkRepository(dynamodb, config.table_name),
            bills=repos.bills,
            store=store,
            gateway=_stripe_gateway(config),
            link_url=url_of,
        ),
        reconciliation=Reconciliation(store=store, bills=repos.bills),
        web_base_url=config.web_base_url,
    )


def _stripe_gateway(config: StripeConfig) -> Callable[[], StripeGateway]:
    """The gateway, made on first use (the secret is read then, and cached)."""

    @cache
    def make() -> StripeGateway:
        secrets = load_stripe_secrets(config.stripe_secret_arn)
        return StripeGateway(secrets.api_key, api_base=config.stripe_api_base)

    return make


@cache
def pay_page() -> PayPage:
    config = PayConfig()  # type: ignore[call-arg]
    dynamodb = boto3.client("dynamodb")
    return PayPage(
        links=DynamoPaymentLinkRepository(dynamodb, config.table_name),
        bills=DynamoBillRepository(dynamodb, config.table_name),
        store=DynamoPaymentStore(dynamodb, config.table_name),
        gateway=_stripe_gateway(config),
        pay_base_url=config.public_pay_base_url,
        settings=DynamoSettingsRepository(dynamodb, config.table_name),
    )


@dataclass(frozen=True)
class StripeWebhook:
    events: StripeEvents
    verify: Callable[[bytes, str | None], dict[str, object]]


@cache
def stripe_webhook() -> StripeWebhook:
    config = StripeWebhookConfig()  # type: ignore[call-arg]
    store = DynamoPaymentStore(boto3.client("dynamodb"), config.table_name)

    def verify(payload: bytes, signature: str | None) -> dict[str, object]:
        secret = load_stripe_secrets(config.stripe_secret_arn).webhook_secret
        return verify_event(payload, signature, secret)

    return StripeWebhook(events=StripeEvents(store), verify=verify)


@dataclass(frozen=True)
class SyncWorkerServices:
    sync: SyncService
    connections: DynamoConnectionRepository
    time_reserve_seconds: float


@cache
def sync_worker_services() -> SyncWorkerServices:
    config = SyncWorkerConfig()  # type: ignore[call-arg]
    repos = _repositories(config)
    clio = ClioClients(config, repos.connections)
    sync = _sync_service(config, repos, clio, config.sync_function_name)
    return SyncWorkerServices(
        sync=sync, connections=repos.connections, time_reserve_seconds=config.time_reserve_seconds
    )


@cache
def clio_webhook_service() -> ClioWebhookService:
    config = ClioWebhookConfig()  # type: ignore[call-arg]
    repos = _repositories(config)
    clio = ClioClients(config, repos.connections)
    return ClioWebhookService(
        bills=repos.bills,
        connections=repos.connections,
        verify=verify_webhook_signature,
        clio_web_host_for=clio.web_host,
    )


@cache
def send_steps() -> SendSteps:
    config = SendConfig()  # type: ignore[call-arg]
    repos = _repositories(config)
    clio = ClioClients(config, repos.connections)
    dynamodb = boto3.client("dynamodb")

    def mailer() -> SesMailer:
        return SesMailer(
            boto3.client("sesv2"),
            from_address=config.sender_address,
            configuration_set=config.ses_configuration_set,
        )

    return SendSteps(
        envelopes=DynamoSendingRepository(dynamodb, config.table_name),
        bills=repos.bills,
        links=DynamoPaymentLinkRepository(dynamodb, config.table_name),
        settings=repos.settings,
        connections=repos.connections,
        clio_for=clio.for_connection,
        mailer=mailer,
        pay_link_key=lambda: load_pay_link_key(config.pay_link_secret_arn),
        pay_base_url=config.public_pay_base_url,
    )


@cache
def delivery_events() -> DeliveryEvents:
    config = SesEventsConfig()  # type: ignore[call-arg]
    return DeliveryEvents(DynamoSendingRepository(boto3.client("dynamodb"), config.table_name))


def reset() -> None:
    api_services.cache_clear()
    sync_worker_services.cache_clear()
    clio_webhook_service.cache_clear()
    send_steps.cache_clear()
    delivery_events.cache_clear()
    pay_page.cache_clear()
    stripe_webhook.cache_clear()
