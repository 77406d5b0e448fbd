"""Use cases of a firm's accounts: sign-up of a new firm and its first admin, an admin's users
(invite, change role, remove), and the audit trail (record, read). Over the ports
UserDirectory (the user pool), MemberRepository and AuditLog (the table)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from billbridge.domain.access import (
    Principal,
    Role,
    is_local_stand_in,
    lesser_role,
)
from billbridge.domain.accounts import (
    Actor,
    AuditAction,
    AuditEntry,
    Member,
    MemberStatus,
    checked_email,
    checked_firm_name,
    new_entry_id,
    new_firm_id,
)
from billbridge.domain.errors import NotFound, RuleViolation, Unauthenticated

if TYPE_CHECKING:  # the ports only as annotations: none is loaded with this module
    from billbridge.services.ports import (
        AuditLog,
        AuditPage,
        FirmHeader,
        FirmHeaders,
        MemberRepository,
        SettingsRepository,
        UserDirectory,
    )

Clock = Callable[[], datetime]

AUDIT_PAGE_SIZE = 50


def actor_of(principal: Principal) -> Actor:
    return Actor(user_id=principal.user_id, email=principal.email)


class AuditTrail:
    def __init__(self, log: AuditLog, clock: Clock) -> None:
        self._log = log
        self._clock = clock

    def record(
        self, firm_id: str, actor: Actor, action: AuditAction, obj: dict[str, Any]
    ) -> AuditEntry:
        entry = AuditEntry(
            id=new_entry_id(),
            firm_id=firm_id,
            at=self._clock(),
            actor=actor,
            action=action,
            object=obj,
        )
        self._log.record(entry)
        return entry

    def page(self, firm_id: str, cursor: str | None) -> AuditPage:
        return self._log.page(firm_id, cursor, AUDIT_PAGE_SIZE)


@dataclass(frozen=True)
class SignedUp:
    firm_id: str
    user_id: str
    email: str


class Signup:
    """A new firm and its first admin (A2): the API picks the firm id; the person confirms
    their address with the code Cognito emails, and only then becomes the firm's admin."""

    def __init__(
        self,
        directory: UserDirectory,
        members: MemberRepository,
        settings: SettingsRepository,
        audit: AuditTrail,
        clock: Clock,
    ) -> None:
        self._directory = directory
        self._members = members
        self._settings = settings
        self._audit = audit
        self._clock = clock

    def sign_up(self, firm_name: str, email: str, password: str) -> SignedUp:
        name = checked_firm_name(firm_name)
        address = checked_email(email)
        firm_id = new_firm_id(name)
        user_id = self._directory.sign_up(firm_id, address, password)
        settings = self._settings.get(firm_id).model_copy(update={"firm_name": name})
        self._settings.put(firm_id, settings)
        self._members.add(
            Member(
                user_id=user_id,
                firm_id=firm_id,
                email=address,
                role=Role.ADMIN,
                status=MemberStatus.UNCONFIRMED,
                created_at=self._clock(),
            )
        )
        return SignedUp(firm_id=firm_id, user_id=user_id, email=address)

    def confirm(self, email: str, code: str) -> SignedUp:
        address = checked_email(email)
        user_id, firm_id = self._directory.confirm_sign_up(address, code.strip())
        self._directory.set_role(user_id, Role.ADMIN)
        self._members.set_status(firm_id, user_id, MemberStatus.ACTIVE)
        self._audit.record(
            firm_id,
            Actor(user_id=user_id, email=address),
            AuditAction.FIRM_CREATED,
            {"firm_id": firm_id, "firm_name": self._settings.get(firm_id).firm_name},
        )
        return SignedUp(firm_id=firm_id, user_id=user_id, email=address)


