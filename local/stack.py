"""The whole product on one laptop: `python -m local.stack` (what `make run` starts).

On 127.0.0.1 it starts the AWS emulator (a moto server holding the resources template.yaml
declares), the Clio sandbox with a `demo` account of varied bills, the Stripe sandbox (its
webhooks signed and sent to the API), and the API with the web UI behind a local API Gateway;
connects firm `demo` to Clio through the real OAuth redirects and gives it Stripe accounts; and
ticks the scheduled sync every minute, as EventBridge would. Every function runs in worker
processes of its own (local/pool.py), as Lambda runs it. The local controls (`/_local/`,
local/controls.py) need the admin token printed in the banner. Ctrl-C or SIGTERM stops
everything, in order, within seconds.

What it holds is kept in `.local/` (or `LOCAL_STATE_DIR`) as it changes, and found again at
the next start; `--fresh` (`make run FRESH=1`) starts clean. See docs/local-stack.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import requests
from moto.server import ThreadedMotoServer

from billbridge.adapters.dynamo_envelopes import DynamoSendingRepository
from local import controls
from local.apigw import LocalApiGateway
from local.authorizer import CognitoAuthorizer
from local.clio_sandbox import ClioSandbox
from local.clio_sandbox.seed import seed_demo
from local.clock import CLOCK_FILE_NAME, LocalClock
from local.cognito import LocalUserError, UserPoolInfo, make_user
from local.controls import LocalControls
from local.lambdas import LocalLambdas
from local.outbox import read_outbox_in_process
from local.persistence import LocalState, StateError, state_dir
from local.provision import (
    FAKE_AWS_ENV,
    REGION,
    STRIPE_API_KEY,
    create_payment_accounts,
    provision,
    saved_stripe_webhook_secret,
)
from local.stepfunctions import enable_execution_in_server
from local.stripe_sandbox import StripeSandbox

HOST = "127.0.0.1"
CLIO_WEBHOOK_TRIES = 5
CLIO_WEBHOOK_BACKOFF_SECONDS = 1.0


@dataclass
class Ports:
    api: int
    clio: int
    stripe: int
    aws: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            api=int(os.environ.get("API_PORT", "3000")),
            clio=int(os.environ.get("CLIO_SANDBOX_PORT", "3001")),
            stripe=int(os.environ.get("STRIPE_SANDBOX_PORT", "3002")),
            aws=int(os.environ.get("AWS_EMULATOR_PORT", "5000")),
        )


def scheduled_event(now: datetime, rule: str = "billbridge-local-sync-schedule") -> dict[str, Any]:
    """The event EventBridge hands a schedule's target (moto's never fires)."""
    return {
        "version": "0",
        "id": f"local-{int(now.timestamp())}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
        "detail": {},
    }


def connect_firm(api_url: str, firm_id: str, clio_account: str) -> None:
    """Walk the OAuth redirects as a browser would: our connect, Clio's authorize, our callback.
    One cookie jar throughout, as a browser keeps: the connect's answer sets the cookie the
    callback must bring back (the callback itself carries no Authorization header)."""
    browser = requests.Session()
    start = browser.get(
        f"{api_url}/clio/connect",
        headers={"Authorization": f"Bearer dev-{firm_id}"},
        allow_redirects=False,
        timeout=60,
    )
    start.raise_for_status()
    authorize = start.headers["Location"] + "&" + urlencode({"sandbox_account": clio_account})
    approved = browser.get(authorize, allow_redirects=False, timeout=60)
    callback = browser.get(approved.headers["Location"], allow_redirects=False, timeout=60)
    if callback.status_code != 302:
        raise RuntimeError(f"connecting {firm_id} failed: {callback.status_code} {callback.text}")


def name_firm(api_url: str, firm_id: str, name: str) -> None:
    """The firm's name in its settings: emails and the pay page show it."""
    headers = {"Authorization": f"Bearer dev-{firm_id}"}
    settings = requests.get(f"{api_url}/settings", headers=headers, timeout=60).json()
    settings["firm_name"] = name
    requests.put(
        f"{api_url}/settings", json=settings, headers=headers, timeout=60
    ).raise_for_status()


