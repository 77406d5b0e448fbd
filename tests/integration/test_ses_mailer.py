"""The SES v2 mailer on moto: raw MIME with text, HTML and PDF attachments, read back from moto's
outbox; SES's throttling and 5xx answers become the errors the send workflow retries."""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from fpdf import FPDF
from moto import mock_aws
from moto.server import ThreadedMotoServer

from billbridge.adapters.ses_mailer import SesMailer, SesThrottled, TransientSendError
from billbridge.domain.errors import EmailNotSent
from local.outbox import read_outbox_from_server, read_outbox_in_process, verify_sender
from local.provision import FAKE_AWS_ENV

REGION = "us-east-1"
SENDER = "billing@billbridge.test"


def tiny_pdf(title: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=title)
    return bytes(pdf.output())


@pytest.fixture
def sesv2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        verify_sender(boto3.client("ses", region_name=REGION), SENDER)
        yield boto3.client("sesv2", region_name=REGION)


def test_given_two_envelopes_when_sent_then_the_outbox_holds_them_in_order(sesv2):
    mailer = SesMailer(sesv2, from_address=SENDER, configuration_set=None)
    first_pdf, second_pdf = tiny_pdf("Bill 1001"), tiny_pdf("Bill 1002")

    first_id = mailer.send(
        to=["client.one@example.com"],
        subject="Your bill from Acme Law",
        text="Please pay at https://pay.example/1",
        html="<p>Please pay at <a href='https://pay.example/1'>this link</a></p>",
        reply_to="office@acme-law.example",
        sender_name="Acme Law LLP",
        attachments=[("bill-1001.pdf", first_pdf)],
        tags={"firm_id": "firm-1", "envelope_id": "env-1"},
    )
    second_id = mailer.send(
        to=["client.two@example.com", "cc.two@example.com"],
        subject="Two bills from Acme Law",
        text="Two bills attached.",
        html="<p>Two bills attached.</p>",
        reply_to=None,
        sender_name=None,
        attachments=[("bill-1001.pdf", first_pdf), ("bill-1002.pdf", second_pdf)],
        tags={"firm_id": "firm-1", "envelope_id": "env-2"},
    )

    assert first_id and second_id and first_id != second_id
    first, second = read_outbox_in_process()
    assert first["to"] == ["client.one@example.com"]
    assert first["subject"] == "Your bill from Acme Law"
    assert first["body"].strip() == "Please pay at https://pay.example/1"
    assert "href='https://pay.example/1'" in first["html"]
    assert first["attachments"] == ["bill-1001.pdf"]
    assert first["reply_to"] == "office@acme-law.example"
    assert first["from"] == f"Acme Law LLP <{SENDER}>"
    assert second["to"] == ["client.two@example.com", "cc.two@example.com"]
    assert second["attachments"] == ["bill-1001.pdf", "bill-1002.pdf"]
    assert second["reply_to"] is None and second["from"] == SENDER


def test_given_an_attachment_then_it_arrives_as_the_same_pdf(sesv2):
    from moto.ses.models import ses_backends

    pdf = tiny_pdf("Bill 7")
    SesMailer(sesv2, from_address=SENDER, configuration_set=None).send(
        to=["client@example.com"],
        subject="Bill",
        text="t",
        html="<p>t</p>",
        reply_to=None,
        sender_name="Acme",
        attachments=[("bill-7.pdf", pdf)],
        tags={},
    )

    (raw,) = ses_backends["123456789012"][REGION].sent_messages
    message = BytesParser(policy=policy.default).parsebytes(raw.raw_data.encode())
    (attachment,) = message.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == pdf and pdf.startswith(b"%PDF-")


def test_given_a_firm_name_with_a_comma_and_accents_then_from_is_one_address(sesv2):
    SesMailer(sesv2, from_address=SENDER, configuration_set=None).send(
        to=["client@example.com"],
        subject="Bill",
        text="t",
        html="<p>t</p>",
        reply_to=None,
        sender_name="Smith, Jones & Müller LLP",
        attachments=[],
        tags={},
    )

    from moto.ses.models import ses_backends

    (raw,) = ses_backends["123456789012"][REGION].sent_messages
    message = BytesParser(policy=policy.default).parsebytes(raw.raw_data.encode())
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Smith, Jones & Müller LLP", SENDER)
    # SES asks that content outside 7-bit ASCII be encoded: headers and parts alike.
    assert raw.raw_data.isascii()


