"""A local stand-in for the few Stripe API endpoints the project calls (Checkout Sessions,
PaymentIntents, Refunds, Connect accounts, Events), with a clickable checkout page, signed
webhooks in Stripe's event shapes and `/_sandbox` test controls.

    sandbox = StripeSandbox(port=0, webhook_url=...)
    sandbox.start()   # sandbox.url is stripe-python's api base; sandbox.stop()
"""

from local.stripe_sandbox.server import StripeSandbox
from local.stripe_sandbox.state import SandboxState

__all__ = ["SandboxState", "StripeSandbox"]
