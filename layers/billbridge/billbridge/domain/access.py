"""Who is calling and what their role may do: the principal from the authorizer's claims, and
the one route-to-role table of the firm API (api.md, "Accounts, roles and onboarding").

The firm comes from `custom:firm_id` alone (immutable in the pool, written only by the API's
sign-up and invitations), the role from `cognito:groups`. API Gateway's REST authorizer passes
every claim as a string, so `cognito:groups` arrives comma-joined ("admin,staff"); a list or
API Gateway's bracketed form ("[admin staff]") reads the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from billbridge.domain.errors import Forbidden, Unauthenticated

FIRM_CLAIM = "custom:firm_id"
GROUPS_CLAIM = "cognito:groups"
FIRM_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"


@dataclass(frozen=True)
class Principal:
    """The signed-in user: Cognito's `sub`, their email, their firm and their role."""

    user_id: str
    email: str | None
    firm_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def groups_of(value: Any) -> list[str]:
    """The groups a `cognito:groups` claim names, whichever way it was serialised."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part for part in re.split(r"[,\s]+", text) if part]


def role_of(groups: list[str]) -> Role | None:
    """Admin wins over staff; a user in neither group has no role in the firm."""
    if Role.ADMIN.value in groups:
        return Role.ADMIN
    if Role.STAFF.value in groups:
        return Role.STAFF
    return None


def principal_from_claims(claims: Mapping[str, Any] | None) -> Principal:
    claims = claims or {}
    user_id = str(claims.get("sub") or "").strip()
    if not user_id:
        raise Unauthenticated("The sign-in names no user: sign in again.")
    firm_id = str(claims.get(FIRM_CLAIM) or "").strip()
    if not FIRM_ID.fullmatch(firm_id):
        raise Unauthenticated("This account belongs to no firm: sign up, or ask your admin.")
    role = role_of(groups_of(claims.get(GROUPS_CLAIM)))
    if role is None:
        raise Forbidden("Your account has no role in this firm yet: ask your firm's admin.")
    email = claims.get("email")
    return Principal(
        user_id=user_id, email=str(email) if email else None, firm_id=firm_id, role=role
    )


# The local stack's `Bearer dev-<firm_id>` stand-in signs in as this user of that firm
# (local/authorizer.py). Cognito's `sub` is a UUID it assigns, so no pool user is ever named so;
# and only a local stage trusts it without a member record (services/accounts.py).
LOCAL_STAND_IN_PREFIX = "dev-user-"


def is_local_stand_in(principal: Principal) -> bool:
    return principal.user_id == f"{LOCAL_STAND_IN_PREFIX}{principal.firm_id}"


def lesser_role(token_role: Role, recorded_role: Role) -> Role:
    """The role a request acts with: the token's (Cognito's groups when it was issued) and the
    firm's member record (changed at once by an admin) must both grant it, so a demotion takes
    effect at the next request and a promotion at the next sign-in."""
    if token_role is Role.ADMIN and recorded_role is Role.ADMIN:
        return Role.ADMIN
    return Role.STAFF


STAFF_AND_ADMIN = frozenset({Role.ADMIN, Role.STAFF})
ADMIN_ONLY = frozenset({Role.ADMIN})

# Every signed-in route of the firm API, as template.yaml declares it (method, resource path),
# and the roles that may call it. A route missing here is admin-only (closed by default);
# tests/infra checks every template route is listed. Staff may not refund, change settings,
# manage payment accounts or users, or read the audit trail (api.md).
ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/me"): STAFF_AND_ADMIN,
    ("GET", "/invoices"): STAFF_AND_ADMIN,
    ("POST", "/invoices/{bill_id}/reminders/pause"): STAFF_AND_ADMIN,
    ("POST", "/invoices/{bill_id}/reminders/resume"): STAFF_AND_ADMIN,
    ("GET", "/invoices/{bill_id}/envelopes"): STAFF_AND_ADMIN,
    ("POST", "/sync"): STAFF_AND_ADMIN,
    ("GET", "/sync/{id}"): STAFF_AND_ADMIN,
    ("GET", "/settings"): STAFF_AND_ADMIN,
    ("PUT", "/settings"): ADMIN_ONLY,
    ("GET", "/clio/connect"): STAFF_AND_ADMIN,
    ("GET", "/clio/status"): STAFF_AND_ADMIN,
    ("POST", "/envelopes"): STAFF_AND_ADMIN,
    ("GET", "/envelopes/{envelope_id}"): STAFF_AND_ADMIN,
    ("PATCH", "/envelopes/{envelope_id}"): STAFF_AND_ADMIN,
    ("GET", "/envelopes/{envelope_id}/bills/{bill_file}"): STAFF_AND_ADMIN,
    ("POST", "/envelopes/{envelope_id}/send"): STAFF_AND_ADMIN,
    ("POST", "/batches/{batch_id}/send"): STAFF_AND_ADMIN,
    ("GET", "/batches/{batch_id}"): STAFF_AND_ADMIN,
    ("GET", "/payment-links/{link_id}"): STAFF_AND_ADMIN,
    ("POST", "/payment-links/{link_id}/transactions/{txn_id}/refunds"): ADMIN_ONLY,
    ("GET", "/reconciliation"): STAFF_AND_ADMIN,
    ("POST", "/reconciliation/recorded"): STAFF_AND_ADMIN,
    # Payment plans (api.md: staff make them): make, read, cancel.
    ("POST", "/payment-plans"): STAFF_AND_ADMIN,
    ("GET", "/payment-plans/{plan_id}"): STAFF_AND_ADMIN,
    ("POST", "/payment-plans/{plan_id}/cancel"): STAFF_AND_ADMIN,
    ("GET", "/payment-accounts"): ADMIN_ONLY,
    ("POST", "/payment-accounts/onboarding"): ADMIN_ONLY,
    # The onboarding checklist: anyone may see where the firm is; its steps are an admin's
    # (payment accounts, sender, templates).
    ("GET", "/onboarding"): STAFF_AND_ADMIN,
    ("POST", "/onboarding/steps/{step}"): ADMIN_ONLY,
    ("POST", "/onboarding/templates/reviewed"): ADMIN_ONLY,
    ("GET", "/users"): ADMIN_ONLY,
    ("POST", "/users"): ADMIN_ONLY,
    ("PATCH", "/users/{user_id}"): ADMIN_ONLY,
    ("DELETE", "/users/{user_id}"): ADMIN_ONLY,
    ("GET", "/audit"): ADMIN_ONLY,
}

# The firm API's routes that take no token (Authorizer: NONE in template.yaml): the OAuth
# callback (the firm comes from the signed state), the API's own document, and sign-up.
PUBLIC_RESOURCES = frozenset({"/clio/callback", "/openapi.json", "/signup", "/signup/confirm"})

# Path prefixes of routes not yet in the table that belong to a resource that is admin-only as
# a whole (payment accounts: onboarding links, account status).
ADMIN_PREFIXES = ("/payment-accounts",)

# What each forbidden route is, in words for the 403's message.
_WHAT = {
    "/payment-links/{link_id}/transactions/{txn_id}/refunds": "refund payments",
    "/settings": "change the firm's settings",
    "/users": "manage the firm's users",
    "/users/{user_id}": "manage the firm's users",
    "/audit": "read the audit trail",
    "/onboarding/steps/{step}": "change the onboarding checklist",
    "/onboarding/templates/reviewed": "change the onboarding checklist",
}


def roles_for(method: str, resource: str) -> frozenset[Role]:
    found = ROUTE_ROLES.get((method.upper(), resource))
    if found is not None:
        return found
    return ADMIN_ONLY  # closed by default, payment accounts included


def authorize(principal: Principal, method: str, resource: str) -> None:
    """Raise Forbidden (403 `forbidden`) when the principal's role may not call this route."""
    if principal.role in roles_for(method, resource):
        return
    what = _WHAT.get(resource)
    if what is None and resource.startswith(ADMIN_PREFIXES):
        what = "manage the firm's payment accounts"
    raise Forbidden(
        f"Only an admin of your firm can {what or 'do this'}; your role is {principal.role}."
    )
