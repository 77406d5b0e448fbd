"""What the local stack keeps between runs (local/persistence), part by part: the SQLite store,
moto's data (DynamoDB items, KMS keys, secrets, SES identities and sent mail), and both
sandboxes. Each test writes, restores into a new emulator or sandbox, and compares what a
user of it would read; several write from many threads at once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

from local.aws_template import create_dynamodb_tables
from local.outbox import read_outbox_in_process, verify_sender
from local.persistence import LocalState
from local.persistence.aws import AwsPersistence, dynamo_items
from local.persistence.store import StateError, StateStore
from local.provision import FAKE_AWS_ENV, provision, saved_stripe_webhook_secret

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)


# -- the store ------------------------------------------------------------------------------------


def test_given_rows_written_by_parallel_threads_when_reopened_then_every_row_is_read_back(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path)

    def writer(thread: int) -> None:
        for n in range(150):
            store.write([(f"t{thread}", f"{n:05d}", json.dumps({"n": n}))])
            if n % 10 == 9:  # and some deletes, interleaved with the other threads' puts
                store.write(deletes=[(f"t{thread}", f"{n - 9:05d}")])

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    reopened = StateStore(tmp_path)
    for thread in range(8):
        rows = reopened.load(f"t{thread}")
        expected = [f"{n:05d}" for n in range(150) if n % 10 != 0]
        assert [key for key, _ in rows] == expected
        assert [json.loads(value)["n"] for _, value in rows] == [int(k) for k in expected]
    reopened.close()


WRITER = """
import sys
from pathlib import Path
from local.persistence.store import StateStore
store = StateStore(Path(sys.argv[1]))
n = 0
while True:
    store.write([("rows", f"{n:08d}", str(n))])
    print(n, flush=True)  # reported only once committed
    n += 1
