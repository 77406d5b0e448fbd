"""Settings from environment variables, parsed once per handler into typed models.

Services never read os.environ; handlers build these at import time and fail fast when one is
missing. Secrets are not environment variables: only the ARN of the secret that holds them.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EnvSettings(BaseModel):
    """A model whose fields come from the environment, by their aliases (the variable names).

    What pydantic-settings did for us, in a few lines: importing it (with python-dotenv and its
    CLI support) cost every cold start tens of milliseconds."""

    # Built on first use: a handler makes one of these classes, never the others.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**os.environ, **values})


class CommonConfig(EnvSettings):
    table_name: str = Field(alias="TABLE_NAME")
    stage: str = Field(default="dev", alias="STAGE")
    # Local stack only: the file of the local clock's offset (adapters/shifted_clock.py); in
    # AWS it is unset and the clock is the real one.
    local_clock_file: str | None = Field(default=None, alias="LOCAL_CLOCK_FILE")


class StoreConfig(CommonConfig):
    # KMS key that encrypts Clio tokens and webhook secrets at rest.
    token_key_id: str = Field(alias="TOKEN_KMS_KEY_ID")
    # Local stack only: every region's Clio host replaced by the Clio sandbox.
    clio_base_url: str | None = Field(default=None, alias="CLIO_BASE_URL")


class ClioConfig(StoreConfig):
    # Secrets Manager secret holding {"client_id", "client_secret", "state_signing_key"}.
    clio_app_secret_arn: str = Field(alias="CLIO_APP_SECRET_ARN")
    clio_redirect_uri: str = Field(alias="CLIO_REDIRECT_URI")
    # Public base URL of this API (for Clio webhook subscriptions); none = no webhooks.
    public_api_base_url: str | None = Field(default=None, alias="PUBLIC_API_BASE_URL")
    # Where the OAuth callback sends the browser once connected (the web UI).
    web_base_url: str = Field(default="/", alias="WEB_BASE_URL")


class PayLinkConfig(EnvSettings):
    # Secrets Manager secret holding {"signing_key"}: payment link tokens derive from it.
    pay_link_secret_arn: str = Field(alias="PAY_LINK_SECRET_ARN")
    # Where clients open their pay page: {PUBLIC_PAY_BASE_URL}/pay/{token}.
    public_pay_base_url: str = Field(alias="PUBLIC_PAY_BASE_URL")


class PdfCacheConfig(EnvSettings):
    # The S3 bucket of rendered bill PDFs (one object per bill version).
    bill_pdf_bucket: str = Field(alias="BILL_PDF_BUCKET")


class ApiConfig(ClioConfig, PdfCacheConfig):
    sync_function_name: str = Field(alias="SYNC_FUNCTION_NAME")
    send_state_machine_arn: str = Field(alias="SEND_STATE_MACHINE_ARN")


class MailConfig(EnvSettings):
    # The verified SES identity envelopes and receipts are sent from.
    sender_address: str = Field(alias="SENDER_ADDRESS")
    # SES configuration set whose event destination reports delivery, bounce, complaint.
    ses_configuration_set: str | None = Field(default=None, alias="SES_CONFIGURATION_SET")


class SendConfig(ClioConfig, PayLinkConfig, PdfCacheConfig, MailConfig):
    pass


class SesEventsConfig(CommonConfig):
    pass


class SyncWorkerConfig(ClioConfig, PdfCacheConfig):
    sync_function_name: str = Field(alias="SYNC_FUNCTION_NAME")
    # Seconds of Lambda time kept in reserve: below it the run checkpoints and re-invokes itself.
    time_reserve_seconds: float = Field(default=30.0, alias="SYNC_TIME_RESERVE_SECONDS")
    # At most this many bill PDFs prefetched per sync run (0 turns the prefetch off); Clio's
    # rate window bounds it further (services/bill_pdfs.py).
    pdf_prefetch_per_run: int = Field(default=100, ge=0, alias="PDF_PREFETCH_PER_RUN")


class ClioWebhookConfig(StoreConfig):
    pass


class StripeConfig(EnvSettings):
    # Secrets Manager secret holding {"api_key", "webhook_secret"} of the Stripe platform.
    stripe_secret_arn: str = Field(alias="STRIPE_SECRET_ARN")
    # Local stack only: the Stripe sandbox's address instead of api.stripe.com.
    stripe_api_base: str | None = Field(default=None, alias="STRIPE_API_BASE")


class PayConfig(ClioConfig, PayLinkConfig, StripeConfig, PdfCacheConfig):
    # Clio and the PDF cache: the pay page serves its bills' PDFs (from Clio when not cached).
    pass


class StripeWebhookConfig(CommonConfig, StripeConfig, PayLinkConfig, MailConfig):
    # SES and the pay link key: receipts (a failed bank payment's links back to the pay page).
    pass


class PaymentsApiConfig(ApiConfig, PayLinkConfig, StripeConfig, MailConfig):
    # SES: the receipt of a refund made from the firm's screen; its identity's status is shown
    # on the onboarding checklist (MailConfig's sender_address).
    pass


class PlanInstallmentsConfig(CommonConfig, PayLinkConfig, StripeConfig, MailConfig):
    # The scheduled tick that charges payment plans' installments (services/plans.py).
    pass


class RemindersConfig(StoreConfig):
    """The reminders function (X3): it reads connections, settings and bills, and starts the
    send workflow for each reminder it claims."""

    send_state_machine_arn: str = Field(alias="SEND_STATE_MACHINE_ARN")


class AccountsConfig(CommonConfig):
    # The firm user pool and the API's own sign-up client (docs/auth.md).
    user_pool_id: str = Field(alias="USER_POOL_ID")
    signup_client_id: str = Field(alias="SIGNUP_CLIENT_ID")
