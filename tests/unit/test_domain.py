from datetime import timedelta
from decimal import Decimal

import pytest

from billbridge.domain.bills import BillKind, BillState, bill_from_clio, parse_states
from billbridge.domain.connection import ClioConnection, Region, parse_region
from billbridge.domain.errors import InvalidInput, RuleViolation, Unauthenticated
from billbridge.domain.money import cents_from_major
from billbridge.domain.oauth_state import STATE_TTL, check_browser, start_connect, verify_state
from billbridge.domain.settings import FirmSettings
from tests.fakes import T0, clio_bill

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("given", "cents"),
    [
        (Decimal("1500.0"), 150000),
        (Decimal("0.1"), 10),
        (Decimal("1234.565"), 123457),
        ("19.99", 1999),
        (None, 0),
        (0.29, 29),
        (Decimal("-5.5"), -550),
    ],
)
def test_given_clio_major_units_when_converted_then_exact_integer_cents(given, cents):
    assert cents_from_major(given) == cents


def test_given_garbage_amount_when_converted_then_invalid_input():
    with pytest.raises(InvalidInput):
        cents_from_major("twelve")


def test_given_a_clio_trust_bill_when_mapped_then_it_is_a_trust_request_with_cents_and_link():
    record = clio_bill(1001, kind="trust_kind", total="1500.00", balance="1000.50")
    bill = bill_from_clio(record, "https://eu.app.clio.com")
    assert bill.kind is BillKind.TRUST_REQUEST
    assert bill.total_cents == 150000
    assert bill.outstanding_clio_cents == 100050
    assert bill.clio_url == "https://eu.app.clio.com/nc/#/bills/1001"
    assert bill.client.email == "client@example.com"
    assert bill.matter is not None and bill.matter.display_number == "00042-Acme"
    assert bill.clio_updated_at.tzinfo is not None


@pytest.mark.parametrize("kind", ["revenue_kind", "summary_kind", "aggregate_all", None])
def test_given_any_non_trust_kind_when_mapped_then_it_is_an_invoice(kind):
    assert bill_from_clio(clio_bill(1, kind=kind), "https://app.clio.com").kind is BillKind.INVOICE


def test_given_a_bill_without_matter_or_email_when_mapped_then_those_are_empty():
    record = clio_bill(5, client_email=None)
    record["matters"] = []
    bill = bill_from_clio(record, "https://app.clio.com")
    assert bill.matter is None and bill.client.email is None


def test_given_states_text_when_parsed_then_deduplicated_in_clio_order():
    assert parse_states("paid, awaiting_payment,paid") == (
        BillState.AWAITING_PAYMENT,
        BillState.PAID,
    )


@pytest.mark.parametrize("raw", ["", "paid,unpaid", " , "])
def test_given_bad_states_when_parsed_then_invalid_input_names_states(raw):
    with pytest.raises(InvalidInput) as error:
        parse_states(raw)
    assert error.value.field == "states"


def test_given_a_signed_state_when_verified_then_the_firm_region_and_user_come_back():
    start = start_connect("firm-a", Region.CA, "user-1", KEY, T0)

    intent = verify_state(start.state, KEY, T0 + timedelta(minutes=5))

    assert intent == start.intent
    assert (intent.firm_id, intent.region, intent.user_id) == ("firm-a", Region.CA, "user-1")
    assert start.browser_secret not in start.state  # only its hash travels through Clio


def test_given_a_tampered_or_expired_or_foreign_state_when_verified_then_refused():
    state = start_connect("firm-a", Region.US, "user-1", KEY, T0).state
    body, mac = state.split(".")
    forged_body = start_connect("firm-b", Region.US, "user-1", KEY, T0).state.split(".")[0]
    for bad, key, now in [
        (f"{forged_body}.{mac}", KEY, T0),
        (state, b"other-key" * 4, T0),
        (state, KEY, T0 + STATE_TTL + timedelta(seconds=1)),
        ("garbage", KEY, T0),
        (f"{body}.", KEY, T0),
        ("é.é", KEY, T0),
    ]:
        with pytest.raises(Unauthenticated):
            verify_state(bad, key, now)


def test_given_the_callback_from_another_browser_then_the_state_is_refused():
    start = start_connect("firm-a", Region.US, "user-1", KEY, T0)
    other = start_connect("firm-a", Region.US, "user-1", KEY, T0)

    check_browser(start.intent, start.browser_secret)  # the browser that started it
    for cookie in (None, "", other.browser_secret):
        with pytest.raises(RuleViolation) as refused:
            check_browser(start.intent, cookie)
        assert refused.value.code == "clio_connect_other_browser"


def test_given_a_state_signed_by_the_old_format_then_refused_not_crashed():
    import base64
    import hashlib
    import hmac
    import json

    body = base64.urlsafe_b64encode(json.dumps({"f": "firm-a", "r": "us", "exp": 2**40}).encode())
    text = body.rstrip(b"=").decode()
    mac = hmac.new(KEY, text.encode(), hashlib.sha256).digest()
    old = f"{text}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    with pytest.raises(Unauthenticated) as refused:
        verify_state(old, KEY, T0)
    assert refused.value.code == "invalid_state"


def test_given_a_connection_when_printed_then_no_secret_shows():
    conn = ClioConnection(
        firm_id="f",
        region=Region.US,
        access_token="ACCESS-XYZ",
        refresh_token="REFRESH-XYZ",
        access_expires_at=T0,
        connected_at=T0,
        webhook_secret="HOOK-XYZ",
    )
    text = repr(conn) + str(conn)
    assert "ACCESS-XYZ" not in text and "REFRESH-XYZ" not in text and "HOOK-XYZ" not in text


def test_given_region_names_when_parsed_then_known_ones_pass_and_others_name_the_field():
    assert parse_region("EU") is Region.EU and parse_region(None) is Region.US
    with pytest.raises(InvalidInput) as error:
        parse_region("mars")
    assert error.value.field == "region"


def test_given_default_settings_then_unpaid_and_paid_are_the_default_filter():
    assert FirmSettings().default_states == [BillState.AWAITING_PAYMENT, BillState.PAID]


def test_given_settings_with_no_default_states_then_refused():
    with pytest.raises(ValueError):
        FirmSettings(default_states=[])


def test_given_a_punycode_reply_to_then_it_stays_ascii() -> None:
    """Schemathesis found `xn--80adxhks` (ASCII) coming back as `москва`, which the answer's
    `format: email` refuses and an email header would have to encode."""
    from billbridge.domain.settings import FirmSettings

    settings = FirmSettings(reply_to="nv@a.sk.Xn--80ADxhks")
    assert settings.reply_to == "nv@a.sk.xn--80adxhks"
