"""Sign-up, an admin's users and the audit trail, on fakes of the pool and the table."""

from __future__ import annotations

import pytest

from billbridge.domain.access import Principal, Role
from billbridge.domain.accounts import AuditAction, LastAdmin, MemberStatus
from billbridge.domain.errors import InvalidInput, NotFound, RuleViolation, Unauthenticated
from tests.fakes_accounts import AccountsWorld


def _signed_up(world: AccountsWorld) -> tuple[object, Principal]:
    services = world.services()
    made = services.signup.sign_up("Smith & Jones LLP", "Founder@Smith.example", "Good-pass-1234")
    code = world.directory.users["founder@smith.example"].code
    services.signup.confirm("founder@smith.example", code)
    admin = Principal(user_id=made.user_id, email=made.email, firm_id=made.firm_id, role=Role.ADMIN)
    return services, admin


# The two ways a signed-in request's caller is checked: alone, or with the firm header in the
# same read (a route that reads the header: the default invoices page). Both refuse alike.
CHECKS = {
    "alone": lambda users, principal: users.current(principal),
    "with the header": lambda users, principal: users.current_with_header(principal)[0],
}


def test_given_a_sign_up_then_the_firm_id_is_new_and_the_person_is_not_yet_admin():
    world = AccountsWorld()
    services = world.services()
    made = services.signup.sign_up("Smith & Jones LLP", "founder@smith.example", "Good-pass-1234")
    assert made.firm_id.startswith("smith-jones-llp-")
    assert world.settings.get(made.firm_id).firm_name == "Smith & Jones LLP"
    user = world.directory.users["founder@smith.example"]
    assert user.firm_id == made.firm_id and not user.confirmed and user.groups == set()
    member = world.members.get(made.firm_id, made.user_id)
    assert member is not None and member.status is MemberStatus.UNCONFIRMED
    # Two firms of the same name are two firms.
    other = services.signup.sign_up("Smith & Jones LLP", "other@smith.example", "Good-pass-1234")
    assert other.firm_id != made.firm_id


def test_given_the_emailed_code_then_confirmed_admin_and_the_firm_creation_audited():
    world = AccountsWorld()
    _, admin = _signed_up(world)
    assert world.directory.users["founder@smith.example"].groups == {Role.ADMIN}
    member = world.members.get(admin.firm_id, admin.user_id)
    assert member is not None and member.status is MemberStatus.ACTIVE
    (entry,) = world.audit_log.entries
    assert entry.action is AuditAction.FIRM_CREATED and entry.actor.user_id == admin.user_id


def test_given_a_wrong_code_then_refused_and_nothing_granted():
    world = AccountsWorld()
    services = world.services()
    services.signup.sign_up("Firm", "a@firm.example", "Good-pass-1234")
    with pytest.raises(NotFound) as refused:
        services.signup.confirm("a@firm.example", "999999")
    assert refused.value.code == "wrong_code"
    assert world.directory.users["a@firm.example"].groups == set()
    assert world.audit_log.entries == []


@pytest.mark.parametrize(
    ("name", "email", "field"),
    [("", "a@firm.example", "firm_name"), ("Firm", "not an email", "email")],
)
def test_given_bad_sign_up_input_then_400_and_no_user(name, email, field):
    world = AccountsWorld()
    with pytest.raises(InvalidInput) as refused:
        world.services().signup.sign_up(name, email, "Good-pass-1234")
    assert refused.value.field == field
    assert world.directory.users == {}


def test_given_an_invite_then_the_user_joins_the_admins_firm_in_the_role_and_it_is_audited():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    invited = services.users.invite(admin, "Staff@Smith.example", Role.STAFF)
    assert invited.email == "staff@smith.example" and invited.status is MemberStatus.INVITED
    pool_user = world.directory.users["staff@smith.example"]
    assert pool_user.firm_id == admin.firm_id and pool_user.groups == {Role.STAFF}
    assert world.directory.invitations == ["staff@smith.example"]
    entry = world.audit_log.entries[-1]
    assert entry.action is AuditAction.USER_INVITED
    assert entry.actor.email == admin.email and entry.object["role"] == "staff"


