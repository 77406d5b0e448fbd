"""Sending an envelope's email through SES v2: one raw MIME message with a text and an HTML
part, the bill PDFs attached, Reply-To the firm, tagged so SES's events find the envelope.
SES's throttling and server errors leave as `SesThrottled` / `TransientSendError`, the names
the send workflow's Retry matches. A message that cannot be built (a header value Python's
email package refuses) or that SES refuses outright (any other 4xx) leaves as `EmailNotSent`:
SES sent nothing, so the envelope may be marked failed and sent again once fixed."""

from __future__ import annotations

from email import policy
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from billbridge.domain.errors import EmailNotSent, SesThrottled, TransientSendError

# SES v2 answers a send over its rate with TooManyRequestsException (429); SES v1, and the SES
# guide, say Throttling / ThrottlingException; LimitExceededException is SES v2's quota refusal.
THROTTLING = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
}
# CRLF line ends and every part 7-bit (base64 / quoted-printable, RFC 2047 headers): SES asks
# that content outside 7-bit ASCII be encoded, and a firm or client name often is.
MIME_POLICY = policy.SMTP.clone(cte_type="7bit")
# A tag value may hold letters, digits, _ - . @ only.
_TAG_SAFE = str.maketrans({c: "_" for c in " /:+=,;!#$%&*()[]{}<>?|\\\"'"})


def build_message(
    *,
    from_address: str,
    to: list[str],
    subject: str,
    text: str,
    html: str,
    reply_to: str | None,
    sender_name: str | None,
    attachments: list[tuple[str, bytes]],
) -> EmailMessage:
    message = EmailMessage(policy=MIME_POLICY)
    # An Address, not formataddr(): the header registry quotes and encodes the display name
    # itself, so "Smith, Jones & Müller" stays one name instead of splitting at its comma.
    message["From"] = Address(display_name=sender_name or "", addr_spec=from_address)
    message["To"] = [Address(addr_spec=address) for address in to]
    message["Subject"] = subject
    if reply_to:
        message["Reply-To"] = reply_to
    message["Message-ID"] = make_msgid(domain=Address(addr_spec=from_address).domain)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for filename, content in attachments:
        message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
    return message


class SesMailer:
    def __init__(
        self, sesv2_client: Any, *, from_address: str, configuration_set: str | None
    ) -> None:
        self._ses = sesv2_client
        self._from = from_address
        self._configuration_set = configuration_set

    def send(
        self,
        *,
        to: list[str],
        subject: str,
        text: str,
        html: str,
        reply_to: str | None,
        sender_name: str | None,
        attachments: list[tuple[str, bytes]],
        tags: dict[str, str],
    ) -> str:
        try:
            raw = build_message(
                from_address=self._from,
                to=to,
                subject=subject,
                text=text,
                html=html,
                reply_to=reply_to,
                sender_name=sender_name,
                attachments=attachments,
            ).as_bytes()
        except (ValueError, MessageError) as exc:
            # The email package refuses to write a header that would break (a CR or LF in it,
            # an address it cannot parse): nothing was sent.
            raise EmailNotSent(f"the email could not be written: {exc}") from None
        request: dict[str, Any] = {
            "FromEmailAddress": self._from,
            "Destination": {"ToAddresses": to},
            "Content": {"Raw": {"Data": raw}},
            "EmailTags": [
                {"Name": name, "Value": value.translate(_TAG_SAFE)} for name, value in tags.items()
            ],
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        try:
            answer = self._ses.send_email(**request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in THROTTLING:
                raise SesThrottled(f"SES is throttling sends ({code})") from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500:
                raise TransientSendError(f"SES failed ({code})") from None
            if 400 <= status < 500:
                # MessageRejected, BadRequest, an unverified sender, sending paused: SES took
                # nothing, and the same request would be refused again.
                message = exc.response.get("Error", {}).get("Message", "")
                raise EmailNotSent(f"SES refused the email ({code}): {message}"[:300]) from None
            raise
        except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as exc:
            # A read timeout may come after SES took the message: the retry this asks for is
            # safe only because the send use case is idempotent per envelope.
            raise TransientSendError(f"SES did not answer: {type(exc).__name__}") from None
        return str(answer["MessageId"])
