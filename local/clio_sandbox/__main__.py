"""`python -m local.clio_sandbox`: run the Clio sandbox in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from local.clio_sandbox.seed import seed_demo
from local.clio_sandbox.server import ClioSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.clio_sandbox", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("CLIO_SANDBOX_HOST", "127.0.0.1"))
    port = int(os.environ.get("CLIO_SANDBOX_PORT", "3001"))
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--seed-demo", action="store_true", help="create the demo account's bills")
    parser.add_argument("--rate-limit", type=int, default=50, help="requests per window per token")
    parser.add_argument("--rate-window", type=float, default=60.0, help="window length, seconds")
    parser.add_argument("--token-ttl", type=int, default=2592000, help="access token life, seconds")
    parser.add_argument("--list-includes-deleted", action="store_true")
    parser.add_argument("--webhook-delay", type=float, default=0.05)
    parser.add_argument(
        "--client-id", default=os.environ.get("CLIO_CLIENT_ID", "sandbox-client-id")
    )
    parser.add_argument(
        "--client-secret", default=os.environ.get("CLIO_CLIENT_SECRET", "sandbox-client-secret")
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    sandbox = ClioSandbox(
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        token_ttl_seconds=args.token_ttl,
        list_includes_deleted=args.list_includes_deleted,
        webhook_delay_seconds=args.webhook_delay,
        client_id=args.client_id,
        client_secret=args.client_secret,
        verbose=args.verbose,
    )
    if args.seed_demo:
        seeded = seed_demo(sandbox.state, "demo")
        print(f"seeded account 'demo' with {len(seeded)} bills", file=sys.stderr)
    return sandbox.run_until_interrupted("Clio sandbox")


if __name__ == "__main__":
    sys.exit(main())
