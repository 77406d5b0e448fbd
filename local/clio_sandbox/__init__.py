"""A local stand-in for Clio Manage API v4 (bills, OAuth, cursor paging, rate limits, webhooks),
holding bills per Clio account, for tests, benchmarks and the local stack.

    sb = ClioSandbox(port=0).start()   # sb.url, sb.state, sb.stop()
"""

from local.clio_sandbox.seed import seed_demo, seed_many
from local.clio_sandbox.server import ClioSandbox
from local.clio_sandbox.state import SandboxState

__all__ = ["ClioSandbox", "SandboxState", "seed_demo", "seed_many"]
