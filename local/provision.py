"""Creating, in moto (in-process or server), the AWS resources template.yaml declares, and the
environment the handlers read in AWS. Shared by the tests and the local stack."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from botocore.exceptions import ClientError

from billbridge.services.ports import PaymentAccounts
from local import cognito, moto_speedups
from local.aws_template import create_dynamodb_tables, create_s3_buckets
from local.lambdas import ROLE_NAME, LocalLambdas
from local.outbox import verify_sender
from local.stepfunctions import create_state_machines

REGION = "us-east-1"
STACK_NAME = "billbridge-local"
TOKEN_KEY_ALIAS = f"alias/{STACK_NAME}/clio-tokens"
STRIPE_SECRET_NAME = f"{STACK_NAME}/stripe"
SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
SENDER_ADDRESS = "billing@billbridge.local"
# The Stripe sandbox's platform key (the sandbox accepts only this one).
STRIPE_API_KEY = "sk_test_sandbox"

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "billbridge",
    "POWERTOOLS_METRICS_NAMESPACE": "BillBridge",
    "POWERTOOLS_TRACE_DISABLED": "true",
    # Lambda turns the metrics' EMF lines into CloudWatch metrics; locally they are only noise.
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    "LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class Provisioned:
    env: dict[str, str]
    table_name: str
    lambdas: LocalLambdas
    user_pool: cognito.UserPoolInfo


def provision(
    *,
    api_base_url: str,
    clio_base_url: str,
    web_base_url: str | None = None,
    clio_webhooks: bool = True,
    lambda_mode: str = "thread",
    endpoint_url: str | None = None,
    stripe_api_base: str | None = None,
    stripe_webhook_secret: str = "whsec_local",
    clock_file: str | None = None,
    stripe_connect_webhook_secret: str | None = None,
) -> Provisioned:
    """Create the resources and return the handlers' environment variables.

    Call inside `mock_aws()` (tests) or with `endpoint_url` of a moto server (local stack).
    `lambda_mode` is where functions run (local/lambdas.py): "process" (worker processes,
    which reach the moto server at `endpoint_url`) or one of the in-process modes.
    `clock_file` is the local clock's offset file (local/clock.py), which every function
    then reads its "now" from."""
    moto_speedups.install()
    cognito.install()
    kwargs: dict[str, Any] = {"region_name": REGION}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    # Create or restore: a restarted local stack finds its key and secrets already restored
    # into moto (local/persistence) and keeps them, and its user pool (below); everything else
    # is made anew, by name.
    tables = create_dynamodb_tables(
        boto3.client("dynamodb", **kwargs),
        name_for=lambda logical: f"{STACK_NAME}-{logical}",
        exist_ok=True,
    )
    key_id = _token_key(boto3.client("kms", **kwargs))
    secrets_client = boto3.client("secretsmanager", **kwargs)
    secret_arn = _secret(
        secrets_client,
        f"{STACK_NAME}/clio-app",
        lambda: {
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "state_signing_key": secrets.token_hex(32),
        },
    )
    pay_link_secret_arn = _secret(
        secrets_client,
        f"{STACK_NAME}/pay-link",
        lambda: {"signing_key": secrets.token_hex(32)},
    )
    stripe_value = {"api_key": STRIPE_API_KEY, "webhook_secret": stripe_webhook_secret}
    if stripe_connect_webhook_secret:
        stripe_value["connect_webhook_secret"] = stripe_connect_webhook_secret
    stripe_secret_arn = _secret(
        secrets_client, STRIPE_SECRET_NAME, lambda: stripe_value, replace_with=stripe_value
    )
    buckets = create_s3_buckets(
        boto3.client("s3", **kwargs),
        name_for=lambda logical: f"{STACK_NAME}-{logical}".lower(),
        exist_ok=True,
    )
    # The firm user pool, its clients and groups: a restarted local stack finds it restored
    # with its ids, keys and users (local/persistence), and keeps it.
    user_pool = cognito.create_user_pool(
        boto3.client("cognito-idp", **kwargs),
        stack_name=STACK_NAME,
        endpoint=endpoint_url or f"https://cognito-idp.{REGION}.amazonaws.com",
        region=REGION,
    )
    # moto's SES refuses mail from an identity that is not verified, as SES does.
    verify_sender(boto3.client("ses", **kwargs), SENDER_ADDRESS)
    lambdas = LocalLambdas(stack_name=STACK_NAME, mode=lambda_mode)
    iam = boto3.client("iam", **kwargs)
    lambdas.register(boto3.client("lambda", **kwargs), iam)
    lambdas.install()
    machines = create_state_machines(
        boto3.client("stepfunctions", **kwargs),
        lambdas,
        role_arn=iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"],
        stack_name=STACK_NAME,
    )
    env = {
        **FAKE_AWS_ENV,
        **POWERTOOLS_ENV,
        "STAGE": "local",
        "TABLE_NAME": tables["AppTable"],
        "BILL_PDF_BUCKET": buckets["BillPdfBucket"],
        "TOKEN_KMS_KEY_ID": key_id,
        "CLIO_APP_SECRET_ARN": secret_arn,
        "CLIO_REDIRECT_URI": f"{api_base_url}/clio/callback",
        "CLIO_BASE_URL": clio_base_url,
        "WEB_BASE_URL": web_base_url or f"{api_base_url}/",
        "SYNC_FUNCTION_NAME": lambdas.name_of("SyncWorkerFunction"),
        "SYNC_TIME_RESERVE_SECONDS": "5",
        "SEND_STATE_MACHINE_ARN": machines["SendEnvelopesStateMachine"],
        "SENDER_ADDRESS": SENDER_ADDRESS,
        "PAY_LINK_SECRET_ARN": pay_link_secret_arn,
        "PUBLIC_PAY_BASE_URL": api_base_url,
        "STRIPE_SECRET_ARN": stripe_secret_arn,
        "USER_POOL_ID": user_pool.user_pool_id,
        "SIGNUP_CLIENT_ID": user_pool.signup_client_id,
    }
    if stripe_api_base:
        env["STRIPE_API_BASE"] = stripe_api_base
    if clock_file:
        env["LOCAL_CLOCK_FILE"] = clock_file
    if clio_webhooks:
        env["PUBLIC_API_BASE_URL"] = api_base_url
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    if lambda_mode == "process":
        lambdas.start_workers(env)
    return Provisioned(env=env, table_name=tables["AppTable"], lambdas=lambdas, user_pool=user_pool)


def _token_key(kms: Any) -> str:
    """The KMS key of the Clio tokens, found by its alias or made (with the alias)."""
    try:
        return str(kms.describe_key(KeyId=TOKEN_KEY_ALIAS)["KeyMetadata"]["KeyId"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NotFoundException":
            raise
    key_id = str(kms.create_key(Description="Clio tokens (local)")["KeyMetadata"]["KeyId"])
    kms.create_alias(AliasName=TOKEN_KEY_ALIAS, TargetKeyId=key_id)
    return key_id


def _secret(
    client: Any,
    name: str,
    initial: Callable[[], dict[str, str]],
    *,
    replace_with: dict[str, str] | None = None,
) -> str:
    """The ARN of secret `name`: kept when it exists (its value too, unless `replace_with`
    differs from it), else created with `initial()`."""
    try:
        found = client.get_secret_value(SecretId=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return str(client.create_secret(Name=name, SecretString=json.dumps(initial()))["ARN"])
    if replace_with is not None and json.loads(found["SecretString"]) != replace_with:
        client.put_secret_value(SecretId=name, SecretString=json.dumps(replace_with))
    return str(found["ARN"])


def saved_stripe_webhook_secret(
    endpoint_url: str | None = None, name: str = "webhook_secret"
) -> str | None:
    """The webhook signing secret a restarted stack kept (the Stripe sandbox signs with it
    and the webhook handler checks it), or None on a first start. `name`:
    `connect_webhook_secret` for the Connect endpoint's."""
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint_url)
    try:
        found = client.get_secret_value(SecretId=STRIPE_SECRET_NAME)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return None
    value = json.loads(found["SecretString"]).get(name)
    return str(value) if value else None


