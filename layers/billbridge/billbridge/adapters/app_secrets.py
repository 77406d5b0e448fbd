"""The Clio developer app's credentials, read from Secrets Manager and cached per container."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_lambda_powertools.utilities import parameters

CACHE_SECONDS = 300


@dataclass(frozen=True)
class ClioAppSecrets:
    client_id: str
    client_secret: str = field(repr=False)
    state_signing_key: bytes = field(repr=False)


def load_clio_app_secrets(secret_arn: str) -> ClioAppSecrets:
    value = parameters.get_secret(secret_arn, transform="json", max_age=CACHE_SECONDS)
    if not isinstance(value, dict):
        raise RuntimeError("the Clio app secret must be a JSON object")
    return ClioAppSecrets(
        client_id=str(value["client_id"]),
        client_secret=str(value["client_secret"]),
        state_signing_key=str(value["state_signing_key"]).encode(),
    )


def load_pay_link_key(secret_arn: str) -> bytes:
    value = parameters.get_secret(secret_arn, transform="json", max_age=CACHE_SECONDS)
    if not isinstance(value, dict) or not value.get("signing_key"):
        raise RuntimeError("the payment link secret must be a JSON object with signing_key")
    return str(value["signing_key"]).encode()


@dataclass(frozen=True)
class StripeSecrets:
    api_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    # The Connect endpoint's own signing secret (events about connected accounts), if set.
    connect_webhook_secret: str | None = field(default=None, repr=False)


def load_stripe_secrets(secret_arn: str) -> StripeSecrets:
    value = parameters.get_secret(secret_arn, transform="json", max_age=CACHE_SECONDS)
    if not isinstance(value, dict) or not value.get("api_key") or not value.get("webhook_secret"):
        raise RuntimeError("the Stripe secret must be a JSON object with api_key, webhook_secret")
    connect = value.get("connect_webhook_secret")
    return StripeSecrets(
        api_key=str(value["api_key"]),
        webhook_secret=str(value["webhook_secret"]),
        connect_webhook_secret=str(connect) if connect else None,
    )
