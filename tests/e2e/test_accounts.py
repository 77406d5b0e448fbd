"""Accounts over HTTP against the local stack, signed in for real: users of the emulated user
pool sign in with Cognito's InitiateAuth and call the API with their ID token, verified by the
local gateway as API Gateway's Cognito authorizer does. Each role's allowed and forbidden
calls, tampered and foreign tokens, sign-up with the emailed code, invitations, the last-admin
rule and the audit trail."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

from local import cognito

pytestmark = pytest.mark.e2e

PASSWORD = "Strong-pass-1234"


@dataclass
class User:
    stack: Any
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"{self.stack.api_url}{path}", json=body, headers=self.headers, timeout=60
        )


def _cognito(info: dict[str, str]) -> Any:
    return boto3.client(
        "cognito-idp",
        region_name=info["region"],
        endpoint_url=info["endpoint"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def sign_in(stack: Any, info: dict[str, str], email: str, password: str = PASSWORD) -> User:
    answer = _cognito(info).initiate_auth(
        ClientId=info["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return User(stack, email, answer["AuthenticationResult"]["IdToken"])


def make_user(stack: Any, firm_id: str, role: str, email: str | None = None) -> User:
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@{firm_id}.example"
    made = requests.post(
        f"{stack.api_url}/_local/users",
        json={"email": email, "password": PASSWORD, "firm_id": firm_id, "role": role},
        headers=stack.admin_headers,
        timeout=60,
    )
    assert made.status_code == 201, made.text
    info = made.json()
    assert set(info) == {"user_pool_id", "client_id", "region", "endpoint"}
    return sign_in(stack, info, email)


def pool_info(stack: Any) -> dict[str, str]:
    config = requests.get(f"{stack.api_url}/config.js", timeout=30).text
    auth = json.loads(config.split("=", 1)[1].strip().rstrip(";"))["auth"]
    return {
        "user_pool_id": auth["userPoolId"],
        "client_id": auth["clientId"],
        "region": auth["region"],
        "endpoint": auth["endpoint"],
    }


def firm_id() -> str:
    return f"acc-{uuid.uuid4().hex[:10]}"


def assert_forbidden(answer: requests.Response) -> None:
    assert answer.status_code == 403, answer.text
    error = answer.json()["error"]
    assert error["code"] == "forbidden" and "admin" in error["message"]
    assert set(error) == {"code", "message", "field"}


def assert_unauthorized(answer: requests.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"


def test_given_a_staff_user_then_their_work_is_allowed_and_admin_calls_are_403(local_stack):
    firm = firm_id()
    staff = make_user(local_stack, firm, "staff")
    me = staff.call("GET", "/me")
    assert me.status_code == 200, me.text
    assert me.json()["firm_id"] == firm and me.json()["role"] == "staff"
    assert me.json()["email"] == staff.email and me.json()["user_id"]
    assert staff.call("GET", "/invoices").status_code == 200
    assert staff.call("GET", "/settings").status_code == 200
    assert staff.call("GET", "/reconciliation").status_code == 200
    assert staff.call("POST", "/envelopes", {"bill_ids": ["1"]}).status_code != 403

    settings = staff.call("GET", "/settings").json()
    assert_forbidden(staff.call("PUT", "/settings", settings))
    assert_forbidden(staff.call("POST", "/payment-links/lnk1/transactions/txn1/refunds", {}))
    assert_forbidden(staff.call("GET", "/users"))
    assert_forbidden(staff.call("POST", "/users", {"email": "x@y.example", "role": "admin"}))
    assert_forbidden(staff.call("PATCH", "/users/someone", {"role": "admin"}))
    assert_forbidden(staff.call("DELETE", "/users/someone"))
    assert_forbidden(staff.call("GET", "/audit"))


def test_given_an_admin_then_settings_users_and_audit_are_theirs_and_recorded(local_stack):
    firm = firm_id()
    admin = make_user(local_stack, firm, "admin")
    staff = make_user(local_stack, firm, "staff")
    settings = admin.call("GET", "/settings").json()
    settings["firm_name"] = "Audited Law LLP"
    saved = admin.call("PUT", "/settings", settings)
    assert saved.status_code == 200, saved.text
    users = admin.call("GET", "/users").json()["users"]
    expected = {(admin.email, "admin"), (staff.email, "staff")}
    assert {(u["email"], u["role"]) for u in users} == expected
    audit = admin.call("GET", "/audit")
    assert audit.status_code == 200, audit.text
    (entry,) = [i for i in audit.json()["items"] if i["action"] == "settings.updated"]
    assert entry["actor"]["email"] == admin.email and entry["object"] == {"fields": ["firm_name"]}
    assert entry["actor"]["user_id"] == admin.call("GET", "/me").json()["user_id"]


def test_given_one_firms_admin_then_another_firm_is_out_of_reach(local_stack):
    firm_a, firm_b = firm_id(), firm_id()
    admin_a = make_user(local_stack, firm_a, "admin")
    admin_b = make_user(local_stack, firm_b, "admin")
    staff_b = make_user(local_stack, firm_b, "staff")
    staff_b_id = staff_b.call("GET", "/me").json()["user_id"]
    # Firm A's admin sees only firm A, and cannot touch firm B's user by id.
    assert [u["email"] for u in admin_a.call("GET", "/users").json()["users"]] == [admin_a.email]
    assert admin_a.call("PATCH", f"/users/{staff_b_id}", {"role": "admin"}).status_code == 404
    assert admin_a.call("DELETE", f"/users/{staff_b_id}").status_code == 404
    assert staff_b.call("GET", "/me").json()["role"] == "staff"
    assert admin_b.call("GET", "/audit").json()["items"] == []


def _segments(token: str) -> list[str]:
    return token.split(".")


def _decode(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def _encode(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_given_tampered_or_foreign_tokens_then_each_is_401_and_nothing_changes(local_stack):
    firm_a, firm_b = firm_id(), firm_id()
    victim = make_user(local_stack, firm_b, "admin")
    staff = make_user(local_stack, firm_a, "staff")
    header, payload, signature = _segments(staff.token)
    claims = _decode(payload)

    # An edited payload: another firm, and the admin group.
    edited = _encode({**claims, "custom:firm_id": firm_b, "cognito:groups": ["admin"]})
    # A wrong signature on the real payload.
    resigned = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    # The emulator's stock key (moto's published one) cannot mint a token either.
    from joserfc import jwk, jwt
    from moto.utilities.utils import load_resource

    stock = jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    minted = jwt.encode(
        {"kid": "dummy", "alg": "RS256"}, {**claims, "custom:firm_id": firm_b}, stock
    )
    for token in (
        f"{header}.{edited}.{signature}",
        f"{header}.{payload}.{resigned}",
        minted,
        "not-a-jwt",
        "",
    ):
        answer = requests.put(
            f"{local_stack.api_url}/settings",
            json={"firm_name": "Hijacked"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert_unauthorized(answer)

    # Another app client of the same pool (wrong audience).
    info = pool_info(local_stack)
    client = _cognito(info)
    other_client = client.create_user_pool_client(
        UserPoolId=info["user_pool_id"],
        ClientName=f"other-{uuid.uuid4().hex[:6]}",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    wrong_audience = sign_in(local_stack, {**info, "client_id": other_client}, staff.email)
    assert_unauthorized(wrong_audience.call("GET", "/me"))

    # Another pool of the same emulator, with a user claiming the victim's firm as admin.
    other = cognito.create_user_pool(
        client,
        stack_name=f"intruder-{uuid.uuid4().hex[:6]}",
        endpoint=info["endpoint"],
        region=info["region"],
    )
    client.admin_create_user(
        UserPoolId=other.user_pool_id,
        Username="mallory@intruder.example",
        MessageAction="SUPPRESS",
        TemporaryPassword=PASSWORD,
        UserAttributes=[{"Name": "custom:firm_id", "Value": firm_b}],
    )
    client.admin_set_user_password(
        UserPoolId=other.user_pool_id,
        Username="mallory@intruder.example",
        Password=PASSWORD,
        Permanent=True,
    )
    client.admin_add_user_to_group(
        UserPoolId=other.user_pool_id, Username="mallory@intruder.example", GroupName="admin"
    )
    intruder = sign_in(
        local_stack, {**info, "client_id": other.client_id}, "mallory@intruder.example"
    )
    assert_unauthorized(intruder.call("GET", "/users"))

    # An access token is not an ID token.
    access = client.initiate_auth(
        ClientId=info["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": staff.email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    assert_unauthorized(User(local_stack, staff.email, access).call("GET", "/me"))

    # Nothing reached the victim's firm.
    assert victim.call("GET", "/settings").json()["firm_name"] != "Hijacked"
    assert victim.call("GET", "/audit").json()["items"] == []


def _code_in(stack: Any, email: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        mails = [m for m in stack.outbox() if m["to"] == [email]]
        if mails:
            found = re.search(r"\b(\d{6})\b", mails[-1]["body"])
            assert found, mails[-1]
            return found.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no email to {email}")
        time.sleep(0.2)


def test_given_a_sign_up_then_the_emailed_code_confirms_a_new_firm_and_its_admin(local_stack):
    email = f"founder-{uuid.uuid4().hex[:8]}@newfirm.example"
    api = local_stack.api_url
    made = requests.post(
        f"{api}/signup",
        json={"firm_name": "Brand New Law", "email": email, "password": PASSWORD},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    firm = made.json()["firm_id"]
    assert firm.startswith("brand-new-law-") and made.json()["status"] == "confirmation_sent"
    # Not confirmed yet: Cognito refuses the sign-in.
    info = pool_info(local_stack)
    with pytest.raises(_cognito(info).exceptions.UserNotConfirmedException):
        sign_in(local_stack, info, email)
    code = _code_in(local_stack, email)
    wrong = requests.post(
        f"{api}/signup/confirm",
        json={"email": email, "code": "000000" if code != "000000" else "111111"},
        timeout=60,
    )
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "wrong_code"
    confirmed = requests.post(
        f"{api}/signup/confirm", json={"email": email, "code": code}, timeout=60
    )
    assert confirmed.status_code == 200, confirmed.text
    admin = sign_in(local_stack, info, email)
    assert admin.call("GET", "/me").json() == {
        "user_id": made.json()["user_id"],
        "email": email,
        "firm_id": firm,
        "role": "admin",
    }
    assert admin.call("GET", "/settings").json()["firm_name"] == "Brand New Law"
    (entry,) = admin.call("GET", "/audit").json()["items"]
    assert entry["action"] == "firm.created" and entry["actor"]["email"] == email
    # The same address cannot sign up twice.
    again = requests.post(
        f"{api}/signup",
        json={"firm_name": "Again", "email": email, "password": PASSWORD},
        timeout=60,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "email_taken"


def test_given_an_invitation_then_the_emailed_password_signs_in_as_staff_of_that_firm(
    local_stack,
):
    firm = firm_id()
    admin = make_user(local_stack, firm, "admin")
    email = f"invitee-{uuid.uuid4().hex[:8]}@{firm}.example"
    invited = admin.call("POST", "/users", {"email": email, "role": "staff"})
    assert invited.status_code == 201, invited.text
    assert invited.json()["status"] == "invited"
    mail = [m for m in local_stack.outbox() if m["to"] == [email]][-1]
    temporary = re.search(r"temporary password (\S+?),? then", mail["body"])
    assert temporary, mail["body"]
    info = pool_info(local_stack)
    client = _cognito(info)
    challenge = client.initiate_auth(
        ClientId=info["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": temporary.group(1)},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    done = client.respond_to_auth_challenge(
        ClientId=info["client_id"],
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": PASSWORD},
    )
    staff = User(local_stack, email, done["AuthenticationResult"]["IdToken"])
    me = staff.call("GET", "/me").json()
    assert me["firm_id"] == firm and me["role"] == "staff"
    audit = admin.call("GET", "/audit").json()["items"]
    assert audit[0]["action"] == "user.invited" and audit[0]["object"]["email"] == email
    (listed,) = [u for u in admin.call("GET", "/users").json()["users"] if u["email"] == email]
    assert listed["status"] == "active" and listed["role"] == "staff"


def test_given_the_last_admin_then_they_cannot_leave_until_another_admin_exists(local_stack):
    firm = firm_id()
    admin = make_user(local_stack, firm, "admin")
    staff = make_user(local_stack, firm, "staff")
    my_id = admin.call("GET", "/me").json()["user_id"]
    staff_id = staff.call("GET", "/me").json()["user_id"]
    for answer in (
        admin.call("PATCH", f"/users/{my_id}", {"role": "staff"}),
        admin.call("DELETE", f"/users/{my_id}"),
    ):
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "last_admin"
    promoted = admin.call("PATCH", f"/users/{staff_id}", {"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert admin.call("PATCH", f"/users/{my_id}", {"role": "staff"}).status_code == 200
    # A fresh sign-in carries the new group.
    info = pool_info(local_stack)
    assert sign_in(local_stack, info, admin.email).call("GET", "/me").json()["role"] == "staff"
    new_admin = sign_in(local_stack, info, staff.email)
    removed = new_admin.call("DELETE", f"/users/{my_id}")
    assert removed.status_code == 200, removed.text
    assert removed.json()["email"] == admin.email
    with pytest.raises(_cognito(info).exceptions.UserNotFoundException):
        sign_in(local_stack, info, admin.email)
    actions = [i["action"] for i in new_admin.call("GET", "/audit").json()["items"]]
    assert actions[:3] == ["user.removed", "user.role_changed", "user.role_changed"]


def test_given_staff_sending_an_envelope_then_the_audit_names_them(new_firm, local_stack):
    firm, clio = new_firm()
    staff = make_user(local_stack, firm.firm_id, "staff")
    admin = make_user(local_stack, firm.firm_id, "admin")
    bill = clio.create_bill(client={"name": "Audit Client", "email": "audit@client.example"})
    firm.sync_now()
    drafted = staff.call("POST", "/envelopes", {"bill_ids": [str(bill["id"])]})
    assert drafted.status_code == 201, drafted.text
    envelope = drafted.json()["envelopes"][0]
    sent = staff.call("POST", f"/envelopes/{envelope['id']}/send")
    assert sent.status_code == 202, sent.text
    items = admin.call("GET", "/audit").json()["items"]
    (entry,) = [i for i in items if i["action"] == "envelope.sent"]
    assert entry["actor"]["email"] == staff.email
    assert entry["object"]["envelope_id"] == envelope["id"]
    assert entry["object"]["bill_ids"] == [str(bill["id"])]


def test_given_payment_accounts_then_only_an_admin_starts_onboarding_and_it_is_audited(
    local_stack,
):
    firm = firm_id()
    admin = make_user(local_stack, firm, "admin")
    staff = make_user(local_stack, firm, "staff")
    assert_forbidden(staff.call("GET", "/payment-accounts"))
    assert_forbidden(staff.call("POST", "/payment-accounts/onboarding", {"account": "trust"}))
    assert staff.call("GET", "/onboarding").status_code == 200
    started = admin.call("POST", "/payment-accounts/onboarding", {"account": "trust"})
    assert started.status_code == 201, started.text
    (entry,) = [
        i
        for i in admin.call("GET", "/audit").json()["items"]
        if i["action"] == "payment_account.updated"
    ]
    assert entry["actor"]["email"] == admin.email and entry["object"]["account"] == "trust"


def test_given_an_admin_removing_staff_then_the_staffs_token_is_refused_on_its_next_call(
    local_stack,
):
    firm = firm_id()
    admin = make_user(local_stack, firm, "admin")
    staff = make_user(local_stack, firm, "staff")
    staff_id = staff.call("GET", "/me").json()["user_id"]
    assert staff.call("GET", "/invoices").status_code == 200
    removed = admin.call("DELETE", f"/users/{staff_id}")
    assert removed.status_code == 200, removed.text
    # The same ID token, still within its hour and still verifying at the gateway.
    for method, path in (("GET", "/invoices"), ("GET", "/me"), ("POST", "/sync")):
        answer = staff.call(method, path)
        assert answer.status_code == 401, (path, answer.text)
        error = answer.json()["error"]
        assert error["message"].startswith("Your account is no longer a member of this firm")
        assert error["message"].endswith(".") and set(error) == {"code", "message", "field"}


def test_given_an_admin_demoted_then_their_next_refund_is_403_with_the_same_token(local_stack):
    firm = firm_id()
    founder = make_user(local_stack, firm, "admin")
    second = make_user(local_stack, firm, "admin")
    second_id = second.call("GET", "/me").json()["user_id"]
    refund = "/payment-links/lnk1/transactions/txn1/refunds"
    # An admin may refund: this link is unknown, so 404, not 403.
    assert second.call("POST", refund, {"amount_cents": 100}).status_code == 404
    demoted = founder.call("PATCH", f"/users/{second_id}", {"role": "staff"})
    assert demoted.status_code == 200, demoted.text
    # The token still says admin (cognito:groups); the firm's record says staff.
    assert_forbidden(second.call("POST", refund, {"amount_cents": 100}))
    assert_forbidden(second.call("GET", "/users"))
    assert second.call("GET", "/me").json()["role"] == "staff"
    assert second.call("GET", "/invoices").status_code == 200
    # Promoted again: this token (which says admin) acts as admin again.
    assert founder.call("PATCH", f"/users/{second_id}", {"role": "admin"}).status_code == 200
    assert second.call("GET", "/users").status_code == 200


def test_given_a_sign_up_not_made_by_the_api_then_no_firm_is_chosen_or_reached(local_stack):
    firm = firm_id()
    victim = make_user(local_stack, firm, "admin")
    info = pool_info(local_stack)
    client = _cognito(info)
    # The web client cannot write custom:firm_id (template.yaml WriteAttributes), as Cognito.
    with pytest.raises(client.exceptions.NotAuthorizedException):
        client.sign_up(
            ClientId=info["client_id"],
            Username=f"mallory-{uuid.uuid4().hex[:6]}@intruder.example",
            Password=PASSWORD,
            UserAttributes=[{"Name": "custom:firm_id", "Value": firm}],
        )
    # A public sign-up without it makes a user of no firm: every call of theirs is 401.
    email = f"nofirm-{uuid.uuid4().hex[:6]}@intruder.example"
    client.sign_up(ClientId=info["client_id"], Username=email, Password=PASSWORD)
    client.confirm_sign_up(
        ClientId=info["client_id"], Username=email, ConfirmationCode=_code_in(local_stack, email)
    )
    firmless = sign_in(local_stack, info, email)
    answer = firmless.call("GET", "/me")
    assert_unauthorized_sentence(answer, "belongs to no firm")
    # Nor can a signed-in user move themselves to another firm (custom:firm_id is immutable).
    access = client.initiate_auth(
        ClientId=info["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    with pytest.raises(client.exceptions.NotAuthorizedException):
        client.update_user_attributes(
            AccessToken=access, UserAttributes=[{"Name": "custom:firm_id", "Value": firm}]
        )
    # A pool user that carries the firm's id and the admin group, made by anything but the
    # API (so no member record of that firm), reaches nothing of it.
    planted = f"planted-{uuid.uuid4().hex[:6]}@intruder.example"
    client.admin_create_user(
        UserPoolId=info["user_pool_id"],
        Username=planted,
        MessageAction="SUPPRESS",
        TemporaryPassword=PASSWORD,
        UserAttributes=[{"Name": "custom:firm_id", "Value": firm}],
    )
    client.admin_set_user_password(
        UserPoolId=info["user_pool_id"], Username=planted, Password=PASSWORD, Permanent=True
    )
    client.admin_add_user_to_group(
        UserPoolId=info["user_pool_id"], Username=planted, GroupName="admin"
    )
    intruder = sign_in(local_stack, info, planted)
    for method, path in (("GET", "/users"), ("GET", "/settings"), ("GET", "/audit")):
        assert_unauthorized_sentence(intruder.call(method, path), "no longer a member")
    assert_unauthorized_sentence(
        intruder.call("PUT", "/settings", {"firm_name": "Hijacked"}), "no longer a member"
    )
    assert victim.call("GET", "/settings").json()["firm_name"] != "Hijacked"
    assert [u["email"] for u in victim.call("GET", "/users").json()["users"]] == [victim.email]


def assert_unauthorized_sentence(answer: requests.Response, words: str) -> None:
    assert answer.status_code == 401, answer.text
    error = answer.json()["error"]
    assert words in error["message"] and error["message"].endswith("."), error


def test_given_totp_turned_on_then_sign_in_asks_for_a_code_of_that_secret_until_turned_off(
    local_stack,
):
    from local.cognito import totp_code

    firm = firm_id()
    user = make_user(local_stack, firm, "staff")
    info = pool_info(local_stack)
    client = _cognito(info)

    def password_step() -> dict[str, Any]:
        answer: dict[str, Any] = client.initiate_auth(
            ClientId=info["client_id"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user.email, "PASSWORD": PASSWORD},
        )
        return answer

    access = password_step()["AuthenticationResult"]["AccessToken"]
    secret = client.associate_software_token(AccessToken=access)["SecretCode"]
    other = make_user(local_stack, firm, "staff")
    other_access = client.initiate_auth(
        ClientId=info["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": other.email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    # Each user gets a secret of their own (moto gives everyone one published secret).
    assert client.associate_software_token(AccessToken=other_access)["SecretCode"] != secret
    now = time.time()
    wrong = f"{(int(totp_code(secret, now)) + 1) % 1_000_000:06d}"
    with pytest.raises(client.exceptions.EnableSoftwareTokenMFAException):
        client.verify_software_token(AccessToken=access, UserCode=wrong)
    verified = client.verify_software_token(AccessToken=access, UserCode=totp_code(secret, now))
    assert verified["Status"] == "SUCCESS"
    client.set_user_mfa_preference(
        AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    assert client.get_user(AccessToken=access)["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]

    challenge = password_step()
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    with pytest.raises(client.exceptions.CodeMismatchException):
        client.respond_to_auth_challenge(
            ClientId=info["client_id"],
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=challenge["Session"],
            ChallengeResponses={"USERNAME": user.email, "SOFTWARE_TOKEN_MFA_CODE": wrong},
        )
    signed_in = client.respond_to_auth_challenge(
        ClientId=info["client_id"],
        ChallengeName="SOFTWARE_TOKEN_MFA",
        Session=challenge["Session"],
        ChallengeResponses={
            "USERNAME": user.email,
            "SOFTWARE_TOKEN_MFA_CODE": totp_code(secret, time.time()),
        },
    )["AuthenticationResult"]
    assert User(local_stack, user.email, signed_in["IdToken"]).call("GET", "/me").ok

    client.set_user_mfa_preference(
        AccessToken=signed_in["AccessToken"],
        SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False},
    )
    assert "AuthenticationResult" in password_step()
