"""Reminders in the app table (implements services.ports.ReminderStore): the claim of a bill's
reminder slot, the clerk's pause, and a bill's send history. See docs/data-model.md, "Bill"
(`reminder_slot`, `reminders_paused`, `first_sent_at`) and "Bill send history".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_bills import bill_sk
from billbridge.adapters.dynamo_common import (
    DynamoRepository,
    Update,
    cancellation_codes,
    error_code,
    firm_pk,
    from_item,
    iso_utc,
    require_iso,
    to_item,
)
from billbridge.adapters.dynamo_envelopes import envelope_item, send_log_sk
from billbridge.domain.bills import BillState
from billbridge.domain.envelopes import Batch, Envelope
from billbridge.services.ports import SentRecord


class DynamoReminderStore(DynamoRepository):
    def claim(
        self,
        firm_id: str,
        bill_id: int,
        slot: int,
        anchor: datetime,
        batch: Batch,
        envelope: Envelope,
    ) -> bool:
        bill = Update(self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}})
        slot_name = bill.name("reminder_slot")
        paused = bill.name("reminders_paused")
        state = bill.name("state")
        bill.set("reminder_slot", slot)
        bill.set("reminder_batch_id", batch.id).set("reminder_envelope_id", envelope.id)
        bill.set("reminder_claimed_at", iso_utc(envelope.created_at))
        # Reminders count from the first send; a bill sent before that was recorded keeps the
        # time its reminders were computed from.
        bill.set_if_absent("first_sent_at", iso_utc(anchor))
        bill.when(
            f"attribute_exists({bill.name('pk')})"
            f" AND (attribute_not_exists({slot_name}) OR {slot_name} < {bill.value(slot)})"
            f" AND (attribute_not_exists({paused}) OR {paused} = {bill.value(False)})"
            f" AND {state} = {bill.value(BillState.AWAITING_PAYMENT.value)}"
        )
        actions: list[dict[str, Any]] = [
            {"Update": bill.request()},
            {
                "Put": {
                    "TableName": self._table,
                    "Item": envelope_item(envelope),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": firm_pk(firm_id),
                            "sk": f"BATCH#{batch.id}",
                            "type": "batch",
                            "batch_id": batch.id,
                            "envelope_ids": list(batch.envelope_ids),
                            "created_at": iso_utc(batch.created_at),
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        try:
            self._transact(actions)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException" and set(
                cancellation_codes(exc)
            ) <= {"None", "ConditionalCheckFailed"}:
                return False  # claimed already (or paused, or the bill is gone)
            raise
        return True

    def clear_pending(self, firm_id: str, bill_id: int, envelope_id: str) -> None:
        update = Update(self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}})
        update.remove("reminder_batch_id").remove("reminder_envelope_id")
        update.remove("reminder_claimed_at")
        update.when(f"{update.name('reminder_envelope_id')} = {update.value(envelope_id)}")
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise  # else a newer reminder is pending now: it stays

    def set_paused(self, firm_id: str, bill_id: int, paused: bool) -> bool:
        update = Update(self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": bill_sk(bill_id)}})
        update.set("reminders_paused", paused)
        update.when(
            f"attribute_exists({update.name('pk')}) AND {update.name('type')} = "
            f"{update.value('bill')}"
        )
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def history(self, firm_id: str, bill_id: int) -> list[SentRecord]:
        records: list[SentRecord] = []
        for item in self._query_prefix(firm_pk(firm_id), send_log_sk(bill_id)):
            data = from_item(item)
            number = data.get("reminder_number")
            records.append(
                SentRecord(
                    bill_id=int(data["bill_id"]),
                    envelope_id=str(data["envelope_id"]),
                    purpose=str(data.get("purpose") or "send"),
                    reminder_number=int(number) if number is not None else None,
                    to=str(data.get("to") or ""),
                    subject=str(data.get("subject") or ""),
                    sent_at=require_iso(data["sent_at"]),
                    send_note=data.get("send_note"),
                )
            )
        return records
