"""`make bench` (and `make bench-large`): the product's benchmarks, printed as a table and kept
in docs/benchmarks.md.

Everything runs in-process on moto with the Clio sandbox over HTTP; each part in a mocked AWS
of its own (bench/common.py). `make bench` measures sync and list at 2,000 and 20,000 bills,
the searched and sorted page among 20,000, the PDF prefetch against Clio's real rate limit,
freshness through webhooks and through the schedule, sending after a prefetch, Stripe's
webhook and every handler's cold import;
`make bench-large` the sync and list at 100,000 bills, in a section of its own.

Knobs (environment): BENCH_BILLS (sizes, default "2000,20000"), BENCH_LARGE_BILLS (100000),
BENCH_ENVELOPES (500), BENCH_EVENTS (1000), BENCH_FRESHNESS_CHANGES (50),
BENCH_PATIENCE_SECONDS (900, the longest any one wait may take). `--only NAME,...` runs some
parts (scaling, listing, prefetch, freshness, sending, stripe, cold) and prints without
writing. BENCH_LISTING_BILLS (20000): the searched and sorted page's firm size.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

from bench.common import Row, table, write_section

NOTES = """Reading the table:
- Sync and list: seeded bills are spread over the last 30 days (the sandbox's clock is moved
  while seeding), so an increment's two-minute overlap re-reads only what changed lately. The
  sync is measured with the PDF prefetch off (its own rows below) and Clio's rate limit lifted.
  A full sync's Clio requests are ⌈N/200⌉ pages plus the explicit `state=deleted` pass; its bill
  writes are TransactWriteItems of up to 100 actions, each new bill with its word items (one per
  word of its client's name after the first, W in all): at least ⌈(N + W)/100⌉, a bill never
  split between two and each page of 200 bills its own (plus the deleted pass's own): both
  linear in N. Until word-start search they were ⌈N/25⌉ BatchWriteItems, with no condition.
- The default page is one consistent GetItem of the firm header (settings, sync state, the run)
  and one Query of gsi2, whose `issued` group holds the two default states in id order. The
  bench calls as the local stack's stand-in user, who has no member record; a signed-in user's
  request also reads theirs (one more consistent GetItem: a removed or demoted user is refused
  at once, docs/auth.md). The
  ratio is CPU time of the calling thread (handler and moto both run in it), interleaved with
  the raw Query, so other work on the machine weighs on both alike. moto answers any Query by
  walking and sorting the whole table, and serialises each returned item slowly, so the raw
  Query's own time grows with N; what a page reads (requests, items) does not, and that is what
  carries over to DynamoDB. One view in 25 starts the 30-second sync on view (its
  TransactWriteItems and the connection's GetItem).
- Searched and sorted pages (L5, `--only listing`, its own 20,000 bills): a sorted page is one
  Query per asked state of the sort's index (two for the default states) plus the header's
  GetItem, against one raw Query of the same index. A search reads every match of each searched
  field (client, number, matter) per state to sort them: `q=ava` begins one client's name in
  every seeded group of clients (about one bill in ten, some 1,700 matches), so its page reads
  them all, and moto's slow per-item serialisation makes that the costly row; `q=inv-0012`
  (ten bill numbers) is the selective search staff type most. A search matching more than 1,000
  bills of one field reads the listing's own order instead, with the search as a filter.
  `q=smith3` is word-start search: "Smith3" is the second word of one client's name in every
  seeded group of clients (as many matches as `q=ava`), found by their word items (one Query
  of the base table per state) and read by BatchGetItem (100 bills a request); its raw Query
  is the word items' own range. moto walks the whole table for every Query (about a second
  each at 20,000 bills here), so a search's eight Queries (three fields and the word items,
  two states) cost eight walks there; on DynamoDB each reads only its own matches.
- Prefetch: the sandbox enforces Clio's 50 requests per minute; each window's scheduled sync
  takes what it needs first, and the prefetch then takes what is left above a reserve of 20% of
  the window (for views, manual syncs and sends), never waiting for a window and stopping at
  the first 429.
- Freshness: the local stack's shape (asynchronous Lambdas on threads, the sandbox posting
  signed webhooks after its own 50 ms delay, Clio's rate limit, the prefetch on). Through
  webhooks each change is watched on the first page of `GET /invoices`; through the schedule,
  webhooks off, the store itself is watched (what `GET /invoices` answers from), so no view
  starts a sync of its own; the changes land at random moments of three minutes.
- Sending runs the shipped workflow on moto's Step Functions with the real task handlers, the
  Clio rate limit lifted. Its wall time is moto's (DynamoDB calls serialised, a table copy per
  transaction), not Lambda's; the counts are the point. After the prefetch a send asks Clio for
  nothing; once half the bills changed (the store learnt it), for exactly those PDFs.
