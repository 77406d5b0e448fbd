"""Money: integer minor units (cents). Conversion from Clio's decimal major units lives here."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from billbridge.domain.errors import InvalidInput


def cents_from_major(value: object) -> int:
    """Clio sends money as JSON numbers in major units; we parse them as Decimal, never float."""
    if value is None:
        return 0
    if isinstance(value, float):
        # A float has already lost precision somewhere upstream; go through its repr, which is
        # the shortest string that round-trips, rather than its binary value.
        value = repr(value)
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"This is not an amount: {value!r}.") from exc
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def major_from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


# Currencies written with a sign before the amount; any other is written "1,130.25 CHF".
CURRENCY_SIGNS = {"USD": "$", "CAD": "$", "AUD": "$", "GBP": "£", "EUR": "€"}


def format_money(cents: int, currency: str = "USD") -> str:
    """The one way the product writes an amount for people: 113025, "USD" -> "$1,130.25".

    Every message a client or clerk reads (errors, email merge fields, the pay page, receipts)
    goes through this, so no raw cents ever reach them."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError(f"cents must be an int, not {type(cents).__name__}")
    sign = CURRENCY_SIGNS.get(currency.upper())
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    text = f"{sign}{amount}" if sign else f"{amount} {currency.upper()}"
    return f"-{text}" if cents < 0 else text
