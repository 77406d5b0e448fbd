"""Stripe Connect in the sandbox: connected accounts (`POST /v1/accounts`), Account Links
(`POST /v1/account_links`), the hosted onboarding a person clicks through, and the
`account.updated` events each change sends to the Connect endpoint.

A new account can do nothing yet, as on Stripe: `charges_enabled` and `payouts_enabled` are
false, its `transfers` capability is inactive (so a destination charge to it is refused), and
`requirements.currently_due` (and `past_due`, with `disabled_reason` `requirements.past_due`)
lists what onboarding must collect. Each onboarding step removes its fields; the last one
enables charges and payouts. Account Links expire 300 seconds after creation; an expired link
sends the person to its `refresh_url`, as Stripe does.

The mixin runs on `SandboxState` (its `objects`, `_new`, `_emit`, `now` and lock).
"""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING, Any

from local.stripe_sandbox.params import (
    ACCOUNT_LINK_PARAMS,
    ACCOUNT_PARAMS,
    ControlError,
    Obj,
    StripeApiError,
    as_metadata,
    as_url,
    check_params,
    missing,
)

LINK_TTL_SECONDS = 300
CAPABILITIES = ("card_payments", "transfers")

# The hosted onboarding's steps: (title, the requirements it collects, the fields it shows).
STEPS: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Business details",
        (
            "business_type",
            "company.name",
            "company.tax_id",
            "company.address.line1",
            "business_profile.mcc",
            "business_profile.url",
        ),
        (
            ("company_name", "Legal business name", "Demo Law LLP"),
            ("tax_id", "Employer ID number (EIN)", "000000000"),
            ("address", "Business address", "1 Main Street, Springfield"),
            ("url", "Website", "https://example.com"),
        ),
    ),
    (
        "Representative",
        (
            "representative.first_name",
            "representative.last_name",
            "representative.dob.day",
            "representative.dob.month",
            "representative.dob.year",
            "representative.email",
            "representative.ssn_last_4",
        ),
        (
            ("first_name", "First name", "Jenny"),
            ("last_name", "Last name", "Rosen"),
            ("dob", "Date of birth", "1901-01-01"),
            ("email", "Email", "jenny.rosen@example.com"),
            ("ssn_last_4", "Last 4 digits of SSN", "0000"),
        ),
    ),
    (
        "Bank account for payouts",
        ("external_account",),
        (
            ("routing_number", "Routing number", "110000000"),
            ("account_number", "Account number", "000123456789"),
        ),
    ),
    (
        "Review and agree",
        ("tos_acceptance.date", "tos_acceptance.ip"),
        (),
    ),
)
REQUIRED = tuple(field for _, fields, _ in STEPS for field in fields)
# What Stripe asks for later (`/_sandbox/accounts/{id}/requirements`) is one more step.
EXTRA = len(STEPS)
EXTRA_STEP = ("Additional information", (), (("document", "Document", "success.png"),))


def step_of(index: int) -> tuple[str, tuple[str, ...], tuple[tuple[str, str, str], ...]]:
    return EXTRA_STEP if index == EXTRA else STEPS[index]


if TYPE_CHECKING:
    _Base = Any
else:
    _Base = object