- Stripe webhook events are signed checkout completions, each signed as it is delivered,
  through the webhook handler (signature check included) on moto: one consistent read of the
  transaction and one TransactWriteItems. The events-per-second figure is moto's, not
  DynamoDB's: moto copies the table for each transaction, so its time per event grows as the
  events add items.
- Cold import is the CPU time of importing each handler in a fresh interpreter (best of 7),
  against a baseline that imports boto3 and instantiates the Powertools pieces every handler
  uses (Logger, Metrics, Tracer, a validating resolver).
"""

LARGE_NOTES = """The same measurements as the 2,000 and 20,000 rows above, at 100,000 bills (fewer
repeats of the page: moto's whole-table Query takes seconds here). Clio requests and writes per
bill are the same at every size; a page reads the same requests and items at every size."""


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def parts() -> dict[str, Callable[[], list[Row]]]:
    from bench.cold import cold_imports
    from bench.freshness import freshness
    from bench.listing import listing
    from bench.prefetch import prefetch_budget
    from bench.scaling import scaling
    from bench.sending import sending
    from bench.stripe_events import stripe_events

    sizes = [int(s) for s in os.environ.get("BENCH_BILLS", "2000,20000").split(",") if s]

    def all_sizes() -> list[Row]:
        rows: list[Row] = []
        for n in sizes:
            rows += scaling(n, increments=n == max(sizes))
        return rows

    return {
        "scaling": all_sizes,
        "listing": lambda: listing(_env_int("BENCH_LISTING_BILLS", 20_000)),
        "prefetch": prefetch_budget,
        "freshness": lambda: freshness(changes=_env_int("BENCH_FRESHNESS_CHANGES", 50)),
        "sending": lambda: sending(_env_int("BENCH_ENVELOPES", 500)),
        "stripe": lambda: stripe_events(_env_int("BENCH_EVENTS", 1000)),
        "cold": cold_imports,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--large", action="store_true", help="the 100,000-bill scaling rows")
    parser.add_argument("--only", help="comma-separated parts; prints only, writes no doc")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    stamp = time.strftime("%Y-%m-%d")
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    if args.large:
        from bench.scaling import scaling

        n = _env_int("BENCH_LARGE_BILLS", 100_000)
        text = table(scaling(n, increments=False, repeats=5))
        print(text, flush=True)
        write_section(
            "bench-large",
            f"## Scaling at {n:,} bills (`make bench-large`)\n\nThe latest run, {stamp}, "
            f"{machine}, {time.perf_counter() - began:.0f} s.\n\n{text}\n\n{LARGE_NOTES}",
        )
        return 0
    chosen = parts()
    names = args.only.split(",") if args.only else list(chosen)
    rows: list[Row] = []
    for name in names:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows += chosen[name]()
        print(f"[bench] {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    text = table(rows)
    print(text, flush=True)
    if not args.only:
        write_section(
            "bench",
            "## `make bench`\n\nThe latest run (in-process on moto, Clio sandbox over "
            f"HTTP), {stamp}, {machine}, {time.perf_counter() - began:.0f} s.\n\n"
            f"{text}\n\n{NOTES}",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
