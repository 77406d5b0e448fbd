"""Envelope and batch items of the app table (implements services.ports.EnvelopeRepository).
See docs/data-model.md, "Envelope" and "Batch"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
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
from billbridge.domain.envelopes import (
    EDITABLE,
    Batch,
    Envelope,
    EnvelopePurpose,
    EnvelopeStatus,
    check_editable,
    statuses_before,
)
from billbridge.domain.errors import NotFound


def envelope_sk(envelope_id: str) -> str:
    return f"ENV#{envelope_id}"


def batch_sk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


def status_in(update: Update, statuses: tuple[EnvelopeStatus, ...]) -> str:
    """`status IN (...)`: a write's condition that the envelope is in one of `statuses`."""
    allowed = ", ".join(update.value(s.value) for s in statuses)
    return f"{update.name('status')} IN ({allowed})"


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
        # First sends are stored without it (as before reminders existed).
        "purpose": None if envelope.purpose is EnvelopePurpose.SEND else envelope.purpose.value,
        "reminder_number": envelope.reminder_number,
        "drafted_amounts": _amounts_attr(envelope.drafted_amounts),
        "edited": True if envelope.edited else None,
        "send_note": envelope.send_note,
    }
    return to_item({k: v for k, v in values.items() if v is not None})


def _amounts_attr(amounts: tuple[tuple[int, int], ...] | None) -> list[list[int]] | None:
    return None if amounts is None else [[int(b), int(c)] for b, c in amounts]


