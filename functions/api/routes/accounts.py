"""Accounts (api.md, "Accounts, roles and onboarding"): who I am (`GET /me`), the firm's users
(admin), the audit trail (admin), and sign-up of a new firm (public: nobody is signed in yet).
Roles are checked centrally (routes/context.py), never here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import Field

from billbridge.api_errors import error_responses, refuse_other_methods
from billbridge.bootstrap import account_services
from billbridge.domain.access import Role
from billbridge.domain.accounts import (
    FIRM_NAME_MAX,
    FIRM_NAME_PATTERN,
    PASSWORD_FORMAT,
    AuditAction,
    AuditEntry,
    Member,
)
from billbridge.domain.settings import EmailAddress
from billbridge.services.accounts import actor_of
from routes.context import principal_of
from schemas import CURSOR_PATTERN, ID_PATTERN, ApiModel

router = Router()

refuse_other_methods(router, "/signup", ["POST"])
refuse_other_methods(router, "/signup/confirm", ["POST"])

UserId = Annotated[str, Path(pattern=ID_PATTERN, description="A user's id (Cognito sub)")]
RoleName = Literal["admin", "staff"]


class MeOut(ApiModel):
    user_id: str
    email: str | None
    firm_id: str
    role: RoleName


class UserOut(ApiModel):
    user_id: str
    email: str
    role: RoleName
    status: Literal["invited", "unconfirmed", "active"]
    created_at: datetime
    invited_by: str | None = None

    @classmethod
    def of(cls, member: Member) -> UserOut:
        return cls(
            user_id=member.user_id,
            email=member.email,
            role=member.role.value,
            status=member.status.value,
            created_at=member.created_at,
            invited_by=member.invited_by,
        )


class UsersOut(ApiModel):
    users: list[UserOut]


class InviteRequest(ApiModel):
    model_config = ApiModel.model_config | {"extra": "forbid"}
    email: EmailAddress = Field(max_length=254)
    role: RoleName


class RoleChange(ApiModel):
    model_config = ApiModel.model_config | {"extra": "forbid"}
    role: RoleName


class ActorOut(ApiModel):
    user_id: str
    email: str | None


class AuditItem(ApiModel):
    id: str
    at: datetime
    actor: ActorOut
    action: str = Field(description="envelope.sent, refund.created, settings.updated, ...")
    object: dict[str, Any]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditItem:
        return cls(
            id=entry.id,
            at=entry.at,
            actor=ActorOut(user_id=entry.actor.user_id, email=entry.actor.email),
            action=entry.action.value,
            object=entry.object,
        )


class AuditOut(ApiModel):
    items: list[AuditItem]
    next_cursor: str | None


class SignupRequest(ApiModel):
    model_config = ApiModel.model_config | {"extra": "forbid"}
    firm_name: str = Field(
        min_length=1,
        max_length=FIRM_NAME_MAX,
        description="One line of text with at least one visible character",
        json_schema_extra={"pattern": FIRM_NAME_PATTERN},
    )
    email: EmailAddress = Field(max_length=254)
    password: str = Field(
        min_length=12,
        max_length=256,
        description="The user pool's policy: 12 or more characters with an upper and a lower "
        "case letter and a digit",
        json_schema_extra={"format": PASSWORD_FORMAT},
    )


class SignupOut(ApiModel):
    firm_id: str
    user_id: str
    email: str
    status: Literal["confirmation_sent", "confirmed"]


class ConfirmRequest(ApiModel):
    model_config = ApiModel.model_config | {"extra": "forbid"}
    email: EmailAddress = Field(max_length=254)
    code: str = Field(pattern=r"^\s*[0-9]{6}\s*$", description="The six-digit emailed code")


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@router.get(
    "/me",
    summary="Who is signed in: user, email, firm and role",
    tags=["accounts"],
    responses={200: {"description": "The signed-in user"}, **error_responses(401)},
)
def me() -> MeOut:
    principal = principal_of(router)
    account_services().users.seen(principal)
    return MeOut(
        user_id=principal.user_id,
        email=principal.email,
        firm_id=principal.firm_id,
        role=principal.role.value,
    )


@router.get(
    "/users",
    summary="The firm's users (admin)",
    tags=["accounts"],
    responses={200: {"description": "The users"}, **error_responses(401, 403)},
)
def list_users() -> UsersOut:
    principal = principal_of(router)
    return UsersOut(users=[UserOut.of(m) for m in account_services().users.list(principal.firm_id)])


@router.post(
    "/users",
    summary="Invite a user by email (admin): Cognito emails a temporary password",
    tags=["accounts"],
    responses={
        201: {"description": "The invited user"},
        **error_responses(400, 401, 403, 409, 415, 422),
    },
)
def invite_user(request: Annotated[InviteRequest, Body()]) -> Response[UserOut]:
    made = account_services().users.invite(principal_of(router), request.email, Role(request.role))
    return _json(201, UserOut.of(made))


@router.patch(
    "/users/<user_id>",
    summary="Change a user's role (admin); the last admin stays an admin",
    tags=["accounts"],
    responses={
        200: {"description": "The user"},
        **error_responses(400, 401, 403, 404, 409, 415, 422),
    },
)
def change_user(user_id: UserId, request: Annotated[RoleChange, Body()]) -> UserOut:
    changed = account_services().users.change_role(
        principal_of(router), user_id, Role(request.role)
    )
    return UserOut.of(changed)


@router.delete(
    "/users/<user_id>",
    summary="Remove a user from the firm (admin); never the last admin",
    tags=["accounts"],
    responses={
        200: {"description": "The user removed"},
        **error_responses(401, 403, 404, 409),
    },
)
def remove_user(user_id: UserId) -> UserOut:
    return UserOut.of(account_services().users.remove(principal_of(router), user_id))


@router.get(
    "/audit",
    summary="The audit trail, newest first (admin)",
    tags=["accounts"],
    responses={
        200: {"description": "One page of entries"},
        **error_responses(400, 401, 403, 404, 422),
    },
)
def audit(
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN, max_length=2000)] = None,
) -> AuditOut:
    page = account_services().audit.page(principal_of(router).firm_id, cursor)
    return AuditOut(items=[AuditItem.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.post(
    "/signup",
    summary="Sign up: a new firm and its first admin; Cognito emails a confirmation code",
    tags=["accounts"],
    security=[{}],
    responses={
        201: {"description": "Signed up; the code is on its way"},
        **error_responses(400, 409, 415, 422),
    },
)
def sign_up(request: Annotated[SignupRequest, Body()]) -> Response[SignupOut]:
    made = account_services().signup.sign_up(request.firm_name, request.email, request.password)
    body = SignupOut(
        firm_id=made.firm_id, user_id=made.user_id, email=made.email, status="confirmation_sent"
    )
    return _json(201, body)


@router.post(
    "/signup/confirm",
    summary="Confirm a sign-up with the emailed code; the person becomes the firm's admin",
    tags=["accounts"],
    security=[{}],
    responses={
        200: {"description": "Confirmed: sign in now"},
        **error_responses(400, 404, 415, 422),
    },
)
def confirm_sign_up(request: Annotated[ConfirmRequest, Body()]) -> SignupOut:
    made = account_services().signup.confirm(request.email, request.code)
    return SignupOut(
        firm_id=made.firm_id, user_id=made.user_id, email=made.email, status="confirmed"
    )


def record(action: AuditAction, obj: dict[str, Any], where: Router) -> None:
    """An audit entry for what the signed-in user just did (the routes that act call it once
    the action has been accepted)."""
    principal = principal_of(where)
    account_services().audit.record(principal.firm_id, actor_of(principal), action, obj)
