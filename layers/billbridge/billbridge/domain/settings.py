"""A firm's settings (T1): what the billing clerk chooses once and every send uses."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonDict

from billbridge.domain.bills import DEFAULT_STATES, BillState
from billbridge.domain.email_headers import HEADER_TEXT_PATTERN, check_header_text
from billbridge.domain.plans import PlanSettings
from billbridge.domain.surcharge import SurchargeSettings
from billbridge.domain.templates import TEMPLATE_FORMAT, check_template

# Values that go in an email header, documented as one line of text (check_header_fields
# refuses anything else with a 422 naming the field).
ONE_LINE: JsonDict = {"pattern": HEADER_TEXT_PATTERN}


def _email_address(value: str) -> str:
    """pydantic's own email check (so the same answers as EmailStr), imported on first use:
    EmailStr loads email-validator when the model is defined, on every cold start."""
    from pydantic.networks import validate_email

    normalized = validate_email(value)[1]
    if value.isascii() and not normalized.isascii():
        # An ASCII (punycode) address stays ASCII: `format: email` and email headers want it,
        # and the normalizer would have turned xn--80adxhks into москва.
        import email_validator

        return str(email_validator.validate_email(value, check_deliverability=False).ascii_email)
    return normalized


# pydantic's EmailStr, validated alike and described alike in the OpenAPI document.
EmailAddress = Annotated[
    str, AfterValidator(_email_address), WithJsonSchema({"type": "string", "format": "email"})
]


class EmailTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The format names the grammar the OpenAPI document cannot spell: Jinja2 over the merge
    # fields of domain/templates.py (check_template refuses anything else with a 422).
    subject: str = Field(
        min_length=1,
        max_length=300,
        description="A template: text and the merge fields, such as {{ bill_numbers }}",
        json_schema_extra={"format": TEMPLATE_FORMAT, **ONE_LINE},
    )
    body: str = Field(
        min_length=1,
        max_length=20_000,
        description="A template: text and the merge fields, such as {{ pay_link }}",
        json_schema_extra={"format": TEMPLATE_FORMAT},
    )

    @field_validator("subject", "body")
    @classmethod
    def _renders(cls, value: str) -> str:
        check_template(value)
        return value


class Templates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Factories, not instances: building one validates it, which loads Jinja2 at import time.
    invoice: EmailTemplate = Field(
        default_factory=lambda: EmailTemplate(
            subject="Invoice {{ bill_numbers }} from {{ firm_name }}",
            body=(
                "Dear {{ client_name }},\n\n"
                "Please find attached invoice {{ bill_numbers }} for {{ amount_due }}, "
                "due {{ due_dates }}.\n\nYou can pay online here: {{ pay_link }}\n\n"
                "Thank you,\n{{ firm_name }}"
            ),
        )
    )
    trust_request: EmailTemplate = Field(
        default_factory=lambda: EmailTemplate(
            subject="Trust request {{ bill_numbers }} from {{ firm_name }}",
            body=(
                "Dear {{ client_name }},\n\n"
                "Please find attached trust request {{ bill_numbers }} for {{ amount_due }}, "
                "due {{ due_dates }}. Funds are deposited into our trust account.\n\n"
                "You can pay online here: {{ pay_link }}\n\nThank you,\n{{ firm_name }}"
            ),
        )
    )
    # Envelopes holding both (Aggregate Payment Links): the invoices and the trust requests
    # listed apart, with the trust sentence kept.
    mixed: EmailTemplate = Field(
        default_factory=lambda: EmailTemplate(
            subject="Invoices and trust requests {{ bill_numbers }} from {{ firm_name }}",
            body=(
                "Dear {{ client_name }},\n\n"
                "Please find attached your invoices and trust requests, {{ amount_due }} in "
                "all, due {{ due_dates }}.\n\n"
                "Invoices ({{ invoice_amount_due }}):\n{{ invoice_lines }}\n\n"
                "Trust requests ({{ trust_amount_due }}):\n{{ trust_request_lines }}\n"
                "Funds for trust requests are deposited into our trust account.\n\n"
                "You can pay online here: {{ pay_link }}\n\nThank you,\n{{ firm_name }}"
            ),
        )
    )

    # X3: the payment reminder; the same merge fields as a first send.
    reminder: EmailTemplate = Field(
        default_factory=lambda: EmailTemplate(
            subject="Reminder: {{ bill_numbers }} from {{ firm_name }} is still open",
            body=(
                "Dear {{ client_name }},\n\n"
                "This is a friendly reminder that {{ bill_numbers }} for {{ amount_due }}, "
                "due {{ due_dates }}, is still open. The bill is attached again.\n\n"
                "You can pay online here: {{ pay_link }}\n\n"
                "If you have paid already, thank you, and please disregard this email.\n\n"
                "{{ firm_name }}"
            ),
        )
    )


class ReminderSettings(BaseModel):
    """X3: reminders of bills still payable, `first_after_days` after a bill was first sent,
    then every `repeat_every_days`, at most `max_count` in all (domain/reminders.py). Off until
    the firm turns them on: a firm decides when its clients get more email."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = False
    # Peers' defaults (Clio Payments, LawPay): 15 days after the bill, then every 15 days.
    first_after_days: StrictInt = Field(default=15, ge=1, le=365)
    repeat_every_days: StrictInt = Field(default=15, ge=1, le=365)
    max_count: StrictInt = Field(default=3, ge=1, le=12)


class FirmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: "yes", 1 and "true" are not booleans (pydantic's lax mode would take them).
    aggregate_payment_links: StrictBool = False
    templates: Templates = Field(default_factory=Templates)
    default_states: list[BillState] = Field(
        default_factory=lambda: list(DEFAULT_STATES), min_length=1, max_length=len(BillState)
    )
    firm_name: str = Field(
        default="Your law firm", min_length=1, max_length=200, json_schema_extra=ONE_LINE
    )
    sender_name: str | None = Field(default=None, max_length=200, json_schema_extra=ONE_LINE)
    reply_to: EmailAddress | None = None
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)
    # Issue 12: the limits of plans clients choose on the pay page (domain/plans.py).
    payment_plans: PlanSettings = Field(default_factory=PlanSettings)
    # Issue 12: card surcharges, off by default (domain/surcharge.py).
    surcharge: SurchargeSettings = Field(default_factory=SurchargeSettings)

    @field_validator("default_states")
    @classmethod
    def _states_not_empty(cls, value: list[BillState]) -> list[BillState]:
        if not value:
            raise ValueError("Choose at least one bill state.")
        return list(dict.fromkeys(value))


def check_header_fields(settings: FirmSettings) -> None:
    """Settings that end up in every email's header must not break it (RuleViolation naming
    the field). Checked when staff save them, not when stored settings are read: settings saved
    before this check still load, and the send step refuses what they would break."""
    check_header_text(settings.firm_name, "firm_name", "The firm's name")
    if settings.sender_name is not None:
        check_header_text(settings.sender_name, "sender_name", "The sender's name")
    if settings.reply_to is not None:
        check_header_text(str(settings.reply_to), "reply_to", "The reply-to address")
    for kind in ("invoice", "trust_request", "mixed", "reminder"):
        template: EmailTemplate = getattr(settings.templates, kind)
        check_header_text(template.subject, f"templates.{kind}.subject", "The subject template")
