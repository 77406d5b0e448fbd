"""The emulated user pool and the local Cognito authorizer on a moto server, and the members
and audit items on moto's DynamoDB: a token passes only when API Gateway's authorizer would
pass it, and the last admin stays even when two admins step down at once."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from joserfc import jwk, jwt
from moto import mock_aws
from moto.server import ThreadedMotoServer
from moto.utilities.utils import load_resource

from billbridge.adapters.dynamo_accounts import DynamoAuditLog, DynamoMembers
from billbridge.domain.access import Role
from billbridge.domain.accounts import (
    Actor,
    AuditAction,
    AuditEntry,
    LastAdmin,
    Member,
    MemberStatus,
)
from billbridge.domain.errors import NotFound
from local import cognito, moto_speedups
from local.authorizer import CognitoAuthorizer
from local.aws_template import create_dynamodb_tables
from local.provision import FAKE_AWS_ENV

PASSWORD = "Good-pass-1234"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pool:
    info: cognito.UserPoolInfo
    client: Any

    def user(self, email: str, firm_id: str, group: str = "staff") -> None:
        self.client.admin_create_user(
            UserPoolId=self.info.user_pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            TemporaryPassword=PASSWORD,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "custom:firm_id", "Value": firm_id},
            ],
        )
        self.client.admin_set_user_password(
            UserPoolId=self.info.user_pool_id, Username=email, Password=PASSWORD, Permanent=True
        )
        self.client.admin_add_user_to_group(
            UserPoolId=self.info.user_pool_id, Username=email, GroupName=group
        )

    def tokens(self, email: str, client_id: str | None = None) -> dict[str, str]:
        answer = self.client.initiate_auth(
            ClientId=client_id or self.info.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
        )
        result: dict[str, str] = answer["AuthenticationResult"]
        return result


@pytest.fixture(scope="module")
def emulator(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch_module.setenv(name, value)
    cognito.install()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def _pool(url: str, stack: str) -> Pool:
    client = boto3.client("cognito-idp", region_name="us-east-1", endpoint_url=url)
    info = cognito.create_user_pool(client, stack_name=stack, endpoint=url, region="us-east-1")
    return Pool(info=info, client=client)


@pytest.fixture(scope="module")
def pool(emulator: str) -> Pool:
    made = _pool(emulator, "accounts-a")
    made.user("ann@firm-a.example", "firm-a", "admin")
    return made


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_given_an_id_token_of_the_pool_then_its_claims_reach_the_handler_as_strings(pool: Pool):
    token = pool.tokens("ann@firm-a.example")["IdToken"]
    claims = CognitoAuthorizer(pool.info).claims_for(f"Bearer {token}")
    assert claims is not None
    assert claims["custom:firm_id"] == "firm-a"
    assert claims["cognito:groups"] == "admin"
    assert claims["email"] == "ann@firm-a.example"
    assert claims["iss"] == pool.info.issuer and claims["aud"] == pool.info.client_id
    # API Gateway's REST authorizer gives times as dates, every value as a string.
    api_gateway_time = r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4}"
    assert re.fullmatch(api_gateway_time, claims["exp"])
    assert all(isinstance(v, str) for v in claims.values())


def test_given_each_pool_then_it_signs_with_its_own_published_key(emulator: str, pool: Pool):
    other = _pool(emulator, "accounts-keys")
    import requests

    mine = requests.get(pool.info.jwks_url, timeout=10).json()["keys"]
    theirs = requests.get(other.info.jwks_url, timeout=10).json()["keys"]
    assert mine[0]["kid"] != theirs[0]["kid"] and mine[0]["n"] != theirs[0]["n"]
    header, _, _ = _parts(pool.tokens("ann@firm-a.example")["IdToken"])
    assert header["kid"] == mine[0]["kid"] and header["alg"] == "RS256"


def test_given_a_token_with_an_edited_payload_then_refused(pool: Pool):
    token = pool.tokens("ann@firm-a.example")["IdToken"]
    header, _payload, signature = token.split(".")
    _, claims, _ = _parts(token)
    edited = _b64({**claims, "custom:firm_id": "firm-b"})
    assert CognitoAuthorizer(pool.info).claims_for(f"Bearer {header}.{edited}.{signature}") is None


def test_given_a_token_signed_with_motos_published_key_then_refused(pool: Pool):
    # moto signs every pool's tokens with this key, printed in its source: a forgery.
    _, claims, _ = _parts(pool.tokens("ann@firm-a.example")["IdToken"])
    published = jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))
    forged = jwt.encode(
        {"kid": "dummy", "alg": "RS256"}, {**claims, "custom:firm_id": "firm-b"}, published
    )
    assert CognitoAuthorizer(pool.info).claims_for(f"Bearer {forged}") is None


def test_given_a_token_signed_with_a_key_of_the_attackers_own_then_refused(pool: Pool):
    _, claims, _ = _parts(pool.tokens("ann@firm-a.example")["IdToken"])
    header, _, _ = _parts(pool.tokens("ann@firm-a.example")["IdToken"])
    mine = jwk.RSAKey.generate_key(2048, parameters={"kid": header["kid"]})
    forged = jwt.encode({"kid": header["kid"], "alg": "RS256"}, claims, mine)
    assert CognitoAuthorizer(pool.info).claims_for(f"Bearer {forged}") is None


def test_given_an_unsigned_or_hmac_token_then_refused(pool: Pool):
    token = pool.tokens("ann@firm-a.example")["IdToken"]
    _, claims, _ = _parts(token)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert CognitoAuthorizer(pool.info).claims_for(f"Bearer {unsigned}") is None
    hmac_key = jwk.OctKey.import_key(b"k" * 32)
    hs = jwt.encode({"alg": "HS256"}, claims, hmac_key)
    assert CognitoAuthorizer(pool.info).claims_for(f"Bearer {hs}") is None


def test_given_an_expired_token_then_refused(pool: Pool):
    token = pool.tokens("ann@firm-a.example")["IdToken"]
    _, claims, _ = _parts(token)
    later = CognitoAuthorizer(pool.info, clock=lambda: float(claims["exp"]) + 1)
    assert later.claims_for(f"Bearer {token}") is None
    just_before = CognitoAuthorizer(pool.info, clock=lambda: float(claims["exp"]) - 1)
    assert just_before.claims_for(f"Bearer {token}") is not None


def test_given_a_token_for_another_app_client_then_refused(pool: Pool):
    other = pool.client.create_user_pool_client(
        UserPoolId=pool.info.user_pool_id,
        ClientName="not-the-web-ui",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    token = pool.tokens("ann@firm-a.example", client_id=other)["IdToken"]
    assert _parts(token)[1]["aud"] == other
    assert CognitoAuthorizer(pool.info).claims_for(f"Bearer {token}") is None


def test_given_a_token_of_another_pool_then_refused(emulator: str, pool: Pool):
    elsewhere = _pool(emulator, "accounts-b")
    elsewhere.user("mallory@firm-b.example", "firm-a", "admin")  # claims firm-a, other pool
    token = elsewhere.tokens("mallory@firm-b.example")["IdToken"]
    assert CognitoAuthorizer(elsewhere.info).claims_for(f"Bearer {token}") is not None
    assert CognitoAuthorizer(pool.info).claims_for(f"Bearer {token}") is None


def test_given_an_access_token_or_a_refresh_token_then_refused(pool: Pool):
    tokens = pool.tokens("ann@firm-a.example")
    authorizer = CognitoAuthorizer(pool.info)
    assert authorizer.claims_for(f"Bearer {tokens['AccessToken']}") is None
    assert authorizer.claims_for(f"Bearer {tokens['RefreshToken']}") is None
    assert authorizer.claims_for(tokens["IdToken"]) is None  # not a Bearer header
    assert authorizer.claims_for("Bearer dev-firm-a") is None  # the stand-in is the gateway's


def test_given_a_sign_up_then_the_code_is_emailed_and_only_it_confirms(pool: Pool):
    import hashlib
    import hmac

    from local.outbox import read_outbox_in_process

    secret = cognito.signup_client_secret(pool.client, pool.info)

    def secret_hash(user: str) -> str:
        digest = hmac.new(
            secret.encode(), (user + pool.info.signup_client_id).encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode()

    email = "new@firm-c.example"
    with pytest.raises(pool.client.exceptions.NotAuthorizedException):  # no secret hash
        pool.client.sign_up(ClientId=pool.info.signup_client_id, Username=email, Password=PASSWORD)
    pool.client.sign_up(
        ClientId=pool.info.signup_client_id,
        SecretHash=secret_hash(email),
        Username=email,
        Password=PASSWORD,
        UserAttributes=[{"Name": "custom:firm_id", "Value": "firm-c"}],
    )
    mail = [m for m in read_outbox_in_process() if m["to"] == [email]][-1]
    assert mail["subject"] == "Your BillBridge confirmation code"
    code = next(w for w in mail["body"].split() if w.rstrip(".").isdigit()).rstrip(".")
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(pool.client.exceptions.CodeMismatchException):
        pool.client.confirm_sign_up(
            ClientId=pool.info.signup_client_id,
            SecretHash=secret_hash(email),
            Username=email,
            ConfirmationCode=wrong,
        )
    pool.client.confirm_sign_up(
        ClientId=pool.info.signup_client_id,
        SecretHash=secret_hash(email),
        Username=email,
        ConfirmationCode=code,
    )
    user = pool.client.admin_get_user(UserPoolId=pool.info.user_pool_id, Username=email)
    assert user["UserStatus"] == "CONFIRMED"


def test_given_an_internationalised_address_then_sign_up_and_confirm_work_through_the_adapter(
    pool: Pool,
):
    # A generated case found the secret hash computed in Latin-1 (a 502 on confirm).
    from billbridge.adapters.cognito_directory import CognitoDirectory
    from billbridge.domain.accounts import checked_email
    from billbridge.domain.errors import NotFound as Refused
    from local.outbox import read_outbox_in_process

    email = checked_email("Founder@Kanzlei.XN--h2BREG3eVE")
    assert email == "founder@kanzlei.\u092d\u093e\u0930\u0924\u092e\u094d"
    directory = CognitoDirectory(pool.client, pool.info.user_pool_id, pool.info.signup_client_id)
    with pytest.raises(Refused) as nothing:
        directory.confirm_sign_up(email, "123456")
    assert nothing.value.code == "nothing_to_confirm"
    user_id = directory.sign_up("firm-intl", email, PASSWORD)
    mail = [m for m in read_outbox_in_process() if m["to"] and m["to"][0].startswith("founder@")]
    code = re.search(r"\b(\d{6})\b", mail[-1]["body"])
    assert code
    assert directory.confirm_sign_up(email, code.group(1)) == (user_id, "firm-intl")


# --- members and the audit trail on DynamoDB ---------------------------------------------------
# (after every test of the emulator above: mock_aws() resets moto's backends, the server's too)


@pytest.fixture
def table() -> Iterator[str]:
    # As the local stack runs moto: one lock over DynamoDB's requests, so its transactions are
    # atomic against each other (bare moto interleaves two threads' transactions).
    moto_speedups.install()
    with mock_aws():
        names = create_dynamodb_tables(
            boto3.client("dynamodb", region_name="us-east-1"), name_for=lambda n: f"t-{n}"
        )
        yield names["AppTable"]


def _member(user_id: str, role: Role, firm: str = "firm-a") -> Member:
    return Member(
        user_id=user_id,
        firm_id=firm,
        email=f"{user_id}@{firm}.example",
        role=role,
        status=MemberStatus.ACTIVE,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_given_two_admins_stepping_down_at_once_then_exactly_one_does(table: str):
    members = DynamoMembers(boto3.client("dynamodb", region_name="us-east-1"), table)
    members.add(_member("a", Role.ADMIN))
    members.add(_member("b", Role.ADMIN))
    outcomes: dict[str, str] = {}
    start = threading.Barrier(2)

    def step_down(user_id: str) -> None:
        mine = DynamoMembers(boto3.client("dynamodb", region_name="us-east-1"), table)
        start.wait()
        try:
            mine.change_role("firm-a", user_id, Role.STAFF)
            outcomes[user_id] = "demoted"
        except LastAdmin:
            outcomes[user_id] = "refused"

    threads = [threading.Thread(target=step_down, args=(u,)) for u in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["demoted", "refused"]
    admins = [m for m in members.list("firm-a") if m.role is Role.ADMIN]
    assert len(admins) == 1
    with pytest.raises(LastAdmin):
        members.remove("firm-a", admins[0].user_id)


def test_given_staff_then_they_can_be_removed_and_another_firm_sees_none(table: str):
    members = DynamoMembers(boto3.client("dynamodb", region_name="us-east-1"), table)
    members.add(_member("a", Role.ADMIN))
    members.add(_member("s", Role.STAFF))
    members.add(_member("x", Role.ADMIN, firm="firm-b"))
    assert members.remove("firm-a", "s").role is Role.STAFF
    assert [m.user_id for m in members.list("firm-a")] == ["a"]
    assert [m.user_id for m in members.list("firm-b")] == ["x"]
    assert members.get("firm-b", "a") is None


def test_given_many_audit_entries_then_pages_come_newest_first_and_cursors_stay_in_the_firm(
    table: str,
):
    log = DynamoAuditLog(boto3.client("dynamodb", region_name="us-east-1"), table)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(7):
        for firm in ("firm-a", "firm-b"):
            log.record(
                AuditEntry(
                    id=f"{n:016x}",
                    firm_id=firm,
                    at=t0 + timedelta(minutes=n),
                    actor=Actor("u", "u@x.example"),
                    action=AuditAction.SETTINGS_UPDATED,
                    object={"n": n, "firm": firm},
                )
            )
    seen: list[int] = []
    cursor = None
    while True:
        page = log.page("firm-a", cursor, 3)
        assert all(e.object["firm"] == "firm-a" for e in page.items)
        seen += [e.object["n"] for e in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [6, 5, 4, 3, 2, 1, 0]
    with pytest.raises(NotFound):
        log.page("firm-a", "not-a-cursor", 3)
    # A cursor of firm-b's pages reads firm-a's own partition, never firm-b's.
    other = log.page("firm-b", None, 3).next_cursor
    assert all(e.firm_id == "firm-a" for e in log.page("firm-a", other, 3).items)


def test_given_a_refund_by_a_user_then_the_stored_refund_and_ledger_entry_keep_who(table: str):
    from billbridge.adapters.dynamo_payments import ledger_item, txn_from_item, txn_item
    from billbridge.domain.ledger import EntryKind, _entry
    from billbridge.domain.payments import (
        Account,
        Allocation,
        Method,
        Transaction,
        TxnKind,
        TxnStatus,
    )

    now = datetime(2026, 3, 1, tzinfo=UTC)
    refund = Transaction(
        id="rf_1",
        firm_id="firm-a",
        link_id="pl_1",
        kind=TxnKind.REFUND,
        method=Method.CARD,
        account=Account.OPERATING,
        status=TxnStatus.SUCCEEDED,
        amount_cents=2_500,
        currency="USD",
        allocations=(Allocation(1, Account.OPERATING, 2_500),),
        created_at=now,
        updated_at=now,
        requested_by_user_id="sub-ann",
        requested_by_email="ann@firm-a.example",
    )
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.put_item(TableName=table, Item=txn_item(refund))
    stored = client.get_item(
        TableName=table, Key={"pk": {"S": "FIRM#firm-a"}, "sk": txn_item(refund)["sk"]}
    )["Item"]
    again = txn_from_item("firm-a", stored)
    assert (again.requested_by_user_id, again.requested_by_email) == (
        "sub-ann",
        "ann@firm-a.example",
    )
    item = ledger_item(_entry(again, EntryKind.REFUND, -1, now, "evt_1"))
    assert item["user_id"] == {"S": "sub-ann"} and item["user_email"] == {"S": "ann@firm-a.example"}
