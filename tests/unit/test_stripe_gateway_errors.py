"""How the Stripe gateway reads Stripe's errors on checkouts and refunds: the same as for
saved methods (one mapper), so a message a client or clerk reads names none of Stripe's ids,
and an idempotency error is never taken for "Stripe made nothing"."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import stripe

from billbridge.adapters.stripe_gateway import StripeGateway
from billbridge.domain.errors import PaymentProviderError


def _raising(exc: Exception) -> Any:
    def call(*_args: Any, **_kwargs: Any) -> Any:
        raise exc

    return call


def gateway_whose(**calls: Any) -> StripeGateway:
    gateway = StripeGateway("sk_test_unit")
    v1 = SimpleNamespace(
        refunds=SimpleNamespace(create=calls.get("refund")),
        checkout=SimpleNamespace(
            sessions=SimpleNamespace(retrieve=calls.get("session"), expire=calls.get("session"))
        ),
    )
    gateway._client = SimpleNamespace(v1=v1)  # type: ignore[assignment]
    return gateway


def test_given_a_refund_whose_key_stripe_says_is_in_use_then_it_is_not_taken_as_refused() -> None:
    """The first request with that key may be making the refund right now: the refund must stay
    pending until Stripe's refund event says how it ended, not be released as refused."""
    gateway = gateway_whose(
        refund=_raising(
            stripe.IdempotencyError(
                "There is currently another in-progress request using this Stripe-Idempotency-Key",
                http_status=409,
            )
        )
    )
    with pytest.raises(PaymentProviderError) as caught:
        gateway.create_refund("pi_3Abc", 3000, {"refund_id": "r1"}, idempotency_key="r1")
    assert caught.value.definitive is False
    assert str(caught.value).startswith("Stripe did not answer about the refund")


def test_given_stripe_refusing_a_checkout_read_then_its_ids_are_left_out_of_the_message() -> None:
    gateway = gateway_whose(
        session=_raising(
            stripe.InvalidRequestError(
                "The session cs_test_a1B2 of customer cus_Q9 cannot be read (request req_7Hk)",
                param="session",
                http_status=400,
            )
        )
    )
    with pytest.raises(PaymentProviderError) as caught:
        gateway.checkout_session("cs_test_a1B2")
    message = str(caught.value)
    assert caught.value.definitive
    assert message.startswith("Stripe refused the checkout: The session (a Stripe object)")
    assert not any(prefix in message for prefix in ("cs_", "cus_", "req_"))


def test_given_a_refund_stripe_refuses_then_the_message_names_no_charge_or_refund_id() -> None:
    gateway = gateway_whose(
        refund=_raising(
            stripe.InvalidRequestError(
                "Charge ch_3Xyz has already been refunded (re_1Q2w)",
                param="charge",
                http_status=400,
            )
        )
    )
    with pytest.raises(PaymentProviderError) as caught:
        gateway.create_refund("pi_3Abc", 3000, {"refund_id": "r1"}, idempotency_key="r1")
    assert caught.value.definitive
    assert "ch_" not in str(caught.value) and "re_" not in str(caught.value)


def test_given_a_refused_transfer_reversal_then_no_reversal_fee_or_refund_id_shows() -> None:
    """A refund of an operating payment reverses the destination charge's transfer: Stripe's
    refusal may name the transfer reversal (trr_), the application fee (fee_) or the bank
    refund (pyr_), none of which a clerk may be shown."""
    gateway = gateway_whose(
        refund=_raising(
            stripe.InvalidRequestError(
                "Transfer reversal trr_1Q2w for fee_1Ab9 and pyr_3Cd7 cannot be made: "
                "insufficient funds in the connected account",
                param="reverse_transfer",
                http_status=400,
            )
        )
    )
    with pytest.raises(PaymentProviderError) as caught:
        gateway.create_refund("pi_3Abc", 3000, {"refund_id": "r1"}, idempotency_key="r1")
    message = str(caught.value)
    assert caught.value.definitive
    assert not any(prefix in message for prefix in ("trr_", "fee_", "pyr_")), message
    assert "insufficient funds in the connected account" in message
