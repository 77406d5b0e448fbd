"""Per-firm configuration items of the app table: it owns the firm's settings (implements
services.ports.SettingsRepository; they live in the firm header, see dynamo_header), its Clio
connection item with the secrets encrypted under KMS, the directory of connected firms
(implements services.ports.ConnectionRepository), and the single-use states of connects in
progress (services.ports.ConnectStateRepository). See docs/data-model.md, "Firm header",
"Clio connection" and "Connect state".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    DynamoClient,
    DynamoRepository,
    Update,
    error_code,
    firm_pk,
    from_item,
    iso_or_none,
    iso_utc,
    parse_iso,
    require_iso,
    to_item,
)
from billbridge.adapters.dynamo_header import FirmHeaderItem, header_update, settings_from_data
from billbridge.adapters.kms_cipher import KmsCipher
from billbridge.domain.connection import ClioConnection, Region
from billbridge.domain.oauth_state import ConnectingUser, ConnectIntent
from billbridge.domain.settings import FirmSettings

CONNECTION_SK = "CLIO#CONNECTION"
CONNECTED_PK = "CLIO#CONNECTED"
SECRETS_PURPOSE = "clio-connection"


def secrets_context(firm_id: str) -> dict[str, str]:
    """Binds a ciphertext to its firm: decrypting it under another firm's item fails."""
    return {"firm_id": firm_id, "purpose": SECRETS_PURPOSE}


class DynamoSettingsRepository(FirmHeaderItem):
    """SettingsRepository: the settings are a map attribute of the firm header."""

    def get(self, firm_id: str) -> FirmSettings:
        return settings_from_data(self._header(firm_id))

    def put(self, firm_id: str, settings: FirmSettings) -> None:
        # An update of the one attribute: the sync state shares the item. to_attr keeps None
        # values inside the settings as explicit nulls.
        update = header_update(self._table, firm_id)
        # DynamoDB takes no floats: a JSON number with a fraction (the surcharge percent)
        # is stored as the Decimal of its text.
        stored = json.loads(json.dumps(settings.model_dump(mode="json")), parse_float=Decimal)
        update.set("settings", stored)
        self._update(update)