def test_given_the_only_admin_then_they_can_neither_demote_nor_remove_themselves():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    with pytest.raises(LastAdmin):
        services.users.change_role(admin, admin.user_id, Role.STAFF)
    with pytest.raises(LastAdmin):
        services.users.remove(admin, admin.user_id)
    assert world.directory.users["founder@smith.example"].groups == {Role.ADMIN}
    assert world.members.get(admin.firm_id, admin.user_id) is not None


def test_given_a_second_admin_then_the_first_can_step_down_but_not_both():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    second = services.users.invite(admin, "second@smith.example", Role.ADMIN)
    services.users.change_role(admin, admin.user_id, Role.STAFF)
    assert world.directory.users["founder@smith.example"].groups == {Role.STAFF}
    other = Principal(second.user_id, second.email, admin.firm_id, Role.ADMIN)
    with pytest.raises(LastAdmin):
        services.users.remove(other, second.user_id)
    actions = [e.action for e in world.audit_log.entries]
    assert actions[-1] is AuditAction.USER_ROLE_CHANGED


def test_given_a_removal_then_the_user_is_signed_out_and_gone_from_the_pool():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    staff = services.users.invite(admin, "staff@smith.example", Role.STAFF)
    services.users.remove(admin, staff.user_id)
    assert "staff@smith.example" not in world.directory.users
    assert [m.user_id for m in services.users.list(admin.firm_id)] == [admin.user_id]
    assert world.audit_log.entries[-1].action is AuditAction.USER_REMOVED


def test_given_another_firms_user_then_not_found_and_untouched():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    staff = services.users.invite(admin, "staff@smith.example", Role.STAFF)
    outsider = Principal("sub-x", "x@other.example", "other-firm", Role.ADMIN)
    with pytest.raises(NotFound):
        services.users.change_role(outsider, staff.user_id, Role.ADMIN)
    with pytest.raises(NotFound):
        services.users.remove(outsider, staff.user_id)
    assert world.directory.users["staff@smith.example"].groups == {Role.STAFF}


def test_given_the_pool_failing_a_role_change_then_the_member_is_put_back():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    staff = services.users.invite(admin, "staff@smith.example", Role.STAFF)
    world.directory.fail_set_role = True
    with pytest.raises(RuntimeError):
        services.users.change_role(admin, staff.user_id, Role.ADMIN)
    member = world.members.get(admin.firm_id, staff.user_id)
    assert member is not None and member.role is Role.STAFF
    assert world.members.admin_count[admin.firm_id] == 1


def test_given_many_entries_then_the_audit_pages_newest_first_per_firm():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    for n in range(60):
        world.clock.advance(seconds=1)
        services.users.invite(admin, f"user{n}@smith.example", Role.STAFF)
    first = services.audit.page(admin.firm_id, None)
    assert len(first.items) == 50 and first.next_cursor
    assert first.items[0].object["email"] == "user59@smith.example"
    second = services.audit.page(admin.firm_id, first.next_cursor)
    assert second.next_cursor is None
    assert second.items[-1].action is AuditAction.FIRM_CREATED
    assert services.audit.page("other-firm", None).items == []


def test_given_a_firm_name_that_would_break_an_email_header_then_refused_and_no_user():
    world = AccountsWorld()
    with pytest.raises(RuleViolation) as refused:
        world.services().signup.sign_up("Evil\u0000Firm", "a@firm.example", "Good-pass-1234")
    assert refused.value.field == "firm_name"
    assert world.directory.users == {}


