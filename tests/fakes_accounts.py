"""In-memory fakes of the accounts ports (services.ports.UserDirectory, MemberRepository,
AuditLog), keeping the same rules as their adapters: one account per email in the pool, the
emailed code, the firm's admin count that never falls below one. `AccountsWorld` builds the
accounts services on them through the composition root."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from billbridge.domain.access import Role
from billbridge.domain.accounts import AuditEntry, EmailTaken, LastAdmin, Member, MemberStatus
from billbridge.domain.errors import Conflict, InvalidInput, NotFound
from billbridge.services.ports import AuditPage
from tests.fakes import FakeClock, FakeHeaders, FakeSettings, FakeSyncs


@dataclass
class PoolUser:
    user_id: str
    email: str
    firm_id: str
    password: str | None
    confirmed: bool
    groups: set[Role] = field(default_factory=set)
    code: str | None = None
    signed_out: bool = False


class FakeDirectory:
    """The user pool: users by email; sign-up codes kept as Cognito emails them."""

    def __init__(self) -> None:
        self.users: dict[str, PoolUser] = {}
        self.invitations: list[str] = []  # emails invited (Cognito emails them)
        self._ids = itertools.count(1)
        self.fail_set_role = False

    def _by_id(self, user_id: str) -> PoolUser:
        found = next((u for u in self.users.values() if u.user_id == user_id), None)
        if found is None:
            raise NotFound("There is no such user.", field="user_id")
        return found

    def sign_up(self, firm_id: str, email: str, password: str) -> str:
        if email in self.users:
            raise EmailTaken("There is already a BillBridge account.", field="email")
        if (
            len(password) < 12
            or password.lower() == password
            or not any(c.isdigit() for c in password)
        ):
            raise InvalidInput("weak", field="password", code="weak_password")
        user = PoolUser(
            user_id=f"sub-{next(self._ids)}",
            email=email,
            firm_id=firm_id,
            password=password,
            confirmed=False,
            code=f"{next(self._ids):06d}",
        )
        self.users[email] = user
        return user.user_id

    def confirm_sign_up(self, email: str, code: str) -> tuple[str, str]:
        user = self.users.get(email)
        if user is None or user.confirmed:
            raise NotFound("nothing to confirm", field="email", code="nothing_to_confirm")
        if code != user.code:
            raise NotFound("wrong code", field="code", code="wrong_code")
        user.confirmed, user.code = True, None
        return user.user_id, user.firm_id

    def invite(self, firm_id: str, email: str) -> str:
        if email in self.users:
            raise EmailTaken("There is already a BillBridge account.", field="email")
        user = PoolUser(
            user_id=f"sub-{next(self._ids)}",
            email=email,
            firm_id=firm_id,
            password=None,
            confirmed=True,
        )
        self.users[email] = user
        self.invitations.append(email)
        return user.user_id

    def set_role(self, user_id: str, role: Role) -> None:
        if self.fail_set_role:
            raise RuntimeError("the pool did not answer")
        self._by_id(user_id).groups = {role}

    def remove(self, user_id: str) -> None:
        user = self._by_id(user_id)
        user.signed_out = True
        del self.users[user.email]


class FakeMembers:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Member] = {}
        self.admin_count: dict[str, int] = {}

    def list(self, firm_id: str) -> list[Member]:
        return [m for (firm, _), m in self.items.items() if firm == firm_id]

    def get(self, firm_id: str, user_id: str) -> Member | None:
        return self.items.get((firm_id, user_id))

    def add(self, member: Member) -> None:
        key = (member.firm_id, member.user_id)
        if key in self.items:
            raise Conflict("That user is already a member of the firm.")
        self.items[key] = member
        if member.role is Role.ADMIN:
            self.admin_count[member.firm_id] = self.admin_count.get(member.firm_id, 0) + 1

    def set_status(self, firm_id: str, user_id: str, status: MemberStatus) -> None:
        member = self.get(firm_id, user_id)
        if member is None:
            raise NotFound("no such member", field="user_id")
        self.items[(firm_id, user_id)] = replace(member, status=status)

    def _leave_admin(self, firm_id: str) -> None:
        if self.admin_count.get(firm_id, 0) <= 1:
            raise LastAdmin("Your firm must keep at least one admin.", field="user_id")
        self.admin_count[firm_id] -= 1

    def change_role(self, firm_id: str, user_id: str, role: Role) -> Member:
        member = self.get(firm_id, user_id)
        if member is None:
            raise NotFound("no such member", field="user_id")
        if member.role is role:
            raise Conflict("changed at the same time")
        if role is Role.STAFF:
            self._leave_admin(firm_id)
        else:
            self.admin_count[firm_id] = self.admin_count.get(firm_id, 0) + 1
        changed = replace(member, role=role)
        self.items[(firm_id, user_id)] = changed
        return changed

    def remove(self, firm_id: str, user_id: str) -> Member:
        member = self.get(firm_id, user_id)
        if member is None:
            raise NotFound("no such member", field="user_id")
        if member.role is Role.ADMIN:
            self._leave_admin(firm_id)
        del self.items[(firm_id, user_id)]
        return member


class FakeAuditLog:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def record(self, entry: AuditEntry) -> None:
        # As the table's conditional put: an entry with the same id is written once.
        if all(e.id != entry.id for e in self.entries):
            self.entries.append(entry)

    def page(self, firm_id: str, cursor: str | None, limit: int) -> AuditPage:
        mine = sorted(
            (e for e in self.entries if e.firm_id == firm_id),
            key=lambda e: (e.at, e.id),
            reverse=True,
        )
        start = 0
        if cursor is not None:
            ids = [e.id for e in mine]
            if cursor not in ids:
                raise NotFound("unknown cursor", field="cursor", code="unknown_cursor")
            start = ids.index(cursor) + 1
        chunk = mine[start : start + limit]
        more = start + limit < len(mine)
        return AuditPage(items=chunk, next_cursor=chunk[-1].id if more and chunk else None)


class AccountsWorld:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.directory = FakeDirectory()
        self.members = FakeMembers()
        self.audit_log = FakeAuditLog()
        self.settings = FakeSettings()
        self.headers = FakeHeaders(self.settings, FakeSyncs(), self.members)

    def services(self) -> Any:
        from billbridge import bootstrap

        adapters = bootstrap.Adapters(
            settings=self.settings,
            headers=self.headers,
            clock=self.clock,
            directory=self.directory,
            members=self.members,
            audit=self.audit_log,
        )
        return bootstrap.build_accounts(_accounts_config(), adapters)


def _accounts_config() -> Any:
    from billbridge.config import AccountsConfig

    return AccountsConfig(
        TABLE_NAME="unused", USER_POOL_ID="us-east-1_fake", SIGNUP_CLIENT_ID="fake-signup"
    )
