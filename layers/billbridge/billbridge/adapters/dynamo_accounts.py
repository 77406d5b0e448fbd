"""A firm's members and its audit trail in the app table (implements
services.ports.MemberRepository and AuditLog). See docs/data-model.md, "Members" and "Audit".

Members: `FIRM#{firm_id}` / `USER#{user_id}`, and the firm's admin count at `FIRM#{firm_id}` /
`USERS`: every change of an admin's role or membership moves the count in the same transaction,
conditioned on at least one admin staying, so the last admin cannot go even when two admins
act at once. Audit entries: `FIRM#{firm_id}#AUDIT` / `{at}#{id}`, read newest first by one
Query (no Scan).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import re
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    CONDITION_FAILED,
    DynamoRepository,
    cancellation_codes,
    error_code,
    firm_pk,
    from_item,
    iso_utc,
    require_iso,
    to_attr,
    to_item,
)
from billbridge.domain.access import Role
from billbridge.domain.accounts import (
    Actor,
    AuditAction,
    AuditEntry,
    LastAdmin,
    Member,
    MemberStatus,
)
from billbridge.domain.errors import Conflict, NotFound
from billbridge.services.ports import AuditPage

COUNT_SK = "USERS"
LAST_ADMIN = "Your firm must keep at least one admin: make someone else an admin first."


def member_sk(user_id: str) -> str:
    return f"USER#{user_id}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


class DynamoMembers(DynamoRepository):
    def list(self, firm_id: str) -> list[Member]:
        return [_member(from_item(i)) for i in self._query_prefix(firm_pk(firm_id), "USER#")]

    def get(self, firm_id: str, user_id: str) -> Member | None:
        item = self._get_item(firm_pk(firm_id), member_sk(user_id))
        return _member(from_item(item)) if item else None

    def add(self, member: Member) -> None:
        put = {
            "Put": {
                "TableName": self._table,
                "Item": to_item(
                    {
                        "pk": firm_pk(member.firm_id),
                        "sk": member_sk(member.user_id),
                        "type": "member",
                        "user_id": member.user_id,
                        "email": member.email,
                        "role": member.role.value,
                        "status": member.status.value,
                        "created_at": iso_utc(member.created_at),
                        "invited_by": member.invited_by,
                    }
                ),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        actions = [put]
        if member.role is Role.ADMIN:
            actions.append(self._count(member.firm_id, +1))
        try:
            self._transact(actions)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and (
                cancellation_codes(exc)[0] == CONDITION_FAILED
            ):
                raise Conflict("That user is already a member of the firm.") from exc
            raise

    def set_status(self, firm_id: str, user_id: str, status: MemberStatus) -> None:
        try:
            self._write(
                "update_item",
                TableName=self._table,
                Key=_key(firm_pk(firm_id), member_sk(user_id)),
                UpdateExpression="SET #s = :s",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": to_attr(status.value)},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound("There is no such user in your firm.", field="user_id") from exc
            raise

    def _count(self, firm_id: str, delta: int) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": _key(firm_pk(firm_id), COUNT_SK),
            "UpdateExpression": "SET #t = :t ADD #c :d",
            "ExpressionAttributeNames": {"#c": "admin_count", "#t": "type"},
            "ExpressionAttributeValues": {":d": to_attr(delta), ":t": to_attr("member_count")},
        }
        if delta < 0:
            # At least one admin stays: the count may only fall from 2 or more.
            update["ConditionExpression"] = "#c > :one"
            update["ExpressionAttributeValues"][":one"] = to_attr(1)
        return {"Update": update}

    def _guarded(self, firm_id: str, user_id: str, actions: builtins.list[dict[str, Any]]) -> None:
        try:
            self._transact(actions)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            codes = cancellation_codes(exc)
            if len(codes) > 1 and codes[1] == CONDITION_FAILED:
                raise LastAdmin(LAST_ADMIN, field="user_id") from exc
            if codes and codes[0] == CONDITION_FAILED:
                if self.get(firm_id, user_id) is None:
                    raise NotFound("There is no such user in your firm.", field="user_id") from exc
                raise Conflict("That user was changed at the same time: try again.") from exc
            raise

    def change_role(self, firm_id: str, user_id: str, role: Role) -> Member:
        was = Role.STAFF if role is Role.ADMIN else Role.ADMIN
        update = {
            "Update": {
                "TableName": self._table,
                "Key": _key(firm_pk(firm_id), member_sk(user_id)),
                "UpdateExpression": "SET #r = :r",
                "ConditionExpression": "#r = :was",
                "ExpressionAttributeNames": {"#r": "role"},
                "ExpressionAttributeValues": {
                    ":r": to_attr(role.value),
                    ":was": to_attr(was.value),
                },
            }
        }
        self._guarded(
            firm_id, user_id, [update, self._count(firm_id, +1 if role is Role.ADMIN else -1)]
        )
        found = self.get(firm_id, user_id)
        assert found is not None
        return found

    def remove(self, firm_id: str, user_id: str) -> Member:
        member = self.get(firm_id, user_id)
        if member is None:
            raise NotFound("There is no such user in your firm.", field="user_id")
        delete = {
            "Delete": {
                "TableName": self._table,
                "Key": _key(firm_pk(firm_id), member_sk(user_id)),
                "ConditionExpression": "#r = :r",
                "ExpressionAttributeNames": {"#r": "role"},
                "ExpressionAttributeValues": {":r": to_attr(member.role.value)},
            }
        }
        actions = [delete]
        if member.role is Role.ADMIN:
            actions.append(self._count(firm_id, -1))
        self._guarded(firm_id, user_id, actions)
        return member

    def forget(self, firm_id: str, user_id: str) -> None:
        """Drop a member whose user no longer exists in the pool (the local stack's pool is
        made anew at each start), last admin or not."""
        member = self.get(firm_id, user_id)
        if member is None:
            return
        delete = {
            "Delete": {"TableName": self._table, "Key": _key(firm_pk(firm_id), member_sk(user_id))}
        }
        actions: builtins.list[dict[str, Any]] = [delete]
        if member.role is Role.ADMIN:
            count = self._count(firm_id, -1)
            count["Update"].pop("ConditionExpression", None)
            count["Update"]["ExpressionAttributeValues"].pop(":one", None)
            actions.append(count)
        self._transact(actions)


def member_from_item(item: dict[str, Any]) -> Member:
    """A member record as DynamoDB returned it (GetItem, or the header's BatchGetItem)."""
    return _member(from_item(item))


def _member(data: dict[str, Any]) -> Member:
    return Member(
        user_id=str(data["user_id"]),
        firm_id=str(data["pk"]).removeprefix("FIRM#"),
        email=str(data["email"]),
        role=Role(str(data["role"])),
        status=MemberStatus(str(data["status"])),
        created_at=require_iso(data["created_at"]),
        invited_by=str(data["invited_by"]) if data.get("invited_by") else None,
    )


# --- the audit trail --------------------------------------------------------------------------

AUDIT_SK = re.compile(r"^\d{4}-\d{2}-\d{2}T[0-9:.]+\+00:00#[0-9a-f]{16}$")


def audit_pk(firm_id: str) -> str:
    return f"{firm_pk(firm_id)}#AUDIT"


def encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sk": sk}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sk = json.loads(base64.urlsafe_b64decode(padded.encode()))["sk"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        sk = None
    if not isinstance(sk, str) or not AUDIT_SK.fullmatch(sk):
        raise NotFound(
            "The cursor is not one this API gave out: start again from the first page.",
            field="cursor",
            code="unknown_cursor",
        )
    return sk


class DynamoAuditLog(DynamoRepository):
    def record(self, entry: AuditEntry) -> None:
        """Written once: an entry already there (the same id and time, as a repeated Stripe
        event's) is left as it is."""
        try:
            self._put_entry(entry)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _put_entry(self, entry: AuditEntry) -> None:
        self._write(
            "put_item",
            TableName=self._table,
            ConditionExpression="attribute_not_exists(pk)",
            Item=to_item(
                {
                    "pk": audit_pk(entry.firm_id),
                    "sk": f"{iso_utc(entry.at)}#{entry.id}",
                    "type": "audit_entry",
                    "id": entry.id,
                    "at": iso_utc(entry.at),
                    "actor_user_id": entry.actor.user_id,
                    "actor_email": entry.actor.email,
                    "action": entry.action.value,
                    "object": json.dumps(entry.object, sort_keys=True),
                }
            ),
        )

    def page(self, firm_id: str, cursor: str | None, limit: int) -> AuditPage:
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": to_attr(audit_pk(firm_id))},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            args["ExclusiveStartKey"] = _key(audit_pk(firm_id), decode_cursor(cursor))
        response = self._retrying(lambda: self._read("query", **args))
        items = [_entry(firm_id, from_item(i)) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return AuditPage(
            items=items, next_cursor=encode_cursor(str(last["sk"]["S"])) if last else None
        )


def _entry(firm_id: str, data: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=str(data["id"]),
        firm_id=firm_id,
        at=require_iso(data["at"]),
        actor=Actor(
            user_id=str(data["actor_user_id"]),
            email=str(data["actor_email"]) if data.get("actor_email") else None,
        ),
        action=AuditAction(str(data["action"])),
        object=json.loads(str(data.get("object") or "{}")),
    )