class DynamoConnectionRepository(DynamoRepository):
    """ConnectionRepository: the connection item (secrets encrypted) plus a directory item
    under one partition, so listing connected firms is a Query, never a Scan."""

    def __init__(
        self,
        client: DynamoClient,
        table_name: str,
        cipher: KmsCipher,
        *,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(client, table_name, max_attempts=max_attempts, sleep=sleep)
        self._cipher = cipher

    def get(self, firm_id: str) -> ClioConnection | None:
        item = self._get_item(firm_pk(firm_id), CONNECTION_SK)
        if not item:
            return None
        data = from_item(item)
        ciphertext = bytes(data["secrets_ciphertext"])
        secrets: dict[str, Any] = json.loads(
            self._cipher.decrypt(ciphertext, secrets_context(firm_id))
        )
        user_id, webhook_id = data.get("clio_user_id"), data.get("webhook_id")
        account_id = data.get("clio_account_id")
        return ClioConnection(
            firm_id=firm_id,
            region=Region(data["region"]),
            access_token=str(secrets["access_token"]),
            refresh_token=str(secrets["refresh_token"]),
            access_expires_at=require_iso(data["access_expires_at"]),
            connected_at=require_iso(data["connected_at"]),
            clio_user_id=None if user_id is None else int(user_id),
            clio_user_name=data.get("clio_user_name"),
            clio_user_email=data.get("clio_user_email"),
            clio_account_id=None if account_id is None else int(account_id),
            clio_account_name=data.get("clio_account_name"),
            connected_by_user_id=data.get("connected_by_user_id"),
            connected_by_email=data.get("connected_by_email"),
            needs_reconnect=bool(data.get("needs_reconnect", False)),
            webhook_id=None if webhook_id is None else int(webhook_id),
            webhook_secret=secrets.get("webhook_secret"),
            webhook_expires_at=parse_iso(data.get("webhook_expires_at")),
        )

    def save(self, connection: ClioConnection) -> None:
        firm_id = connection.firm_id
        secrets = json.dumps(
            {
                "access_token": connection.access_token,
                "refresh_token": connection.refresh_token,
                "webhook_secret": connection.webhook_secret,
            }
        ).encode()
        ciphertext = self._cipher.encrypt(secrets, secrets_context(firm_id))
        record = to_item(
            {
                "pk": firm_pk(firm_id),
                "sk": CONNECTION_SK,
                "type": "clio_connection",
                "firm_id": firm_id,
                "region": connection.region.value,
                "connected_at": iso_utc(connection.connected_at),
                "access_expires_at": iso_utc(connection.access_expires_at),
                "clio_user_id": connection.clio_user_id,
                "clio_user_name": connection.clio_user_name,
                "clio_user_email": connection.clio_user_email,
                "clio_account_id": connection.clio_account_id,
                "clio_account_name": connection.clio_account_name,
                "connected_by_user_id": connection.connected_by_user_id,
                "connected_by_email": connection.connected_by_email,
                "needs_reconnect": connection.needs_reconnect,
                "webhook_id": connection.webhook_id,
                "webhook_expires_at": iso_or_none(connection.webhook_expires_at),
                "secrets_ciphertext": ciphertext,
            }
        )
        directory = to_item(
            {
                "pk": CONNECTED_PK,
                "sk": firm_pk(firm_id),
                "type": "connected_firm",
                "firm_id": firm_id,
                "connected_at": iso_utc(connection.connected_at),
            }
        )
        self._transact(
            [
                {"Put": {"TableName": self._table, "Item": record}},
                {"Put": {"TableName": self._table, "Item": directory}},
            ]
        )

    def connected_firm_ids(self) -> list[str]:
        items = self._query_all(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": CONNECTED_PK}},
            ProjectionExpression="firm_id",
        )
        return [str(from_item(i)["firm_id"]) for i in items]


def connect_state_sk(state_id: str) -> str:
    return f"CLIO#CONNECT#{state_id}"


class DynamoConnectStateRepository(DynamoRepository):
    """ConnectStateRepository: one item per connect in progress, in the firm's partition,
    expiring with the state (the table's TTL attribute); consumed by a conditional write, so
    two callbacks with the same state cannot both pass."""

    def record(self, intent: ConnectIntent, user: ConnectingUser) -> None:
        item = to_item(
            {
                "pk": firm_pk(intent.firm_id),
                "sk": connect_state_sk(intent.state_id),
                "type": "clio_connect_state",
                "firm_id": intent.firm_id,
                "region": intent.region.value,
                "user_id": user.user_id,
                "user_email": user.email,
                "expires_at": iso_utc(intent.expires_at),
                "expires_at_epoch": int(intent.expires_at.timestamp()),
            }
        )
        self._retrying(
            partial(
                self._write,
                "put_item",
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        )

    def consume(self, intent: ConnectIntent, now: datetime) -> ConnectingUser | None:
        update = Update(
            self._table,
            {"pk": {"S": firm_pk(intent.firm_id)}, "sk": {"S": connect_state_sk(intent.state_id)}},
        )
        update.set("consumed_at", iso_utc(now))
        update.when(
            f"attribute_exists({update.name('pk')}) AND "
            f"attribute_not_exists({update.name('consumed_at')}) AND "
            f"{update.name('expires_at_epoch')} > {update.value(int(now.timestamp()))}"
        )
        request = update.request()
        request["ReturnValues"] = "ALL_NEW"
        try:
            answer = self._retrying(partial(self._write, "update_item", **request))
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        data = from_item(answer["Attributes"])
        return ConnectingUser(user_id=str(data["user_id"]), email=data.get("user_email"))