class Stack:
    def __init__(
        self,
        ports: Ports,
        *,
        seed: bool = True,
        clio_rate_limit: int = 50,
        saved: LocalState | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.ports = ports
        self.seed = seed
        self.clio_rate_limit = clio_rate_limit
        # Where the stack's data is kept between runs; None keeps it in memory only.
        self.saved = saved
        self.restored: dict[str, int] = {}  # items restored per table
        token_file = (saved.directory if saved is not None else controls.TOKEN_FILE.parent) / (
            controls.TOKEN_FILE.name
        )
        self.admin_token = admin_token or controls.admin_token(path=token_file)
        self._stop = threading.Event()
        self._stopped = False
        self.lambdas: LocalLambdas | None = None
        self.table_name = ""
        # Run by stop() once nothing writes any more (functions, sandboxes and the emulator
        # stopped): each flushes and closes something. `on_stop()` adds one.
        self.closers: list[Callable[[], None]] = []
        # [persistence] the clock's offset lives beside the kept state, so a restart keeps it;
        # a stack that keeps nothing gets a folder of its own for it.
        if saved is not None:
            clock_dir = saved.directory
        else:
            clock_dir = Path(tempfile.mkdtemp(prefix="billbridge-clock-"))
            self.on_stop(lambda: shutil.rmtree(clock_dir, ignore_errors=True))
        self.clock = LocalClock(clock_dir / CLOCK_FILE_NAME)
        self.moto: ThreadedMotoServer | None = None
        self.clio: ClioSandbox | None = None
        self.stripe: StripeSandbox | None = None
        self.api: LocalApiGateway | None = None
        self.user_pool: UserPoolInfo | None = None
        # The demo firm's admin, made at each start (docs/auth.md): (email, password).
        self.demo_admin: tuple[str, str] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports.api}"

    def on_stop(self, closer: Callable[[], None]) -> None:
        self.closers.append(closer)

    def start(self) -> None:
        # The emulator's per-request access log would drown the banner.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.moto = ThreadedMotoServer(ip_address=HOST, port=self.ports.aws, verbose=False)
        self.moto.start()
        aws_url = f"http://{HOST}:{self.ports.aws}"
        os.environ["MOTO_PORT"] = str(self.ports.aws)
        os.environ.update(FAKE_AWS_ENV)
        if self.saved is not None:  # [persistence] keys, secrets, outbox; saving from now on
            self.saved.restore_aws()
        enable_execution_in_server(aws_url)
        self.clio = ClioSandbox(
            host=HOST,
            port=self.ports.clio,
            rate_limit=self.clio_rate_limit,
            clock=self.clock.timestamp,
            # Clio's schedule (5 attempts, doubling from 2 minutes), from 1 s: a delivery the
            # API throttled or did not answer in time is retried within 15 s.
            webhook_tries=CLIO_WEBHOOK_TRIES,
            webhook_backoff_seconds=CLIO_WEBHOOK_BACKOFF_SECONDS,
        )
        if self.saved is not None:  # [persistence] the Clio sandbox's accounts, bills, tokens
            self.saved.attach_clio(self.clio)
        self.clio.start()
        seeding = self._seeding()
        if seeding and "demo" not in self.clio.state.accounts:
            seed_demo(self.clio.state, "demo")
        # [persistence] the secret the handler verifies with is kept, so signing goes on
        kept_secret = saved_stripe_webhook_secret(aws_url) if self.saved is not None else None
        webhook_secret = kept_secret or f"whsec_{secrets.token_hex(16)}"
        kept_connect = (
            saved_stripe_webhook_secret(aws_url, "connect_webhook_secret")
            if self.saved is not None
            else None
        )
        # The Connect endpoint (account.updated) signs with its own secret, as on Stripe.
        connect_secret = kept_connect or f"whsec_{secrets.token_hex(16)}"
        self.stripe = StripeSandbox(
            host=HOST,
            port=self.ports.stripe,
            api_key=STRIPE_API_KEY,
            webhook_url=f"{self.api_url}/webhooks/stripe",
            webhook_secret=webhook_secret,
            clock=self.clock.timestamp,
            connect_webhook_secret=connect_secret,
        )
        if self.saved is not None:  # [persistence] the Stripe sandbox's objects and events
            self.saved.attach_stripe(self.stripe)
        self.stripe.start()
        provisioned = provision(
            api_base_url=self.api_url,
            clio_base_url=self.clio.url,
            endpoint_url=aws_url,
            stripe_api_base=self.stripe.url,
            stripe_webhook_secret=webhook_secret,
            stripe_connect_webhook_secret=connect_secret,
            lambda_mode="process",
            clock_file=str(self.clock.path),
        )
        if self.saved is not None:  # [persistence] the items, before anything reads them
            self.restored = self.saved.restore_tables()
        self.table_name = provisioned.table_name
        # This process's own AWS calls (the ticker, onboarding) go to the emulator too.
        os.environ.update(provisioned.env)
        self.lambdas = provisioned.lambdas
        self.user_pool = provisioned.user_pool
        self.api = LocalApiGateway(
            provisioned.lambdas,
            host=HOST,
            port=self.ports.api,
            extra_routes={"/_local/": LocalControls(self, self.admin_token)},
            authorizer=CognitoAuthorizer(provisioned.user_pool),
            web_config=self.web_config,
        )
        self.api.start()
        self.api.provision_retrying_senders()
        if self.saved is not None:  # [persistence] webhooks a stop cut off
            self.saved.send_owed_webhooks(self.stripe)
        if seeding:
            self._seed_demo_firm()
        if self._seeded_demo():
            self.demo_admin = self._make_demo_admin()
        threading.Thread(target=self._tick, daemon=True, name="schedule").start()

    def _seeding(self) -> bool:
        """Whether the demo firm is (still) to be made: on a clean state when asked for, or
        when the start that began it was stopped before it was done. A restart never seeds
        again (it would duplicate the demo bills and reconnect the firm)."""
        if self.saved is None:
            return self.seed
        if self.saved.clean:
            self.saved.write_note("seed", "demo" if self.seed else "none")
        return bool(self.saved.note("seed") == "demo" and not self.saved.note("seeded"))

    def _seed_demo_firm(self) -> None:
        # Each step checks its own result first, so a seeding cut short finishes next start.
        headers = {"Authorization": "Bearer dev-demo"}
        status = requests.get(f"{self.api_url}/clio/status", headers=headers, timeout=60)
        if status.json().get("status") != "connected":
            connect_firm(self.api_url, "demo", "demo")
        if self._payment_store().payment_accounts("demo") is None:
            self.payment_accounts("demo", "Demo Law LLP")
        name_firm(self.api_url, "demo", "Demo Law LLP")
        if self.saved is not None:
            self.saved.write_note("seeded", True)

    def _seeded_demo(self) -> bool:
        if self.saved is None:
            return self.seed
        return bool(self.saved.note("seed") == "demo")

    def _make_demo_admin(self) -> tuple[str, str]:
        """The demo firm's admin, to sign in to the web UI with: made on the first start (the
        password kept in the state folder), found in the kept pool on a restart."""
        email = os.environ.get("LOCAL_DEMO_EMAIL", "admin@demo-law.example")
        password = os.environ.get("LOCAL_DEMO_PASSWORD", "")
        if not password and self.saved is not None:
            password = str(self.saved.note("demo_admin_password") or "")
        if not password:
            password = f"Demo-{secrets.token_urlsafe(9)}1a"
            if self.saved is not None:
                self.saved.write_note("demo_admin_password", password)
        try:
            self.make_user(email, password, "demo", "admin")
        except LocalUserError as exc:
            if exc.code != "email_taken":
                raise
            # Kept from an earlier start: the banner's password is made true again (it may
            # come from LOCAL_DEMO_PASSWORD, or have been changed since).
            assert self.user_pool is not None
            boto3.client("cognito-idp", region_name=self.user_pool.region).admin_set_user_password(
                UserPoolId=self.user_pool.user_pool_id,
                Username=email,
                Password=password,
                Permanent=True,
            )
        return email, password

    def make_user(self, email: str, password: str, firm_id: str, role: str) -> dict[str, str]:
        """A confirmed user of the emulated pool in the firm and role (`POST /_local/users`)."""
        assert self.user_pool is not None and self.table_name
        return make_user(self.user_pool, self.table_name, email, password, firm_id, role)

    def web_config(self) -> bytes:
        """The web UI's config.js: sign-in against the emulated pool, as a deploy's outputs
        fill it in (template.yaml's WebConfigJs)."""
        assert self.user_pool is not None
        auth = {
            "mode": "cognito",
            "region": self.user_pool.region,
            "userPoolId": self.user_pool.user_pool_id,
            "clientId": self.user_pool.client_id,
            "endpoint": self.user_pool.endpoint,
        }
        config = {"apiBase": "", "auth": auth}
        return f"window.BILLBRIDGE_CONFIG = {json.dumps(config)};\n".encode()

    def payment_accounts(self, firm_id: str, name: str | None = None) -> Any:
        """Onboard a firm to payments (trust and operating Stripe accounts in the sandbox)."""
        assert self.stripe is not None
        return create_payment_accounts(self.stripe.url, self.table_name, firm_id, name)

    def outbox(self) -> list[dict[str, Any]]:
        return read_outbox_in_process()

    def firm_of_message(self, message_id: str) -> str | None:
        """The firm whose envelope an email is (the send step records it by SES message id)."""
        owner = DynamoSendingRepository(
            boto3.client("dynamodb"), self.table_name
        ).envelope_of_message(message_id)
        return owner[0] if owner else None

    def worker_pids(self) -> list[int]:
        return self.lambdas.worker_pids() if self.lambdas is not None else []

    def functions(self) -> dict[str, Any]:
        return self.lambdas.describe() if self.lambdas is not None else {}

    def _payment_store(self) -> Any:
        from billbridge.adapters.dynamo_payments import DynamoPaymentStore

        return DynamoPaymentStore(boto3.client("dynamodb"), self.table_name)

    def clock_now(self) -> datetime:
        return self.clock.now()

    def set_clock(self, now: datetime) -> datetime:
        """`POST /_local/clock`: every function, schedule and sandbox reads the new time from
        their next clock read on (local/clock.py)."""
        return self.clock.set(now)

    def tick(self) -> dict[str, Any]:
        """Every schedule once, now (the local clock's now), as EventBridge would fire them:
        the sync (asynchronously, as EventBridge invokes it) and the reminders (waited for, so
        the answer says how many reminders this tick started)."""
        client = boto3.client("lambda", region_name=REGION)
        now = self.clock.now()
        client.invoke(
            FunctionName=os.environ["SYNC_FUNCTION_NAME"],
            InvocationType="Event",
            Payload=json.dumps(scheduled_event(now)).encode(),
        )
        assert self.lambdas is not None
        answer = client.invoke(
            FunctionName=self.lambdas.name_of("RemindersFunction"),
            InvocationType="RequestResponse",
            Payload=json.dumps(
                scheduled_event(now, "billbridge-local-reminders-schedule")
            ).encode(),
        )
        result = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            raise RuntimeError(f"the reminders tick failed: {result}")
        return {"reminders": result, "plans": self.tick_plans(client, now)}

    def tick_plans(self, client: Any, now: datetime) -> Any:
        """The payment plans' schedule (EventBridge's hourly tick in AWS), waited for: the
        end-to-end tests read the plan right after `POST /_local/tick`."""
        assert self.lambdas is not None
        answer = client.invoke(
            FunctionName=self.lambdas.name_of("PlanInstallmentsFunction"),
            InvocationType="RequestResponse",
            Payload=json.dumps(
                scheduled_event(now, "billbridge-local-plan-installments-schedule")
            ).encode(),
        )
        result = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            raise RuntimeError(f"the payment plans tick failed: {result}")
        return result

    def _tick(self) -> None:
        # EventBridge's rate(1 minute); the end-to-end tests tick by hand (POST /_local/tick)
        # and set LOCAL_SYNC_TICK_SECONDS high, so no sync lands between a test's steps.
        interval = float(os.environ.get("LOCAL_SYNC_TICK_SECONDS", "60"))
        while not self._stop.wait(interval):
            try:
                self.tick()
            except Exception as exc:  # the ticker must outlive one bad minute
                print(f"scheduled sync tick failed: {exc}", file=sys.stderr)

    def stop(self) -> None:
        """Idempotent; each step runs even when an earlier one failed."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        steps: list[tuple[str, Callable[[], None] | None]] = [
            ("API", self.api.stop if self.api else None),
            ("functions", self.lambdas.shutdown if self.lambdas else None),
            ("Clio sandbox", self.clio.stop if self.clio else None),
            ("Stripe sandbox", self.stripe.stop if self.stripe else None),
            ("AWS emulator", self.moto.stop if self.moto else None),
            *((f"closer {getattr(c, '__qualname__', c)}", c) for c in self.closers),
            # [persistence] last: flush and close the kept state
            ("kept state", self.saved.close if self.saved is not None else None),
        ]
        for name, step in steps:
            if step is None:
                continue
            began = time.monotonic()
            try:
                step()
            except Exception as exc:  # stopping must go on to the next part
                print(f"stopping the {name} failed: {exc!r}", file=sys.stderr)
            took = time.monotonic() - began
            if took > 1.0:
                print(f"stopping the {name} took {took:.1f} s", file=sys.stderr)

    def banner(self) -> str:
        return "\n".join(
            [
                "BillBridge local stack is up:",
                f"  web UI and API  {self.api_url}/",
                *self._demo_lines(),
                f"  Clio sandbox    http://{HOST}:{self.ports.clio}",
                f"  Stripe sandbox  http://{HOST}:{self.ports.stripe}   (checkout pages, "
                "/_sandbox/events)",
                f"  AWS emulator    http://{HOST}:{self.ports.aws}",
                f"  local controls  {self.api_url}/_local/   (health needs no token)",
                f"  admin token     {self.admin_token}",
                "Try:",
                "  curl -s -H 'Authorization: Bearer dev-demo' "
                f"'{self.api_url}/invoices?page_size=5'",
                f"  curl -s -H 'Authorization: Bearer {self.admin_token}' "
                f"{self.api_url}/_local/outbox",
                "Ctrl-C stops everything.",
                self._state_line(),
            ]
        )

    def _demo_lines(self) -> list[str]:
        if self.demo_admin is None:
            return []
        email, password = self.demo_admin
        return [f"  sign in as      {email}   password {password}   (firm 'demo', admin)"]

    def _state_line(self) -> str:
        if self.saved is None:
            return "Nothing is kept: the next start begins empty."
        where = self.saved.directory
        if self.saved.clean:
            return f"Data is kept in {where} (a clean start: `make run FRESH=1`)."
        items = sum(self.restored.values())
        return f"Data restored from {where} ({items} items); `make run FRESH=1` starts clean."


# The longest a stop may take before the process ends regardless (a stuck part is not a reason
# to keep the ports and the workers).
STOP_DEADLINE_SECONDS = 15.0


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; a second signal ends the process at once."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-seed", action="store_true", help="no demo firm, no demo bills")
    parser.add_argument("--clio-rate-limit", type=int, default=50)
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start clean: wipe the kept state (LOCAL_STATE_DIR, default .local/) first",
    )
    args = parser.parse_args(argv)
    try:
        saved = LocalState.open(state_dir(), fresh=args.fresh)
    except StateError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    stack = Stack(
        Ports.from_env(),
        seed=not args.no_seed,
        clio_rate_limit=args.clio_rate_limit,
        saved=saved,
    )
    stopping = threading.Event()
    started = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stopping.is_set():
            os._exit(128 + signum)
        stopping.set()
        if not started.is_set():
            raise KeyboardInterrupt  # abandon a start in progress

    # Set here, not inherited: a shell starting the stack in the background ignores SIGINT.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        started.set()
        print(stack.banner(), flush=True)
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        started.set()
        watchdog = threading.Timer(STOP_DEADLINE_SECONDS, os._exit, args=(1,))
        watchdog.daemon = True
        watchdog.start()
        print("stopping the local stack...", file=sys.stderr, flush=True)
        stack.stop()
        watchdog.cancel()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything was stopped and the kept state closed; what threads remain (a request still
    # being answered, an execution's sleep between retries) must not hold the process.
    os._exit(code)