class Users:
    """An admin's users (A3): invite by email, change a role, remove; never the last admin."""

    def __init__(
        self,
        directory: UserDirectory,
        members: MemberRepository,
        audit: AuditTrail,
        clock: Clock,
        *,
        trust_local_stand_in: bool = False,
        headers: Callable[[], FirmHeaders] | None = None,
    ) -> None:
        self._directory = directory
        self._members = members
        self._audit = audit
        self._clock = clock
        self._trust_local_stand_in = trust_local_stand_in
        self._headers = headers

    def current(self, principal: Principal) -> Principal:
        """The caller as the firm knows them now, on every signed-in request: one consistent
        read of their member record. A token outlives a removal or a demotion by up to its
        lifetime (an hour), and names a firm only by its claim; so no record in the firm the
        token names is a 401, and the role is the lesser of the token's and the record's.
        The local stack's `dev-<firm>` stand-in has no record and keeps its token's role."""
        if self._trust_local_stand_in and is_local_stand_in(principal):
            return principal
        return self._as_recorded(principal, self._members.get(principal.firm_id, principal.user_id))

    def current_with_header(self, principal: Principal) -> tuple[Principal, FirmHeader]:
        """`current`, and the firm header read in the same consistent request (one
        BatchGetItem): for a route that reads the header anyway (the default invoices page),
        so the check costs it no request of its own."""
        assert self._headers is not None, "these services have no firm headers"
        headers = self._headers()
        if self._trust_local_stand_in and is_local_stand_in(principal):
            return principal, headers.read(principal.firm_id)
        header, member = headers.read_with_member(principal.firm_id, principal.user_id)
        return self._as_recorded(principal, member), header

    @staticmethod
    def _as_recorded(principal: Principal, member: Member | None) -> Principal:
        if member is None:
            raise Unauthenticated(
                "Your account is no longer a member of this firm: it was removed, or never "
                "joined. Sign in again, or ask your firm's admin."
            )
        role = lesser_role(principal.role, member.role)
        return principal if role is principal.role else replace(principal, role=role)

    def list(self, firm_id: str) -> list[Member]:
        return sorted(self._members.list(firm_id), key=lambda m: (m.email, m.user_id))

    def seen(self, principal: Principal) -> None:
        """The user is signed in (GET /me): an invited member becomes active. One read when
        nothing changes."""
        member = self._members.get(principal.firm_id, principal.user_id)
        if member is not None and member.status is MemberStatus.INVITED:
            self._members.set_status(principal.firm_id, principal.user_id, MemberStatus.ACTIVE)

    def invite(self, admin: Principal, email: str, role: Role) -> Member:
        address = checked_email(email)
        user_id = self._directory.invite(admin.firm_id, address)
        self._directory.set_role(user_id, role)
        member = Member(
            user_id=user_id,
            firm_id=admin.firm_id,
            email=address,
            role=role,
            status=MemberStatus.INVITED,
            created_at=self._clock(),
            invited_by=admin.user_id,
        )
        self._members.add(member)
        self._audit.record(
            admin.firm_id,
            actor_of(admin),
            AuditAction.USER_INVITED,
            {"user_id": user_id, "email": address, "role": role.value},
        )
        return member

    def change_role(self, admin: Principal, user_id: str, role: Role) -> Member:
        before = self._members.get(admin.firm_id, user_id)
        if before is None:
            raise NotFound("There is no such user in your firm.", field="user_id")
        if before.role is role:
            return before
        changed = self._members.change_role(admin.firm_id, user_id, role)
        try:
            self._directory.set_role(user_id, role)
        except Exception:
            # The pool refused: put the member back as it was (the pool decides the token).
            self._members.change_role(admin.firm_id, user_id, before.role)
            raise
        self._audit.record(
            admin.firm_id,
            actor_of(admin),
            AuditAction.USER_ROLE_CHANGED,
            {
                "user_id": user_id,
                "email": before.email,
                "from": before.role.value,
                "to": role.value,
            },
        )
        return changed

    def remove(self, admin: Principal, user_id: str) -> Member:
        if self._members.get(admin.firm_id, user_id) is None:
            raise NotFound("There is no such user in your firm.", field="user_id")
        removed = self._members.remove(admin.firm_id, user_id)
        self._directory.remove(user_id)
        self._audit.record(
            admin.firm_id,
            actor_of(admin),
            AuditAction.USER_REMOVED,
            {"user_id": user_id, "email": removed.email, "role": removed.role.value},
        )
        return removed


def refuse_unknown_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise RuleViolation(
            f"The role {value!r} is not one we know: use admin or staff.",
            field="role",
            code="invalid_role",
        ) from None
