"""Claims and roles: the principal comes from the authorizer's claims alone, the role from
cognito:groups however API Gateway serialised it, and the one route table decides."""

from __future__ import annotations

import pytest

from billbridge.domain.access import (
    ROUTE_ROLES,
    Principal,
    Role,
    authorize,
    groups_of,
    principal_from_claims,
    roles_for,
)
from billbridge.domain.errors import Forbidden, Unauthenticated

CLAIMS = {
    "sub": "u-1",
    "email": "ann@firm.example",
    "custom:firm_id": "firm-a",
    "cognito:groups": "staff",
    "token_use": "id",
}


@pytest.mark.parametrize(
    ("value", "groups"),
    [
        ("admin", ["admin"]),
        ("admin,staff", ["admin", "staff"]),
        ("[admin staff]", ["admin", "staff"]),
        (["staff"], ["staff"]),
        ("", []),
        (None, []),
    ],
)
def test_given_groups_as_api_gateway_or_a_jwt_gives_them_then_each_is_read(value, groups):
    assert groups_of(value) == groups


def test_given_a_staff_token_then_the_principal_is_its_sub_email_firm_and_role():
    assert principal_from_claims(CLAIMS) == Principal(
        user_id="u-1", email="ann@firm.example", firm_id="firm-a", role=Role.STAFF
    )


def test_given_both_groups_then_admin_wins():
    principal = principal_from_claims({**CLAIMS, "cognito:groups": "staff,admin"})
    assert principal.role is Role.ADMIN


@pytest.mark.parametrize("missing", ["sub", "custom:firm_id"])
def test_given_a_claim_missing_then_unauthenticated(missing):
    claims = {k: v for k, v in CLAIMS.items() if k != missing}
    with pytest.raises(Unauthenticated):
        principal_from_claims(claims)


@pytest.mark.parametrize("firm", ["", "a/b", "x" * 65, "FIRM#other"])
def test_given_a_firm_claim_no_firm_id_can_be_then_unauthenticated(firm):
    with pytest.raises(Unauthenticated):
        principal_from_claims({**CLAIMS, "custom:firm_id": firm})


def test_given_a_user_in_no_group_then_forbidden_not_staff():
    with pytest.raises(Forbidden):
        principal_from_claims({**CLAIMS, "cognito:groups": ""})
    with pytest.raises(Forbidden):
        principal_from_claims({**CLAIMS, "cognito:groups": "admins"})


def test_given_the_firm_from_another_claim_then_it_is_never_used():
    # Only custom:firm_id names the firm: not a plain firm_id claim, not the username.
    claims = {**CLAIMS, "firm_id": "firm-b", "cognito:username": "firm-b"}
    assert principal_from_claims(claims).firm_id == "firm-a"


STAFF = principal_from_claims(CLAIMS)
ADMIN = principal_from_claims({**CLAIMS, "cognito:groups": "admin"})

STAFF_FORBIDDEN = [
    ("POST", "/payment-links/{link_id}/transactions/{txn_id}/refunds"),
    ("PUT", "/settings"),
    ("GET", "/payment-accounts"),
    ("POST", "/payment-accounts/onboarding"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("PATCH", "/users/{user_id}"),
    ("DELETE", "/users/{user_id}"),
    ("GET", "/audit"),
]
STAFF_ALLOWED = [
    ("GET", "/me"),
    ("GET", "/invoices"),
    ("POST", "/sync"),
    ("POST", "/envelopes"),
    ("PATCH", "/envelopes/{envelope_id}"),
    ("POST", "/envelopes/{envelope_id}/send"),
    ("POST", "/batches/{batch_id}/send"),
    ("GET", "/reconciliation"),
    ("GET", "/settings"),
    ("GET", "/payment-links/{link_id}"),
]


@pytest.mark.parametrize(("method", "resource"), STAFF_FORBIDDEN)
def test_given_staff_on_an_admin_route_then_forbidden_and_admin_allowed(method, resource):
    with pytest.raises(Forbidden) as refused:
        authorize(STAFF, method, resource)
    assert refused.value.code == "forbidden"
    assert "admin" in refused.value.message
    authorize(ADMIN, method, resource)


@pytest.mark.parametrize(("method", "resource"), STAFF_ALLOWED)
def test_given_staff_on_their_work_then_allowed(method, resource):
    authorize(STAFF, method, resource)
    authorize(ADMIN, method, resource)


def test_given_a_route_missing_from_the_table_then_only_admins_may_call_it():
    assert roles_for("POST", "/some/new/route") == frozenset({Role.ADMIN})
    with pytest.raises(Forbidden):
        authorize(STAFF, "GET", "/payment-accounts/{account}/anything")


def test_given_the_table_then_every_role_set_is_non_empty_and_admins_may_do_everything():
    for roles in ROUTE_ROLES.values():
        assert Role.ADMIN in roles


@pytest.mark.parametrize(
    ("token", "recorded", "acts_as"),
    [
        (Role.ADMIN, Role.ADMIN, Role.ADMIN),
        (Role.ADMIN, Role.STAFF, Role.STAFF),  # demoted since the token was issued
        (Role.STAFF, Role.ADMIN, Role.STAFF),  # promoted: from the next sign-in's token
        (Role.STAFF, Role.STAFF, Role.STAFF),
    ],
)
def test_given_the_token_and_the_member_record_then_the_lesser_role_acts(token, recorded, acts_as):
    from billbridge.domain.access import lesser_role

    assert lesser_role(token, recorded) is acts_as