def test_given_an_invited_user_signing_in_then_they_show_as_active():
    world = AccountsWorld()
    services, admin = _signed_up(world)
    invited = services.users.invite(admin, "staff@smith.example", Role.STAFF)
    staff = Principal(invited.user_id, invited.email, admin.firm_id, Role.STAFF)
    services.users.seen(staff)
    member = world.members.get(admin.firm_id, invited.user_id)
    assert member is not None and member.status is MemberStatus.ACTIVE


# --- the caller as the firm knows them now (every signed-in request) ---------------------------


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_given_a_removed_user_then_their_still_valid_token_is_refused_at_once(check):
    world = AccountsWorld()
    services, admin = _signed_up(world)
    invited = services.users.invite(admin, "staff@smith.example", Role.STAFF)
    staff = Principal(invited.user_id, invited.email, admin.firm_id, Role.STAFF)
    assert check(services.users, staff) == staff
    services.users.remove(admin, invited.user_id)
    with pytest.raises(Unauthenticated) as refused:
        check(services.users, staff)
    assert "no longer a member of this firm" in refused.value.message


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_given_a_demoted_admin_then_their_admin_token_acts_as_staff_and_a_promotion_waits(check):
    world = AccountsWorld()
    services, admin = _signed_up(world)
    second = services.users.invite(admin, "second@smith.example", Role.ADMIN)
    token_admin = Principal(second.user_id, second.email, admin.firm_id, Role.ADMIN)
    assert check(services.users, token_admin).role is Role.ADMIN
    services.users.change_role(admin, second.user_id, Role.STAFF)
    assert check(services.users, token_admin).role is Role.STAFF
    # Promoted again: the old staff token stays staff until the next sign-in's token.
    services.users.change_role(admin, second.user_id, Role.ADMIN)
    token_staff = Principal(second.user_id, second.email, admin.firm_id, Role.STAFF)
    assert check(services.users, token_staff).role is Role.STAFF


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_given_a_token_naming_a_firm_its_user_is_not_a_member_of_then_refused(check):
    world = AccountsWorld()
    services, admin = _signed_up(world)
    other, _ = _signed_up_as(world, "Other LLP", "other@other.example")
    # The first firm's admin, with a token that names the other firm (a forged claim, or a
    # pool user made with that firm id by anything but our API).
    with pytest.raises(Unauthenticated):
        check(services.users, Principal(admin.user_id, admin.email, other.firm_id, Role.ADMIN))
    with pytest.raises(Unauthenticated):
        check(services.users, Principal("no-such-sub", None, admin.firm_id, Role.ADMIN))


def test_given_the_local_stand_in_then_trusted_only_on_the_local_stage():
    from billbridge import bootstrap
    from billbridge.config import AccountsConfig

    world = AccountsWorld()
    stand_in = Principal("dev-user-firm-a", None, "firm-a", Role.ADMIN)
    with pytest.raises(Unauthenticated):
        world.services().users.current(stand_in)  # a deployed stage: dev or prod
    adapters = bootstrap.Adapters(
        settings=world.settings,
        clock=world.clock,
        directory=world.directory,
        members=world.members,
        audit=world.audit_log,
    )
    local = AccountsConfig(
        TABLE_NAME="unused",
        USER_POOL_ID="us-east-1_fake",
        SIGNUP_CLIENT_ID="fake-signup",
        STAGE="local",
    )
    users = bootstrap.build_accounts(local, adapters).users
    assert users.current(stand_in) == stand_in
    # Another firm's stand-in name is no stand-in for this firm.
    with pytest.raises(Unauthenticated):
        users.current(Principal("dev-user-firm-b", None, "firm-a", Role.ADMIN))


def _signed_up_as(world: AccountsWorld, firm_name: str, email: str) -> tuple[object, Principal]:
    services = world.services()
    made = services.signup.sign_up(firm_name, email, "Good-pass-1234")
    services.signup.confirm(email, world.directory.users[email].code)
    return made, Principal(made.user_id, made.email, made.firm_id, Role.ADMIN)
