"""What SES was asked to send, read back from moto: in-process (tests, and `GET /_local/outbox`
on the local stack, whose moto server runs in the same process) or from a moto server over HTTP
(`/moto-api/data.json`). Also verifying the sender, which moto, like SES, requires."""

from __future__ import annotations

import email
from email import policy
from email.headerregistry import AddressHeader
from typing import Any

import requests
from moto.ses.models import ses_backends

ACCOUNT = "123456789012"
REGION = "us-east-1"


def verify_sender(ses_client: Any, address: str) -> None:
    """moto, like SES in its sandbox, refuses mail from an identity that is not verified.
    Takes an `ses` or an `sesv2` client: moto keeps one list of identities for both."""
    if hasattr(ses_client, "create_email_identity"):
        ses_client.create_email_identity(EmailIdentity=address)
    else:
        ses_client.verify_email_identity(EmailAddress=address)


def _addresses(header: Any) -> list[str]:
    # Parsed, not split on commas: a display name may hold one ("Smith, Jones" <a@b.example>).
    if not isinstance(header, AddressHeader):
        return []
    return [address.addr_spec for address in header.addresses]


def _content(part: Any) -> str:
    # A base64 or quoted-printable part decodes with the CRLF line ends it was sent with.
    return part.get_content().replace("\r\n", "\n") if part is not None else ""


def parse_raw(raw: str) -> dict[str, Any]:
    """One raw MIME message as the outbox shows it."""
    message = email.message_from_string(raw, policy=policy.default)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return {
        "to": _addresses(message["To"]),
        "from": str(message["From"] or ""),
        "reply_to": str(message["Reply-To"]) if message["Reply-To"] else None,
        "subject": str(message["Subject"] or ""),
        "body": _content(text),
        "html": _content(html),
        "attachments": [part.get_filename() for part in message.iter_attachments()],
    }


def _simple(source: str, destinations: Any, subject: str, body: str) -> dict[str, Any]:
    to = destinations.get("ToAddresses", []) if isinstance(destinations, dict) else []
    return {
        "to": list(to),
        "from": source,
        "reply_to": None,
        "subject": subject,
        "body": body,
        "html": "",
        "attachments": [],
    }


def read_outbox_in_process(region: str = REGION, account: str = ACCOUNT) -> list[dict[str, Any]]:
    """Every email sent so far (SES v1 or v2, raw or simple), oldest first, each with the
    `message_id` SES answered its send with."""
    mails = []
    for sent in list(ses_backends[account][region].sent_messages):
        raw = getattr(sent, "raw_data", None)
        if raw is not None:
            mail = parse_raw(raw)
        else:
            mail = _simple(sent.source, sent.destinations, sent.subject, sent.body)
        mails.append({"message_id": sent.id, **mail})
    return mails


def read_outbox_from_server(aws_url: str) -> list[dict[str, Any]]:
    """Every raw email a moto server holds, oldest first (all accounts and regions).

    `/moto-api/data.json` lists each model's live instances in creation order, raw sends (SES v1
    `send_raw_email`, v2 `send_email` with `Content.Raw`) as `ses.RawMessage`. Simple sends are
    `ses.Message`, a separate list whose order against raw ones is lost; we send only raw."""
    answer = requests.get(f"{aws_url}/moto-api/data.json", timeout=30)
    answer.raise_for_status()
    ses = answer.json().get("ses", {})
    return [parse_raw(sent["raw_data"]) for sent in ses.get("RawMessage", [])]