class ConnectAccounts(_Base):  # type: ignore[misc]
    objects: dict[str, Obj]
    account_links: dict[str, Obj]

    # -- the API ------------------------------------------------------------------------------

    def create_account(self, p: Obj) -> Obj:
        check_params(p, ACCOUNT_PARAMS)
        type_ = p.get("type")
        if not type_:
            raise missing("type")
        if type_ not in ("custom", "express", "standard"):
            message = "Invalid type: must be one of custom, express, or standard"
            raise StripeApiError(400, message, param="type")
        profile = dict.fromkeys(("mcc", "name", "product_description", "url"))
        profile.update(p.get("business_profile") or {})
        requested = p.get("capabilities") or {}
        if not isinstance(requested, dict):
            raise StripeApiError(400, "Invalid hash", param="capabilities")
        capabilities = {
            name: "inactive"
            for name, ask in requested.items()
            if isinstance(ask, dict) and ask.get("requested") == "true"
        }
        if type_ != "standard" and "transfers" not in capabilities:
            # Express and Custom accounts take destination charges only with `transfers`.
            capabilities["transfers"] = "inactive"
        email = p.get("email") or None
        if email is not None and "@" not in email:
            raise StripeApiError(400, f"Invalid email address: {email}", param="email")
        account = self._new(
            "acct_",
            "account",
            "",
            business_profile=profile,
            business_type=p.get("business_type") or None,
            capabilities=capabilities,
            charges_enabled=False,
            country=str(p.get("country") or "US").upper(),
            default_currency="usd",
            details_submitted=False,
            email=email,
            external_accounts={
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": "",
            },
            future_requirements=_requirements([], None),
            metadata=as_metadata(p.get("metadata"), "metadata"),
            payouts_enabled=False,
            requirements=_requirements(list(REQUIRED), "requirements.past_due"),
            settings={"payouts": {"schedule": {"delay_days": 2, "interval": "daily"}}},
            tos_acceptance={"date": None, "ip": None, "user_agent": None},
            type=type_,
        )
        account["external_accounts"]["url"] = f"/v1/accounts/{account['id']}/external_accounts"
        given = [f"business_profile.{k}" for k in ("mcc", "url") if profile.get(k)]
        if account["business_type"]:
            given.append("business_type")
        self._collect(account, tuple(given))
        return copy.deepcopy(account)

    def create_account_link(self, p: Obj) -> Obj:
        check_params(p, ACCOUNT_LINK_PARAMS)
        for name in ("account", "type"):
            if not p.get(name):
                raise missing(name)
        account = self.find("account", str(p["account"]))
        if account is None:
            message = f"No such account: '{p['account']}'"
            raise StripeApiError(400, message, param="account", code="resource_missing")
        kind = p["type"]
        if kind not in ("account_onboarding", "account_update"):
            message = "Invalid type: must be one of account_onboarding or account_update"
            raise StripeApiError(400, message, param="type")
        if kind == "account_update" and account["type"] != "custom":
            message = (
                "You cannot create `account_update` type Account Links for "
                f"{account['type'].capitalize()} accounts."
            )
            raise StripeApiError(400, message, param="type")
        for name in ("refresh_url", "return_url"):
            if not p.get(name):
                raise missing(name)
        refresh_url = as_url(p["refresh_url"], "refresh_url")
        return_url = as_url(p["return_url"], "return_url")
        collect = p.get("collect") or "currently_due"
        if collect not in ("currently_due", "eventually_due"):
            message = "Invalid collect: must be one of currently_due or eventually_due"
            raise StripeApiError(400, message, param="collect")
        created = self.now()
        token = secrets.token_urlsafe(18)
        self.account_links[token] = {
            "account": account["id"],
            "type": kind,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "created": created,
            "expires_at": created + LINK_TTL_SECONDS,
        }
        return {
            "object": "account_link",
            "created": created,
            "expires_at": created + LINK_TTL_SECONDS,
            "url": f"{self.base_url}/setup/s/{account['id']}/{token}",
        }

    # -- onboarding (the hosted page and the controls) ----------------------------------------

    def link(self, account_id: str, token: str) -> Obj | None:
        """The link behind a hosted onboarding URL (None when unknown or for another account)."""
        found = self.account_links.get(token)
        return found if found is not None and found["account"] == account_id else None

    def link_expired(self, link: Obj) -> bool:
        return bool(self.now() >= int(link["expires_at"]))

    @staticmethod
    def next_step(account: Obj) -> int | None:
        """The first onboarding step with a field still due, or None when nothing is."""
        due = set(account["requirements"]["currently_due"])
        found = next((i for i, (_, fields, _) in enumerate(STEPS) if due & set(fields)), None)
        if found is None and due:
            return EXTRA
        return found

    def submit_step(self, account_id: str, step: int, ip: str = "127.0.0.1") -> Obj:
        """A person submitted one onboarding step: its fields are no longer due."""
        account = self._control_get("account", account_id)
        if not 0 <= step <= EXTRA:
            raise ControlError(422, f"step must be 0..{EXTRA}")
        due = account["requirements"]["currently_due"]
        fields = STEPS[step][1] if step < EXTRA else tuple(f for f in due if f not in REQUIRED)
        if not set(fields) & set(due):
            raise ControlError(409, f"step {step} of account {account_id} is done already")
        if step == len(STEPS) - 1:
            account["tos_acceptance"] = {"date": self.now(), "ip": ip, "user_agent": None}
        if step == 2:
            bank = {
                "id": f"ba_{account_id[5:]}",
                "object": "bank_account",
                "account": account_id,
                "bank_name": "STRIPE TEST BANK",
                "country": "US",
                "currency": "usd",
                "default_for_currency": True,
                "last4": "6789",
                "routing_number": "110000000",
                "status": "new",
            }
            account["external_accounts"].update(data=[bank], total_count=1)
        if step == 0 and not account["business_type"]:
            account["business_type"] = "company"
        previous = self._collect(account, fields)
        self._emit("account.updated", account, previous, account=account_id)
        return copy.deepcopy(account)

    def complete_account(self, account_id: str) -> Obj:
        """Everything onboarding collects, at once (`POST /_sandbox/accounts/{id}/complete`)."""
        account = self._control_get("account", account_id)
        if account["charges_enabled"] and not account["requirements"]["currently_due"]:
            raise ControlError(409, f"account {account_id} has completed onboarding already")
        first = len(self.events)
        if account["tos_acceptance"]["date"] is None:
            account["tos_acceptance"] = {"date": self.now(), "ip": "127.0.0.1", "user_agent": None}
        if not account["business_type"]:
            account["business_type"] = "company"
        previous = self._collect(account, tuple(account["requirements"]["currently_due"]))
        self._emit("account.updated", account, previous, account=account_id)
        return self._answer(first, account=account)

    def require(self, account_id: str, body: Obj) -> Obj:
        """Stripe asks for more (`POST /_sandbox/accounts/{id}/requirements`): the fields given
        become due; any `past_due` disables charges and payouts until collected."""
        account = self._control_get("account", account_id)
        due: list[str] = []
        for name in ("currently_due", "past_due"):
            values = body.get(name, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ControlError(422, f"{name} must be a list of requirement names")
            due.extend(values)
        past = list(body.get("past_due", []))
        reason = body.get("disabled_reason", "requirements.past_due" if past else None)
        if reason is not None and not isinstance(reason, str):
            raise ControlError(422, "disabled_reason must be a string or null")
        first = len(self.events)
        previous: Obj = {
            "requirements": copy.deepcopy(account["requirements"]),
            "charges_enabled": account["charges_enabled"],
            "payouts_enabled": account["payouts_enabled"],
        }
        current = sorted(set(account["requirements"]["currently_due"]) | set(due))
        account["requirements"] = _requirements(current, reason, sorted(set(past)))
        enabled = reason is None
        account.update(charges_enabled=enabled, payouts_enabled=enabled)
        status = "active" if enabled else "inactive"
        account["capabilities"] = dict.fromkeys(account["capabilities"], status)
        self._emit("account.updated", account, previous, account=account_id)
        return self._answer(first, account=account)

    def _collect(self, account: Obj, fields: tuple[str, ...]) -> Obj:
        """Remove fields from what is due; enable the account once nothing is. Answers the
        `previous_attributes` of the change."""
        previous: Obj = {"requirements": copy.deepcopy(account["requirements"])}
        gone = set(fields)
        requirements = account["requirements"]
        current = [f for f in requirements["currently_due"] if f not in gone]
        past = [f for f in requirements["past_due"] if f not in gone]
        reason = requirements["disabled_reason"] if past else None
        account["requirements"] = _requirements(current, reason, past)
        if not current and not account["charges_enabled"]:
            previous.update(
                charges_enabled=False,
                payouts_enabled=account["payouts_enabled"],
                details_submitted=account["details_submitted"],
                capabilities=dict(account["capabilities"]),
            )
            account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
            account["capabilities"] = dict.fromkeys(account["capabilities"], "active")
        return previous


def _requirements(due: list[str], reason: str | None, past: list[str] | None = None) -> Obj:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(due),
        "disabled_reason": reason,
        "errors": [],
        "eventually_due": list(due),
        "past_due": list(due if past is None else past),
        "pending_verification": [],
    }


def transfers_active(account: Obj) -> bool:
    return account.get("type") == "standard" or (
        (account.get("capabilities") or {}).get("transfers") == "active"
    )
