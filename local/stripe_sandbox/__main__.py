"""`python -m local.stripe_sandbox`: run the Stripe sandbox in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from local.stripe_sandbox.server import StripeSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stripe_sandbox", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("STRIPE_SANDBOX_HOST", "127.0.0.1"))
    port = int(os.environ.get("STRIPE_SANDBOX_PORT", "3002"))
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--api-key", default=os.environ.get("STRIPE_API_KEY", "sk_test_sandbox"))
    parser.add_argument("--webhook-url", default=None, help="where events are POSTed (none: kept)")
    parser.add_argument(
        "--webhook-secret", default=os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_sandbox")
    )
    parser.add_argument("--public-url", default=None, help="origin for checkout page URLs")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    sandbox = StripeSandbox(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        public_url=args.public_url,
        verbose=args.verbose,
    )
    return sandbox.run_until_interrupted("Stripe sandbox")


if __name__ == "__main__":
    sys.exit(main())
