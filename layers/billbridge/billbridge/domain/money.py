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
        raise InvalidInput(f"not an amount: {value!r}") from exc
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def major_from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))
