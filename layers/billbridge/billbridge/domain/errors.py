"""Domain exceptions: the one vocabulary of failure that services raise and the API maps.

Each carries a stable machine `code` and, where the caller's input is at fault, the `field`
it names. The HTTP status is chosen by the exception-handler module from the class, never from
message text.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every failure the API reports to a caller."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The object does not exist, or is not the caller's (the two are indistinguishable)."""

    code = "not_found"


class InvalidInput(DomainError):
    """Malformed input: wrong type, unparsable value, missing field (HTTP 400)."""

    code = "invalid_input"


class RuleViolation(DomainError):
    """Well-formed input that breaks a business rule (HTTP 422)."""

    code = "rule_violation"


class Unauthenticated(DomainError):
    """A caller that failed to prove who it is: a bad webhook signature (HTTP 401)."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller is signed in but their role may not do this (HTTP 403)."""

    code = "forbidden"


class Conflict(DomainError):
    """The request conflicts with the object's current state (HTTP 409)."""

    code = "conflict"


class Contended(Conflict):
    """Every try lost a race with other changes to the same bills or payment (HTTP 409): nothing
    was done, and the same request is expected to succeed when tried again."""

    code = "try_again"


class NotConnected(RuleViolation):
    """The firm has no usable Clio connection; staff must connect (or reconnect) Clio."""

    code = "clio_not_connected"


class ClioUnreachable(DomainError):
    """Clio did not answer usefully (rate limit outlasting our wait, 5xx, timeouts). The Clio
    adapter's errors derive from this so services never import the adapter."""

    code = "clio_unavailable"
    # Whether trying again later may succeed (rate limit, Clio down), as opposed to a request
    # Clio refuses as such (a bill it no longer has). The adapter's classes say which.
    transient = False
    # Set when Clio's rate limit is the reason: the seconds it asked us to wait.
    retry_after: float | None = None


class ClioAuthorizationLost(ClioUnreachable):
    """Clio refused our tokens even after a refresh: the firm must reconnect Clio."""

    code = "clio_reconnect_needed"


class SesThrottled(DomainError):
    """SES refused the email for now (sending rate); it sent nothing. The workflow retries.
    The class name is the error name the state machine's Retry matches."""

    code = "ses_throttled"


class EmailNotSent(DomainError):
    """The envelope's email was not sent, for certain, and trying again as it is cannot help:
    its content cannot make a valid email (a header value that breaks the header) or SES
    refused the request. Nothing reached the client, so the envelope is `failed`, to be edited
    and sent again. The class name is the error name the state machine reports."""

    code = "email_not_sent"


class ReceiptDelayed(DomainError):
    """A Stripe event was recorded but its receipt email could not be sent yet (SES throttled):
    the webhook answers 503 so Stripe delivers the event again, and the retry sends it."""

    code = "receipt_delayed"


class TransientSendError(DomainError):
    """A send step failed in a way worth retrying (Clio or SES briefly unavailable)."""

    code = "transient_send_error"


class PaymentProviderError(DomainError):
    """Stripe refused or failed a request we made (not the caller's input): HTTP 502."""

    code = "payment_provider_error"

    def __init__(self, message: str, *, definitive: bool = True) -> None:
        super().__init__(message)
        # True when Stripe answered "no" (nothing happened); False when it did not answer and
        # the request may have taken effect.
        self.definitive = definitive
