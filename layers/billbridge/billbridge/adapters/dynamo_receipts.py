"""Receipt records of the app table (implements services.ports.ReceiptLog): one item per
(transaction, receipt kind), `RECEIPT#<txn id>#<kind>` in the firm's partition, put only if it
does not exist. That conditional write is what makes a receipt go out once whatever Stripe
delivers again (docs/data-model.md, "Receipts")."""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    DynamoRepository,
    error_code,
    firm_pk,
    iso_utc,
    to_attr,
    to_item,
)

CHECK_FAILED = "ConditionalCheckFailedException"


def receipt_sk(txn_id: str, kind: str) -> str:
    return f"RECEIPT#{txn_id}#{kind}"


class DynamoReceiptLog(DynamoRepository):
    def claim(self, firm_id: str, txn_id: str, kind: str, now: datetime) -> bool:
        item = to_item(
            {
                "pk": firm_pk(firm_id),
                "sk": receipt_sk(txn_id, kind),
                "type": "receipt",
                "txn_id": txn_id,
                "kind": kind,
                "status": "sending",
                "claimed_at": iso_utc(now),
            }
        )
        try:
            self._retrying(
                lambda: self._write(
                    "put_item",
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                )
            )
        except ClientError as exc:
            if error_code(exc) == CHECK_FAILED:
                return False
            raise
        return True

    def finish(self, firm_id: str, txn_id: str, kind: str, outcome: str, detail: str) -> None:
        self._retrying(
            lambda: self._write(
                "update_item",
                TableName=self._table,
                Key={"pk": to_attr(firm_pk(firm_id)), "sk": to_attr(receipt_sk(txn_id, kind))},
                UpdateExpression="SET #s = :s, #d = :d",
                ExpressionAttributeNames={"#s": "status", "#d": "detail"},
                ExpressionAttributeValues={":s": to_attr(outcome), ":d": to_attr(detail)},
            )
        )

    def release(self, firm_id: str, txn_id: str, kind: str) -> None:
        try:
            self._retrying(
                lambda: self._write(
                    "delete_item",
                    TableName=self._table,
                    Key={
                        "pk": to_attr(firm_pk(firm_id)),
                        "sk": to_attr(receipt_sk(txn_id, kind)),
                    },
                    ConditionExpression="#s = :sending",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":sending": to_attr("sending")},
                )
            )
        except ClientError as exc:
            if error_code(exc) != CHECK_FAILED:
                raise