"""


def test_given_a_writer_killed_with_sigkill_when_reopened_then_every_commit_it_reported_is_there(
    tmp_path: Path,
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers/billbridge'}"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    reported = -1
    for line in writer.stdout:
        reported = int(line)
        if reported == 500:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()

    store = StateStore(tmp_path)
    keys = [int(key) for key, _ in store.load("rows")]
    store.close()
    assert keys[: reported + 1] == list(range(reported + 1))
    assert keys == list(range(len(keys)))  # nothing half-written past the last commit


def test_given_a_folder_held_by_a_running_store_then_a_second_one_is_refused(
    tmp_path: Path,
) -> None:
    first = StateStore(tmp_path)
    with pytest.raises(StateError, match="another local stack is using"):
        StateStore(tmp_path)
    first.close()
    StateStore(tmp_path).close()  # free again once the first one closed


def test_given_a_folder_written_by_another_schema_then_opening_it_names_the_clean_start(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path)
    store.write([("s", "k", "1")])
    store._db.execute("PRAGMA user_version = 99")
    store.close()

    with pytest.raises(StateError, match="FRESH=1"):
        StateStore(tmp_path)


def test_given_the_clean_start_switch_then_what_was_kept_is_gone(tmp_path: Path) -> None:
    kept = LocalState.open(tmp_path)
    kept.write_note("seed", "demo")
    kept.close()

    again = LocalState.open(tmp_path)
    assert (again.clean, again.note("seed")) == (False, "demo")
    again.close()
    fresh = LocalState.open(tmp_path, fresh=True)
    assert (fresh.clean, fresh.note("seed")) == (True, None)
    fresh.close()


# -- the AWS emulator -----------------------------------------------------------------------------


@contextmanager
def emulator(folder: Path, tables: bool = True) -> Iterator[AwsPersistence]:
    """A new moto, given what `folder` kept, saving from then on."""
    with mock_aws():
        store = StateStore(folder)
        saved = AwsPersistence(store)
        saved.restore_services()
        saved.install()
        try:
            if tables:
                create_dynamodb_tables(
                    boto3.client("dynamodb"), name_for=lambda logical: f"t-{logical}", exist_ok=True
                )
                saved.restore_tables()
            yield saved
        finally:
            saved.uninstall()
            store.close()


def all_items() -> list[str]:
    backend = dynamodb_backends[ACCOUNT][REGION]
    return sorted(json.dumps(item, sort_keys=True) for item in dynamo_items(backend))


def item(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **extra}


def test_given_parallel_writes_transactions_and_batches_when_restored_then_the_tables_are_equal(
    tmp_path: Path,
) -> None:
    table = "t-AppTable"
    won: list[int] = []
    with emulator(tmp_path):
        ddb = boto3.client("dynamodb")
        ddb.put_item(TableName=table, Item=item("COUNTER", "c", n={"N": "0"}))

        def worker(w: int) -> None:
            client = boto3.client("dynamodb")
            for i in range(12):
                # A conditional update on one shared item: exactly the ones the condition lets
                # through change it.
                current = client.get_item(TableName=table, Key=item("COUNTER", "c"))["Item"]
                try:
                    client.update_item(
                        TableName=table,
                        Key=item("COUNTER", "c"),
                        UpdateExpression="SET n = n + :one",
                        ConditionExpression="n = :seen",
                        ExpressionAttributeValues={":one": {"N": "1"}, ":seen": current["n"]},
                    )
                    won.append(1)
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
                binary = {"B": bytes([w, i])}
                nested = {"M": {"blob": {"B": b"\x00\xff"}, "list": {"L": [{"N": "1.50"}]}}}
                client.put_item(
                    TableName=table, Item=item(f"W#{w}", f"{i:03d}", b=binary, m=nested)
                )
                if i % 3 == 2:
                    client.delete_item(TableName=table, Key=item(f"W#{w}", f"{i - 1:03d}"))
                try:  # every other transaction is cancelled by its condition: nothing of it stays
                    client.transact_write_items(
                        TransactItems=[
                            {"Put": {"TableName": table, "Item": item(f"T#{w}", f"{i:03d}")}},
                            {
                                "Put": {
                                    "TableName": table,
                                    "Item": item(f"T#{w}", "guard"),
                                    "ConditionExpression": "attribute_not_exists(pk)",
                                }
                            },
                        ]
                    )
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "TransactionCanceledException"
            client.batch_write_item(
                RequestItems={
                    table: [{"PutRequest": {"Item": item(f"B#{w}", f"{n:03d}")}} for n in range(25)]
                }
            )

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        written = all_items()
        counter = ddb.get_item(TableName=table, Key=item("COUNTER", "c"))["Item"]["n"]["N"]

    with emulator(tmp_path):
        assert all_items() == written
        restored = boto3.client("dynamodb").get_item(TableName=table, Key=item("COUNTER", "c"))
        assert restored["Item"]["n"]["N"] == counter == str(len(won))
        transacted = boto3.client("dynamodb").query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "T#0"}},
        )["Items"]
        assert len(transacted) == 2  # the first transaction and its guard; the rest cancelled
    assert len(written) == 1 + 6 * (12 - 4) + 6 * 2 + 6 * 25


def test_given_a_batch_write_of_25_items_then_it_is_saved_in_one_commit(tmp_path: Path) -> None:
    with emulator(tmp_path) as saved:
        before = saved.store.writes
        boto3.client("dynamodb").batch_write_item(
            RequestItems={
                "t-AppTable": [{"PutRequest": {"Item": item("B", f"{n:03d}")}} for n in range(25)]
            }
        )
        assert saved.store.writes == before + 1


def test_given_a_refused_condition_or_a_cancelled_transaction_then_nothing_is_written(
    tmp_path: Path,
) -> None:
    # A duplicate webhook is refused by a condition: under load that must cost no commit.
    with emulator(tmp_path) as saved:
        ddb = boto3.client("dynamodb")
        ddb.put_item(TableName="t-AppTable", Item=item("EVT", "1"))
        before = saved.store.writes
        exists = "attribute_not_exists(pk)"
        with pytest.raises(ClientError):
            ddb.put_item(TableName="t-AppTable", Item=item("EVT", "1"), ConditionExpression=exists)
        with pytest.raises(ClientError):
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t-AppTable", "Item": item("EVT", "2")}},
                    {
                        "Put": {
                            "TableName": "t-AppTable",
                            "Item": item("EVT", "1"),
                            "ConditionExpression": exists,
                        }
                    },
                ]
            )
        assert saved.store.writes == before


def test_given_a_deleted_item_when_restored_then_it_stays_deleted_however_its_key_was_spelled(
    tmp_path: Path,
) -> None:
    with emulator(tmp_path, tables=False):
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName="numbers",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="numbers", Item={"id": {"N": "1"}, "v": {"S": "one"}})
        ddb.put_item(TableName="numbers", Item={"id": {"N": "2"}})
        ddb.delete_item(TableName="numbers", Key={"id": {"N": "1.0"}})  # the same number

    with mock_aws():
        store = StateStore(tmp_path)
        boto3.client("dynamodb").create_table(
            TableName="numbers",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        AwsPersistence(store).restore_tables()
        left = boto3.client("dynamodb").scan(TableName="numbers")["Items"]
        store.close()
    assert left == [{"id": {"N": "2"}}]


def test_given_kept_items_that_no_longer_fit_the_template_then_the_start_names_the_clean_start(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path)
    scope = f"dynamodb/{ACCOUNT}/{REGION}/t-AppTable"
    store.write([(scope, "old", json.dumps({"id": {"S": "a key the table no longer has"}}))])
    store.close()
    with pytest.raises(RuntimeError, match="FRESH=1"), emulator(tmp_path):
        pass


def provisioned_env() -> dict[str, str]:
    made = provision(api_base_url="http://127.0.0.1:9", clio_base_url="http://127.0.0.1:9")
    made.lambdas.shutdown()
    return made.env


def test_given_a_restart_when_provisioned_again_then_the_same_key_and_arns_and_ciphertexts_decrypt(
    tmp_path: Path,
) -> None:
    with emulator(tmp_path, tables=False):
        first = provisioned_env()
        sealed = boto3.client("kms").encrypt(KeyId=first["TOKEN_KMS_KEY_ID"], Plaintext=b"token")
        pay_key = boto3.client("secretsmanager").get_secret_value(
            SecretId=first["PAY_LINK_SECRET_ARN"]
        )["SecretString"]

    with emulator(tmp_path, tables=False):
        second = provisioned_env()
        kms = boto3.client("kms")
        assert kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"])["Plaintext"] == b"token"
        assert (
            boto3.client("secretsmanager").get_secret_value(SecretId=second["PAY_LINK_SECRET_ARN"])[
                "SecretString"
            ]
            == pay_key
        )
        keys = kms.list_keys()["Keys"]
        pools = boto3.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"]
    # Same key id, same secret ARNs, same table and function names, same user pool and app
    # client ids: every variable the functions get is the same.
    assert second == first
    assert first["USER_POOL_ID"] and first["SIGNUP_CLIENT_ID"]
    assert [k["KeyId"] for k in keys] == [first["TOKEN_KMS_KEY_ID"]]  # no second key made
    assert len(pools) == 1  # no second pool made


def _sign_in(pool_id: str, email: str, password: str) -> dict[str, Any]:
    cognito = boto3.client("cognito-idp")
    web = next(
        c["ClientId"]
        for c in cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=10)[
            "UserPoolClients"
        ]
        if c["ClientName"].endswith("-web")
    )
    answer = cognito.initiate_auth(
        ClientId=web,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return dict(answer["AuthenticationResult"])


def _jwks(pool_id: str) -> dict[str, Any]:
    from local import cognito as local_cognito

    pool = local_cognito._find_pool(pool_id)
    assert pool is not None
    status, _, body = local_cognito._serve_json_web_key(None, f"/{pool_id}/.well-known/jwks.json")
    assert status == 200
    return dict(json.loads(body))


def test_given_a_restart_then_the_user_pool_keeps_its_users_groups_and_signing_key(
    tmp_path: Path,
) -> None:
    from joserfc import jwk, jwt

    with emulator(tmp_path, tables=False):
        env = provisioned_env()
        pool_id = env["USER_POOL_ID"]
        cognito = boto3.client("cognito-idp")
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username="ana@firm.example",
            MessageAction="SUPPRESS",
            TemporaryPassword="Temporary-pass-1",
            UserAttributes=[
                {"Name": "email", "Value": "ana@firm.example"},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:firm_id", "Value": "firm-a"},
            ],
        )
        cognito.admin_set_user_password(
            UserPoolId=pool_id,
            Username="ana@firm.example",
            Password="Kept-pass-123",
            Permanent=True,
        )
        cognito.admin_add_user_to_group(
            UserPoolId=pool_id, Username="ana@firm.example", GroupName="staff"
        )
        old = _sign_in(pool_id, "ana@firm.example", "Kept-pass-123")
        old_keys = _jwks(pool_id)

    with emulator(tmp_path, tables=False):
        assert provisioned_env() == env
        cognito = boto3.client("cognito-idp")
        user = cognito.admin_get_user(UserPoolId=pool_id, Username="ana@firm.example")
        attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
        assert user["UserStatus"] == "CONFIRMED"
        assert attributes["custom:firm_id"] == "firm-a"
        assert attributes["email"] == "ana@firm.example"
        assert attributes["email_verified"] == "true"
        groups = cognito.admin_list_groups_for_user(
            UserPoolId=pool_id, Username="ana@firm.example"
        )["Groups"]
        assert [g["GroupName"] for g in groups] == ["staff"]
        with pytest.raises(ClientError, match="NotAuthorized"):
            _sign_in(pool_id, "ana@firm.example", "Another-pass-123")
        new = _sign_in(pool_id, "ana@firm.example", "Kept-pass-123")
        # The same published key, and both the old and the new ID token verify against it.
        assert _jwks(pool_id) == old_keys
        key_set = jwk.KeySet.import_key_set(_jwks(pool_id))  # type: ignore[arg-type]
        for token in (old["IdToken"], new["IdToken"]):
            claims = jwt.decode(token, key_set).claims
            assert claims["custom:firm_id"] == "firm-a"
            assert claims["cognito:groups"] == ["staff"]
        # And the refresh token issued before the restart still refreshes.
        web = jwt.decode(old["IdToken"], key_set).claims["aud"]
        refreshed = cognito.initiate_auth(
            ClientId=web,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": old["RefreshToken"]},
        )
        assert refreshed["AuthenticationResult"]["IdToken"]


def test_given_a_restart_then_the_stripe_webhook_signing_secret_is_the_kept_one(
    tmp_path: Path,
) -> None:
    with emulator(tmp_path, tables=False):
        assert saved_stripe_webhook_secret() is None  # a first start makes one
        made = provision(
            api_base_url="http://127.0.0.1:9",
            clio_base_url="http://127.0.0.1:9",
            stripe_webhook_secret="whsec_first_start",
        )
        made.lambdas.shutdown()
    with emulator(tmp_path, tables=False):
        assert saved_stripe_webhook_secret() == "whsec_first_start"


def test_given_a_secret_changed_after_creation_then_the_restart_has_its_latest_value(
    tmp_path: Path,
) -> None:
    with emulator(tmp_path, tables=False):
        secrets = boto3.client("secretsmanager")
        arn = secrets.create_secret(Name="app/one", SecretString="v1")["ARN"]
        secrets.put_secret_value(SecretId="app/one", SecretString="v2")
        secrets.create_secret(Name="app/gone", SecretString="x")
        secrets.delete_secret(SecretId="app/gone", ForceDeleteWithoutRecovery=True)

    with emulator(tmp_path, tables=False):
        secrets = boto3.client("secretsmanager")
        assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "v2"
        versions = secrets.list_secret_version_ids(SecretId="app/one")["Versions"]
        assert len(versions) == 2
        assert [s["Name"] for s in secrets.list_secrets()["SecretList"]] == ["app/one"]


RAW = "From: billing@firm.example\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nPay: {link}\r\n"


def test_given_mail_sent_before_a_restart_then_the_outbox_is_the_same_and_the_sender_stays_verified(
    tmp_path: Path,
) -> None:
    with emulator(tmp_path, tables=False):
        ses = boto3.client("sesv2")
        verify_sender(ses, "billing@firm.example")

        def send(n: int) -> None:
            raw = RAW.format(to=f"c{n}@client.example", subject=f"Bill {n}", link=f"/pay/{n}")
            boto3.client("sesv2").send_email(
                FromEmailAddress="billing@firm.example",
                Destination={"ToAddresses": [f"c{n}@client.example"]},
                Content={"Raw": {"Data": raw.encode()}},
            )

        threads = [threading.Thread(target=send, args=(n,)) for n in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent = read_outbox_in_process()
        quota = boto3.client("ses").get_send_quota()["SentLast24Hours"]

    with emulator(tmp_path, tables=False):
        assert read_outbox_in_process() == sent
        assert boto3.client("ses").get_send_quota()["SentLast24Hours"] == quota
        # Not verified again: the kept identity lets mail go.
        boto3.client("sesv2").send_email(
            FromEmailAddress="billing@firm.example",
            Destination={"ToAddresses": ["late@client.example"]},
            Content={
                "Raw": {"Data": RAW.format(to="late@client.example", subject="Late", link="/")}
            },
        )
        assert [m["subject"] for m in read_outbox_in_process()] == [
            *(m["subject"] for m in sent),
            "Late",
        ]
    assert sorted(m["subject"] for m in sent) == sorted(f"Bill {n}" for n in range(10))


def test_given_an_encrypted_token_item_then_it_is_readable_after_a_restart_through_the_app_cipher(
    tmp_path: Path,
) -> None:
    from billbridge.adapters.kms_cipher import KmsCipher

    context = {"firm_id": "firm-1"}
    with emulator(tmp_path, tables=False):
        env = provisioned_env()
        cipher = KmsCipher(boto3.client("kms"), env["TOKEN_KMS_KEY_ID"])
        sealed = cipher.encrypt(b"access-token-of-a-firm", context)

    with emulator(tmp_path, tables=False):
        env = provisioned_env()
        cipher = KmsCipher(boto3.client("kms"), env["TOKEN_KMS_KEY_ID"])
        assert cipher.decrypt(sealed, context) == b"access-token-of-a-firm"


def test_given_a_sign_up_waiting_for_its_code_when_restarted_then_the_emailed_code_confirms_it(
    tmp_path: Path,
) -> None:
    from local import cognito as local_cognito

    with emulator(tmp_path, tables=False):
        env = provisioned_env()
        cognito = boto3.client("cognito-idp")
        client_id = env["SIGNUP_CLIENT_ID"]
        secret = cognito.describe_user_pool_client(
            UserPoolId=env["USER_POOL_ID"], ClientId=client_id
        )["UserPoolClient"]["ClientSecret"]
        email = "new@firm.example"
        secret_hash = local_cognito._secret_hash(secret, client_id, email)
        cognito.sign_up(
            ClientId=client_id,
            SecretHash=secret_hash,
            Username=email,
            Password="Signed-up-pass-1",
            UserAttributes=[{"Name": "email", "Value": email}],
        )
        (mail,) = [m for m in read_outbox_in_process() if m["to"] == [email]]

    with emulator(tmp_path, tables=False):
        assert provisioned_env() == env
        cognito = boto3.client("cognito-idp")
        user = cognito.admin_get_user(UserPoolId=env["USER_POOL_ID"], Username=email)
        assert user["UserStatus"] == "UNCONFIRMED"
        with pytest.raises(ClientError, match="CodeMismatch"):
            cognito.confirm_sign_up(
                ClientId=client_id, SecretHash=secret_hash, Username=email, ConfirmationCode="0"
            )
        (code,) = re.findall(r"\b\d{6}\b", mail["body"])
        cognito.confirm_sign_up(
            ClientId=client_id, SecretHash=secret_hash, Username=email, ConfirmationCode=code
        )
        user = cognito.admin_get_user(UserPoolId=env["USER_POOL_ID"], Username=email)
        attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
        assert user["UserStatus"] == "CONFIRMED" and attributes["email_verified"] == "true"


def test_given_a_kept_user_pool_that_cannot_be_read_back_then_the_start_names_the_clean_start(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path)
    scope = f"cognito-idp/{ACCOUNT}/{REGION}"
    store.write([(scope, "us-east-1_gone", json.dumps({"$pickle": "bm90IGEgcGlja2xl"}))])
    store.close()
    with pytest.raises(RuntimeError, match="FRESH=1"), emulator(tmp_path):
        pass
