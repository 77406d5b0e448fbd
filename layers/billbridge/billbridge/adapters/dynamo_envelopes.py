"""Envelope and batch items of the app table (implements services.ports.EnvelopeRepository).
See docs/data-model.md, "Envelope" and "Batch"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    BATCH_GET_LIMIT,
    DynamoRepository,
    Item,
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
from billbridge.domain.bills import Client
from billbridge.domain.envelopes import Batch, Envelope, EnvelopeStatus
from billbridge.domain.errors import NotFound, RuleViolation


def envelope_sk(envelope_id: str) -> str:
    return f"ENV#{envelope_id}"


def batch_sk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


def envelope_item(envelope: Envelope) -> Item:
    values: dict[str, Any] = {
        "pk": firm_pk(envelope.firm_id),
        "sk": envelope_sk(envelope.id),
        "type": "envelope",
        "envelope_id": envelope.id,
        "batch_id": envelope.batch_id,
        "client_id": envelope.client.id,
        "client_name": envelope.client.name,
        "client_email": envelope.client.email,
        "bill_ids": [int(i) for i in envelope.bill_ids],
        "to": envelope.to,
        "subject": envelope.subject,
        "body": envelope.body,
        "status": envelope.status.value,
        "created_at": iso_utc(envelope.created_at),
        "payment_link_id": envelope.payment_link_id,
        "payment_url": envelope.payment_url,
        "sent_at": iso_or_none(envelope.sent_at),
        "error": envelope.error,
    }
    return to_item({k: v for k, v in values.items() if v is not None})


def envelope_from_item(firm_id: str, item: Item) -> Envelope:
    data = from_item(item)
    return Envelope(
        id=str(data["envelope_id"]),
        firm_id=firm_id,
        batch_id=str(data["batch_id"]),
        client=Client(
            id=int(data["client_id"]),
            name=str(data.get("client_name") or ""),
            email=data.get("client_email"),
        ),
        bill_ids=tuple(int(i) for i in data.get("bill_ids") or []),
        to=str(data["to"]),
        subject=str(data["subject"]),
        body=str(data["body"]),
        status=EnvelopeStatus(data["status"]),
        created_at=require_iso(data["created_at"]),
        payment_link_id=data.get("payment_link_id"),
        payment_url=data.get("payment_url"),
        sent_at=parse_iso(data.get("sent_at")),
        error=data.get("error"),
    )


class DynamoEnvelopeRepository(DynamoRepository):
    def create_batch(self, batch: Batch, envelopes: Sequence[Envelope]) -> None:
        """The batch and all its drafts in one transaction: nothing is half-written."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": envelope_item(e),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for e in envelopes
        ]
        items.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": firm_pk(batch.firm_id),
                            "sk": batch_sk(batch.id),
                            "type": "batch",
                            "batch_id": batch.id,
                            "envelope_ids": list(batch.envelope_ids),
                            "created_at": iso_utc(batch.created_at),
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        self._transact(items)

    def get(self, firm_id: str, envelope_id: str) -> Envelope | None:
        item = self._get_item(firm_pk(firm_id), envelope_sk(envelope_id))
        return envelope_from_item(firm_id, item) if item else None

    def get_batch(self, firm_id: str, batch_id: str) -> tuple[Batch, list[Envelope]] | None:
        item = self._get_item(firm_pk(firm_id), batch_sk(batch_id))
        if item is None:
            return None
        data = from_item(item)
        batch = Batch(
            id=batch_id,
            firm_id=firm_id,
            envelope_ids=tuple(data.get("envelope_ids") or []),
            created_at=require_iso(data["created_at"]),
        )
        found: dict[str, Envelope] = {}
        ids = list(batch.envelope_ids)
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            keys = [
                {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": envelope_sk(i)}}
                for i in ids[start : start + BATCH_GET_LIMIT]
            ]
            for env_item in self._batch_get(keys):
                envelope = envelope_from_item(firm_id, env_item)
                found[envelope.id] = envelope
        return batch, [found[i] for i in ids if i in found]

    def edit_draft(self, firm_id: str, envelope_id: str, subject: str, body: str) -> Envelope:
        """Change a draft's text; a conditional write, so an envelope already being sent is
        never changed under the sender."""
        update = Update(
            self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": envelope_sk(envelope_id)}}
        )
        update.set("subject", subject).set("body", body)
        status = update.name("status")
        update.when(
            f"attribute_exists({update.name('pk')}) AND {status} = "
            f"{update.value(EnvelopeStatus.DRAFT.value)}"
        )
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = self.get(firm_id, envelope_id)
            if current is None:
                raise NotFound("no such envelope", field="id") from None
            raise RuleViolation(
                f"envelope {envelope_id} is {current.status.value}; only drafts can be edited",
                field="id",
                code="envelope_not_draft",
            ) from None
        edited = self.get(firm_id, envelope_id)
        assert edited is not None
        return edited