def _amounts_of(value: Any) -> tuple[tuple[int, int], ...] | None:
    return None if value is None else tuple((int(b), int(c)) for b, c in value)


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
        purpose=EnvelopePurpose(data.get("purpose") or EnvelopePurpose.SEND.value),
        reminder_number=(
            int(data["reminder_number"]) if data.get("reminder_number") is not None else None
        ),
        drafted_amounts=_amounts_of(data.get("drafted_amounts")),
        edited=bool(data.get("edited")),
        send_note=data.get("send_note"),
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
        """Change a draft's (or a failed envelope's) text; a conditional write, so an envelope
        already being sent is never changed under the sender."""
        update = Update(
            self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": envelope_sk(envelope_id)}}
        )
        update.set("subject", subject).set("body", body).set("edited", True)
        update.when(f"attribute_exists({update.name('pk')}) AND {status_in(update, EDITABLE)}")
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = self.get(firm_id, envelope_id)
            if current is None:
                raise NotFound("no such envelope", field="id") from None
            check_editable(current)
            raise
        edited = self.get(firm_id, envelope_id)
        assert edited is not None
        return edited

    def rewrite(self, envelope: Envelope, claim_token: str | None = None) -> bool:
        """Store the envelope's text, bills and amounts as re-rendered for its send (an
        unedited draft whose amounts changed: docs/sending.md, "Amounts at send"). Without a
        claim token only while it is editable (draft or failed); with one, only while that run
        holds it and no SES call was started. False when the condition did not hold."""
        update = Update(
            self._table,
            {"pk": {"S": firm_pk(envelope.firm_id)}, "sk": {"S": envelope_sk(envelope.id)}},
        )
        update.set("subject", envelope.subject).set("body", envelope.body)
        update.set("bill_ids", [int(i) for i in envelope.bill_ids])
        update.set("drafted_amounts", _amounts_attr(envelope.drafted_amounts))
        if envelope.send_note is not None:
            update.set("send_note", envelope.send_note)
        if claim_token is None:
            update.when(
                f"attribute_exists({update.name('pk')}) AND {status_in(update, EDITABLE)}"
                f" AND attribute_not_exists({update.name('edited')})"
            )
        else:
            update.when(
                f"{update.name('claim_token')} = {update.value(claim_token)} AND "
                f"{update.name('status')} = {update.value(EnvelopeStatus.SENDING.value)} AND "
                f"attribute_not_exists({update.name('ses_started_at')}) AND "
                f"attribute_not_exists({update.name('edited')})"
            )
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def requeue(self, firm_id: str, envelope_id: str) -> bool:
        """failed -> draft, its error cleared: it is to be sent again, and its run's result is
        then its own, not the last failure's."""
        update = Update(
            self._table, {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": envelope_sk(envelope_id)}}
        )
        update.set("status", EnvelopeStatus.DRAFT.value).remove("error")
        update.when(status_in(update, statuses_before(EnvelopeStatus.DRAFT)))
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return False
        return True


def send_log_sk(bill_id: int, sent_at: datetime | None = None, envelope_id: str = "") -> str:
    """`SENT#<bill>#<time>#<envelope>`: a bill's sends in time order under one prefix."""
    prefix = f"SENT#{bill_id:020d}#"
    return prefix if sent_at is None else f"{prefix}{iso_utc(sent_at)}#{envelope_id}"


def send_log_item(envelope: Envelope, bill_id: int, now: datetime) -> Item:
    values: dict[str, Any] = {
        "pk": firm_pk(envelope.firm_id),
        "sk": send_log_sk(bill_id, now, envelope.id),
        "type": "bill_send",
        "bill_id": bill_id,
        "envelope_id": envelope.id,
        "purpose": envelope.purpose.value,
        "reminder_number": envelope.reminder_number,
        "to": envelope.to,
        "subject": envelope.subject,
        "sent_at": iso_utc(now),
        "send_note": envelope.send_note,
    }
    return to_item({k: v for k, v in values.items() if v is not None})


def _ses_pk(message_id: str) -> str:
    return f"SESMSG#{message_id}"


class DynamoSendingRepository(DynamoEnvelopeRepository):
    """The send step's writes on an envelope (see docs/sending.md for why each is conditional)."""

    def _key(self, firm_id: str, envelope_id: str) -> Item:
        return {"pk": {"S": firm_pk(firm_id)}, "sk": {"S": envelope_sk(envelope_id)}}

    def _conditional(self, update: Update) -> bool:
        try:
            self._update(update)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim(self, firm_id: str, envelope_id: str, claim_token: str, now: datetime) -> bool:
        """draft or failed -> sending, for this send; a retry of the same send may re-claim."""
        update = Update(self._table, self._key(firm_id, envelope_id))
        status, token = update.name("status"), update.name("claim_token")
        update.set("status", EnvelopeStatus.SENDING.value).set("claim_token", claim_token)
        update.set("claimed_at", iso_utc(now)).remove("error")
        claimable = status_in(update, statuses_before(EnvelopeStatus.SENDING))
        sending, mine = update.value(EnvelopeStatus.SENDING.value), update.value(claim_token)
        update.when(
            f"attribute_exists({update.name('pk')}) AND ({claimable}"
            f" OR ({status} = {sending} AND {token} = {mine}))"
        )
        return self._conditional(update)

    def start_ses_call(
        self, firm_id: str, envelope_id: str, claim_token: str, now: datetime
    ) -> bool:
        """Record, before asking SES, that this send is about to. Only the first caller wins:
        a second attempt after a crash finds the mark and does not send again."""
        update = Update(self._table, self._key(firm_id, envelope_id))
        update.set("ses_started_at", iso_utc(now))
        update.when(
            f"{update.name('claim_token')} = {update.value(claim_token)} AND "
            f"{update.name('status')} = {update.value(EnvelopeStatus.SENDING.value)} AND "
            f"attribute_not_exists({update.name('ses_started_at')})"
        )
        return self._conditional(update)

    def undo_ses_call(self, firm_id: str, envelope_id: str, claim_token: str) -> None:
        """SES said for certain it sent nothing (throttled): a retry may call it again."""
        update = Update(self._table, self._key(firm_id, envelope_id))
        update.remove("ses_started_at")
        update.when(f"{update.name('claim_token')} = {update.value(claim_token)}")
        self._conditional(update)

    def mark_sent(
        self,
        envelope: Envelope,
        *,
        claim_token: str,
        message_id: str,
        link_id: str,
        url: str,
        now: datetime,
    ) -> None:
        """The envelope sent, its bills' payment link and last-sent time, and the SES message's
        way back to the envelope, in one transaction."""
        env = Update(self._table, self._key(envelope.firm_id, envelope.id))
        env.set("status", EnvelopeStatus.SENT.value).set("ses_message_id", message_id)
        env.set("payment_link_id", link_id).set("payment_url", url).set("sent_at", iso_utc(now))
        env.when(
            f"{env.name('claim_token')} = {env.value(claim_token)} AND "
            f"{status_in(env, statuses_before(EnvelopeStatus.SENT))}"
        )
        actions: list[dict[str, Any]] = [{"Update": env.request()}]
        for bill_id in envelope.bill_ids:
            bill = Update(
                self._table,
                {"pk": {"S": firm_pk(envelope.firm_id)}, "sk": {"S": f"BILL#{bill_id:020d}"}},
            )
            bill.set("payment_link_id", link_id).set("last_sent_at", iso_utc(now))
            bill.set_if_absent("first_sent_at", iso_utc(now))  # reminders count from it
            bill.when(f"attribute_exists({bill.name('pk')})")
            actions.append({"Update": bill.request()})
            # The bill's send history (first sends and reminders apart): GET
            # /invoices/{id}/envelopes reads it in one Query.
            actions.append(
                {"Put": {"TableName": self._table, "Item": send_log_item(envelope, bill_id, now)}}
            )
        actions.append(
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": _ses_pk(message_id),
                            "sk": "SESMSG",
                            "type": "ses_message",
                            "firm_id": envelope.firm_id,
                            "envelope_id": envelope.id,
                        }
                    ),
                }
            }
        )
        self._transact(actions)

    def mark_failed(self, firm_id: str, envelope_id: str, claim_token: str, error: str) -> bool:
        """sending -> failed for the run holding the claim (or a draft no run claimed), unless
        SES may already have the email: then only the error is noted and the SES event settles
        the status (failing it would invite a second send). Another run's failure never fails
        an envelope this run is sending."""
        update = Update(self._table, self._key(firm_id, envelope_id))
        status = update.name("status")
        sending = update.value(EnvelopeStatus.SENDING.value)
        mine = update.value(claim_token)
        unclaimed = tuple(
            s for s in statuses_before(EnvelopeStatus.FAILED) if s is not EnvelopeStatus.SENDING
        )
        update.set("status", EnvelopeStatus.FAILED.value).set("error", error[:500])
        update.when(
            f"attribute_not_exists({update.name('ses_started_at')}) AND ("
            f"({status} = {sending} AND {update.name('claim_token')} = {mine})"
            f" OR {status_in(update, unclaimed)})"
        )
        if self._conditional(update):
            return True
        note = Update(self._table, self._key(firm_id, envelope_id))
        note.set("error", f"delivery unconfirmed: {error}"[:500])
        note.when(
            f"{note.name('status')} = {note.value(EnvelopeStatus.SENDING.value)} AND "
            f"{note.name('claim_token')} = {note.value(claim_token)}"
        )
        self._conditional(note)
        return False

    def envelope_of_message(self, message_id: str) -> tuple[str, str] | None:
        item = self._get_item(_ses_pk(message_id), "SESMSG")
        if item is None:
            return None
        data = from_item(item)
        return str(data["firm_id"]), str(data["envelope_id"])

    def record_delivery_event(
        self,
        firm_id: str,
        envelope_id: str,
        status: EnvelopeStatus,
        allowed_from: tuple[EnvelopeStatus, ...],
    ) -> bool:
        """Move the status forward only (an event that is late or repeated changes nothing)."""
        update = Update(self._table, self._key(firm_id, envelope_id))
        update.set("status", status.value).remove("error")
        update.when(status_in(update, allowed_from))
        return self._conditional(update)