def create_payment_accounts(
    stripe_api_base: str, table_name: str, firm_id: str, display_name: str | None = None
) -> PaymentAccounts:
    """Onboarding done at once (the local control and the demo firm): a Stripe connected
    account per bank account (trust and operating), completed in the Stripe sandbox, recorded
    for the firm as ready. The product's own onboarding is `POST /payment-accounts/onboarding`."""
    import stripe

    from billbridge.adapters.dynamo_payments import DynamoPaymentStore
    from billbridge.adapters.stripe_gateway import account_params
    from billbridge.domain.payments import Account
    from billbridge.services.ports import ConnectedAccountRequest

    client = stripe.StripeClient(STRIPE_API_KEY, base_addresses={"api": stripe_api_base})
    name = display_name or f"{firm_id.replace('-', ' ').title()} LLP"
    made = {}
    for account in ("trust", "operating"):
        request = ConnectedAccountRequest(firm_id, Account(account), f"{name} ({account})", "")
        params: Any = account_params(request)
        made[account] = client.v1.accounts.create(params=params).id
        # Onboarded at once, as a person finishing the sandbox's onboarding page would.
        complete = f"{stripe_api_base}/_sandbox/accounts/{made[account]}/complete"
        done = requests.post(complete, timeout=30)
        done.raise_for_status()
    accounts = PaymentAccounts(
        firm_id=firm_id,
        trust_account_id=str(made["trust"]),
        operating_account_id=str(made["operating"]),
    )
    DynamoPaymentStore(boto3.client("dynamodb"), table_name).save_payment_accounts(accounts)
    return accounts
