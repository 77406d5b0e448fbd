"""A firm's people and what they did: members (users and their roles), sign-up of a new firm,
and the audit trail's entries. Pure rules; the user pool and the table are behind ports.

The last-admin rule lives here: a firm always keeps at least one admin, so no admin can demote
or remove the last one (the store enforces it with a conditional count, so two admins demoting
each other at once cannot both win).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from billbridge.domain.access import Role
from billbridge.domain.email_headers import header_problem
from billbridge.domain.errors import Conflict, InvalidInput, RuleViolation


class MemberStatus(StrEnum):
    INVITED = "invited"  # made by an admin; has not chosen a password yet (Cognito knows)
    UNCONFIRMED = "unconfirmed"  # signed up; has not entered the emailed code yet
    ACTIVE = "active"


@dataclass(frozen=True)
class Actor:
    """Who did something: the signed-in user's id (Cognito `sub`) and email."""

    user_id: str
    email: str | None


@dataclass(frozen=True)
class Member:
    user_id: str
    firm_id: str
    email: str
    role: Role
    status: MemberStatus
    created_at: datetime
    invited_by: str | None = None  # the inviting admin's user id


class LastAdmin(Conflict):
    """The change would leave the firm without an admin (409: the firm's state forbids it)."""

    code = "last_admin"


class EmailTaken(Conflict):
    """The pool already has an account with this email (409)."""

    code = "email_taken"


def checked_email(value: str, field_name: str = "email") -> str:
    """An address a person can sign in with and receive mail at, lower-cased (the pool's
    usernames are case-insensitive). The same check as the API's EmailAddress fields
    (pydantic's), plus what would break an email header."""
    from pydantic.networks import validate_email

    text = str(value).strip()
    problem = header_problem(text) if text else "nothing"
    if problem is None:
        try:
            text = validate_email(text)[1]
        except ValueError as exc:
            problem = str(exc)
    if problem is not None:
        raise InvalidInput(
            f"That is not an email address we can use ({problem}): {text or 'nothing was given'}.",
            field=field_name,
        )
    return text.lower()


FIRM_NAME_MAX = 200  # as the settings' firm_name
# One line (no control characters, line or paragraph separators: it becomes an email header)
# with at least one character that is not a space.
_ONE_LINE_CHAR = "[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]"
FIRM_NAME_PATTERN = (
    f"^{_ONE_LINE_CHAR}*[^\\s\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]{_ONE_LINE_CHAR}*$"
)
# The user pool's password policy (template.yaml), which JSON Schema cannot spell without
# look-aheads: named by this format in the OpenAPI document.
PASSWORD_FORMAT = "billbridge-password"


def checked_firm_name(value: str) -> str:
    text = " ".join(str(value).split())
    if not text:
        raise InvalidInput("Give the firm's name.", field="firm_name")
    if len(text) > FIRM_NAME_MAX:
        raise InvalidInput(
            f"The firm's name is at most {FIRM_NAME_MAX} characters.", field="firm_name"
        )
    # It becomes the sender's display name of the firm's emails.
    problem = header_problem(text)
    if problem is not None:
        raise RuleViolation(
            f"The firm's name cannot contain {problem}.", field="firm_name", code="invalid_value"
        )
    return text


def new_firm_id(name: str) -> str:
    """A fresh firm id: a readable slug of the name and a random part, so no one can pick (or
    guess) another firm's id at sign-up."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24].strip("-") or "firm"
    return f"{slug}-{secrets.token_hex(5)}"


# --- the audit trail --------------------------------------------------------------------------


class AuditAction(StrEnum):
    ENVELOPE_SENT = "envelope.sent"
    BATCH_SENT = "batch.sent"
    REFUND_CREATED = "refund.created"
    SETTINGS_UPDATED = "settings.updated"
    PAYMENT_ACCOUNT_UPDATED = "payment_account.updated"
    USER_INVITED = "user.invited"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_REMOVED = "user.removed"
    FIRM_CREATED = "firm.created"


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, when: `object` names what was acted on (ids, amounts, fields), never a
    secret."""

    id: str
    firm_id: str
    at: datetime
    actor: Actor
    action: AuditAction
    object: dict[str, Any] = field(default_factory=dict)


def new_entry_id() -> str:
    return secrets.token_hex(8)


# Who changed a payment account when Stripe reported it (`account.updated`): Stripe itself.
STRIPE_ACTOR = Actor(user_id="stripe", email=None)


def entry_id_of_event(event_id: str) -> str:
    """One audit entry per Stripe event, however often Stripe delivers it: its id comes from the
    event's, so a repeat writes the same entry (the log's put is conditional)."""
    import hashlib

    return hashlib.sha256(event_id.encode()).hexdigest()[:16]