def _mailer_answering(code: str, status: int) -> SesMailer:
    client = boto3.client(
        "sesv2", region_name=REGION, aws_access_key_id="k", aws_secret_access_key="s"
    )
    stubber = Stubber(client)
    stubber.add_client_error("send_email", service_error_code=code, http_status_code=status)
    stubber.activate()
    return SesMailer(client, from_address=SENDER, configuration_set="envelopes")


def _send(mailer: SesMailer) -> str:
    return mailer.send(
        to=["client@example.com"],
        subject="Bill",
        text="t",
        html="<p>t</p>",
        reply_to=None,
        sender_name=None,
        attachments=[],
        tags={"envelope_id": "env-1"},
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [("TooManyRequestsException", 429), ("Throttling", 400), ("LimitExceededException", 400)],
)
def test_given_ses_throttling_when_sending_then_ses_throttled_is_raised(code, status):
    with pytest.raises(SesThrottled):
        _send(_mailer_answering(code, status))


def test_given_a_ses_5xx_when_sending_then_a_transient_send_error_is_raised():
    with pytest.raises(TransientSendError):
        _send(_mailer_answering("InternalFailure", 500))


def test_given_a_rejected_message_when_sending_then_email_not_sent_and_not_retried():
    with pytest.raises(EmailNotSent) as raised:
        _send(_mailer_answering("MessageRejected", 400))
    assert not isinstance(raised.value, (SesThrottled, TransientSendError))
    assert "MessageRejected" in raised.value.message


class _RecordingSes:
    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def send_email(self, **request: object) -> dict[str, str]:
        self.calls.append(request)
        return {"MessageId": "m-1"}


@pytest.mark.parametrize(
    "breaking",
    [
        {"subject": "Bill\r\nBcc: everyone@example.com"},
        {"sender_name": "Acme\nLaw"},
        {"to": ["client@example.com\r\nBcc: everyone@example.com"]},
    ],
)
def test_given_a_header_the_email_package_refuses_then_email_not_sent_before_calling_ses(
    breaking,
):
    ses = _RecordingSes()
    values = {
        "to": ["client@example.com"],
        "subject": "Bill",
        "text": "t",
        "html": "<p>t</p>",
        "reply_to": None,
        "sender_name": None,
        "attachments": [],
        "tags": {},
    }
    values.update(breaking)

    with pytest.raises(EmailNotSent):
        SesMailer(ses, from_address=SENDER, configuration_set=None).send(**values)

    assert ses.calls == []


def test_given_an_sesv2_client_then_verify_sender_lets_it_send(sesv2):
    verify_sender(sesv2, "other@billbridge.test")
    SesMailer(sesv2, from_address="other@billbridge.test", configuration_set=None).send(
        to=["client@example.com"],
        subject="From the other sender",
        text="t",
        html="<p>t</p>",
        reply_to=None,
        sender_name=None,
        attachments=[],
        tags={},
    )
    assert read_outbox_in_process()[-1]["from"] == "other@billbridge.test"


def test_given_a_moto_server_when_mail_is_sent_then_the_outbox_reads_back_over_http(
    monkeypatch: pytest.MonkeyPatch,
):
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        sesv2 = boto3.client("sesv2", region_name=REGION, endpoint_url=url)
        verify_sender(sesv2, SENDER)
        mailer = SesMailer(sesv2, from_address=SENDER, configuration_set=None)
        for number in (1, 2):
            mailer.send(
                to=[f"client{number}@example.com"],
                subject=f"Bill {number}",
                text=f"Bill {number} attached.",
                html=f"<p>Bill {number} attached.</p>",
                reply_to="office@acme-law.example",
                sender_name="Acme Law LLP",
                attachments=[(f"bill-{number}.pdf", tiny_pdf(f"Bill {number}"))],
                tags={"envelope_id": f"env-{number}"},
            )

        outbox = read_outbox_from_server(url)

        assert [(m["to"], m["subject"]) for m in outbox] == [
            (["client1@example.com"], "Bill 1"),
            (["client2@example.com"], "Bill 2"),
        ]
        assert outbox[1]["body"] == "Bill 2 attached.\n"
        assert outbox[1]["html"].strip() == "<p>Bill 2 attached.</p>"
        assert outbox[1]["attachments"] == ["bill-2.pdf"]
        assert outbox[1]["reply_to"] == "office@acme-law.example"
        assert outbox[1]["from"] == f"Acme Law LLP <{SENDER}>"
    finally:
        server.stop()
