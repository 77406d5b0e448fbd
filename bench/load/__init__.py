"""`make load` (`python -m bench.load`): the whole product under concurrent clients, on loopback.

It starts the local stack as the end-to-end tests do (`python -m local.stack` in a subprocess,
free ports on 127.0.0.1, state in a temporary folder), gives several firms bills in the Clio
sandbox, Stripe accounts and emailed pay links, then runs at least 50 client threads for a
bounded time across the firm API (lists with paging, syncs, drafts, sends through the Step
Functions workflow, payment links, refunds, reconciliation), the pay page (HTML and JSON) and
checkout, and both webhooks: Stripe's through the sandbox's payments and its resend of events
(duplicate deliveries), Clio's through bill changes in its sandbox. It stops by itself.

Afterwards it checks, and fails loudly (exit status 1) when any does not hold:
- no 5xx from any route, webhook deliveries included, and no request left unanswered (a
  Clio delivery attempt counts: one not answered within the sandbox's 5 s is one), and no
  Clio delivery given up by the sandbox (it retries a throttled or unanswered one, as Clio);
- no answer meant for another request: each request is one whose answer proves whose it is
  (a firm's invoices are its Clio account's bills, the pay page is JSON when asked JSON and
  HTML otherwise and shows its own link's bills, an envelope's answer carries its id, ...);
- money, per bill and in total: Paid (GL) = the sum of the ledger's entries = Stripe's (the
  sandbox's) successful payments less successful refunds; no payment refunded beyond its
  amount; no ledger entry twice;
- the stack's memory (RSS summed over its whole process tree) grows less than 50 MB after
  warm-up (`make load` only: `--no-memory-check` skips it, and the short test in `make test`
  measures no memory; timed and memory targets are printed, never asserted in tests). The
  warm-up is the run's first part plus a schedule tick and a burst of Clio changes, and lasts
  until no pool changes and every worker has served (bench/load/memory.py); the table shows
  each part of the tree before and after, telling data, pools and a leak apart.

It prints a table (requests, errors, p50/p95/p99 latency per route, memory before and after)
and, with `--docs`, writes the same table into the "Load test" section of docs/benchmarks.md.
`run_load()` is the same run against a stack that is already up (tests/e2e/test_load.py).

Modules: stack (the stack's process and memory), memory (the tree part by part, the
warm-up's end), world (firms, bills, pay links; settling and the webhooks' records
afterwards), clients (the client threads and what each request proves), record (what the
clients saw), money (the invariants), run (one run, its table, the docs).
"""

from bench.load.run import LoadResult, run_load
from bench.load.stack import StackUrls, local_stack

__all__ = ["LoadResult", "StackUrls", "local_stack", "run_load"]
