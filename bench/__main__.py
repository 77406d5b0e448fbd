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
BENCH_PATIENCE_SECONDS (900, the longest any one wait may take), BENCH_LISTING_BILLS (20000:
the searched and sorted page's firm size), BENCH_NOTE (said in each header line, as `--note`).

docs/benchmarks.md's `make bench` section holds one sub-section per part. `--only NAME,...`
runs some parts (scaling, listing, prefetch, freshness, sending, stripe, cold) and rewrites only
their sub-sections, keeping the others as they were; `make bench` rewrites them all.
`--no-write` prints without writing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass

from bench.common import Row, table, write_parts, write_section

INTRO = """## `make bench`

In-process on moto, the Clio sandbox over HTTP, each part in a mocked AWS of its own.
`make bench` runs every part and rewrites this whole section; `python -m bench --only PART`
runs one part and rewrites only its own sub-section, so each sub-section says when, by which
command and under what machine load its rows were measured. A part that measures nothing (no
PDF prefetched, no envelope sent, no window seen) fails the run instead of writing its rows."""


@dataclass(frozen=True)
class Part:
    title: str
    notes: str


PARTS: dict[str, Part] = {
    "scaling": Part(
        "Sync and the default page by firm size",
        """- Seeded bills are spread over the last 30 days (the sandbox's clock is moved while
  seeding), so an increment's two-minute overlap re-reads only what changed lately. The sync is
  measured with the PDF prefetch off (its own part below) and Clio's rate limit lifted. A full
  sync's Clio requests are ⌈N/200⌉ pages plus the explicit `state=deleted` pass; its bill
  writes are TransactWriteItems of up to 100 actions, each new bill with its word items (one
  per word of its client's name after the first, W in all): at least ⌈(N + W)/100⌉, a bill
  never split between two and each page of 200 bills its own (plus the deleted pass's own):
  both linear in N. Until word-start search they were ⌈N/25⌉ BatchWriteItems, with no
  condition.
- The page is asked as a signed-in staff member, as every real user asks it: one consistent
  BatchGetItem of the caller's member record (which every signed-in request reads, so that a
  removed or demoted user is refused at once: docs/auth.md) and the firm header (settings,
  sync state, the run), made by the access check, and one Query of gsi2 (whose `issued` group
  holds the two default states in id order). Until issue 14's fix those were two GetItems.
  The target's "at most 1 GetItem" counts that BatchGetItem as the one read request.
- The ratio is CPU time of the calling thread (handler and moto both run in it), interleaved
  with the raw Query, so other work on the machine weighs on both alike. moto answers any Query
  by walking and sorting the whole table, and serialises each returned item slowly, so the raw
  Query's own time grows with N; what a page reads (requests, items) does not, and that is what
  carries over to DynamoDB. A view whose firm last synced over 30 seconds ago starts a sync (its
  TransactWriteItems and the connection's GetItem), averaged into the requests per page and
  said apart in the "against" column ("besides N sync starts").""",
    ),
    "listing": Part(
        "Searched and sorted pages",
        """- Its own 20,000 bills. A sorted page is one Query per asked state of the sort's index
  (two for the default states) plus the header's GetItem, against one raw Query of the same
  index. A search reads every match of each searched field (client, number, matter) per state
  to sort them: `q=ava` begins one client's name in every seeded group of clients (about one
  bill in ten, some 1,700 matches), so its page reads them all, and moto's slow per-item
  serialisation makes that the costly row; `q=inv-0012` (ten bill numbers) is the selective
  search staff type most. A search matching more than 1,000 bills of one field reads the
  listing's own order instead, with the search as a filter. `q=smith3` is word-start search:
  "Smith3" is the second word of one client's name in every seeded group of clients (as many
  matches as `q=ava`), found by their word items (one Query of the base table per state) and
  read by BatchGetItem (100 bills a request); its raw Query is the word items' own range. moto
  walks the whole table for every Query (about a second each at 20,000 bills here), so a
  search's eight Queries (three fields and the word items, two states) cost eight walks
  there; on DynamoDB each reads only its own matches.
- It asks as the local stage's stand-in user, who has no member record: its header is one
  GetItem; a signed-in user's page reads the header with their record in one BatchGetItem
  instead (as in the scaling part's rows), the same count of read requests.""",
    ),
    "prefetch": Part(
        "The PDF prefetch against Clio's rate limit",
        """- The sandbox enforces Clio's 50 requests per 60-second window of the firm's token; its
  clock moves a window ahead before each scheduled sync, so every window starts fresh without
  waiting. In each window the scheduled sync takes what it needs first; the prefetch then takes
  what Clio's answers say is left, less a reserve of 20% of the window (for a view's sync, a
  clerk's sync and a send), never waiting for a window and stopping at the first 429.
- "used/left" is the prefetch's PDF requests against what the window had left when the sync
  was done (50 less the sync's requests, less any other use of the token before it). Two
  windows are not ordinary, on purpose: in one, other work on the firm's token (as a send
  fetching PDFs) spends 40 requests before the scheduled sync, so the prefetch must take
  nothing; in another, Clio answers the prefetch's first PDF request with a 429 (injected, with
  `Retry-After: 60`), and the prefetch must stop at once and leave the rest to the next run.
- After the prefetch of each other window, a clerk's sync (`POST /sync`) runs in the same
  window: it must get every request answered, no 429, no wait, which is what the reserve is
  for. Its own prefetch keeps the same rule: it takes nothing when the window is down to the
  reserve, as it is after a full prefetch.""",
    ),
    "freshness": Part(
        "Freshness",
        """- The local stack's shape (asynchronous Lambdas on threads, the sandbox posting signed
  webhooks after its own 50 ms delay, Clio's rate limit, the prefetch on). Through webhooks
  each change is watched on the first page of `GET /invoices`, and a view starts a sync of its
  own when the last is 30 s old: the bill-list requests the row counts are those syncs (two a
  sync: changed bills and the deleted pass), the only way other than the webhook that a change
  could reach the page. Through the schedule, webhooks off, the store itself is watched (what
  `GET /invoices` answers from), so no view starts a sync of its own; the changes land at
  random moments of three minutes.""",
    ),
    "sending": Part(
        "Sending after a prefetch",
        """- The shipped workflow on moto's Step Functions with the real task handlers, the Clio
  rate limit lifted (so the first sync's prefetch, bound only by its per-run cap, caches every
  sendable bill in one run; under Clio's limit that takes the windows' leftovers, the prefetch
  part above). Its wall time is moto's (DynamoDB calls serialised, a table copy per
  transaction), not Lambda's; the counts are the point. After the prefetch a send asks Clio for
  nothing; once half the bills changed (the store learnt it from a sync without a prefetch, as
  when changes land just before a send), for exactly those PDFs. Every Clio request made while
  the workflows ran is counted, not only the PDFs.""",
    ),
    "stripe": Part(
        "Stripe webhook",
        """- Signed checkout completions, each signed as it is delivered, through the webhook
  handler (signature check included) on moto: one consistent read of the transaction, one
  TransactWriteItems, and the receipt check's read of the transaction. The bench's bills have
  no client email address, so each receipt is checked and not sent (the handler logs why, on
  stderr). The events-per-second figure is moto's, not DynamoDB's: moto copies the table for
  each transaction, so its time per event grows as the events add items.""",
    ),
    "cold": Part(
        "Cold imports",
        """- The CPU time of importing each handler in a fresh interpreter (best of 7), against a
  baseline that imports boto3 and instantiates the Powertools pieces every handler uses
  (Logger, Metrics, Tracer, a validating resolver).
- The composition root (bootstrap.py) imports each service where it builds it, and the
  ports and services import the domain's types only for annotations, so a handler loads at
  import only what its routes' signatures need (tests/infra/test_cold_imports.py). What is
  left is paid on the first request that builds it: the API builds each of its services on
  first use, so a cold `GET /invoices` imports the invoices and sync services and not the
  payment, plan, sending or envelope ones; the pay page's function needs its payment
  services for every request, and its views import them at import.""",
    ),
}

LARGE_NOTES = """The same measurements as the 2,000 and 20,000 rows above, at 100,000 bills (fewer
repeats of the page: moto's index Query still walks the whole table here). Clio requests and
writes per bill are the same at every size; a page reads the same requests and items at every
size."""


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


def machine(note: str, load_before: float, load_after: float) -> str:
    """The header line's machine: cores, the load average at the run's start and end (a load
    above the cores' count means other work shared them), and `note` (`--note`)."""
    extra = f"; {note}" if note else ""
    return (
        f"{os.cpu_count()} cores (load average {load_before:.1f} at the start, "
        f"{load_after:.1f} at the end{extra}), Python {platform.python_version()}"
    )


@dataclass(frozen=True)
class Measured:
    rows: list[Row]
    seconds: float
    finished: str  # when, UTC
    load_before: float
    load_after: float


def part_text(name: str, measured: Measured, command: str, note: str) -> str:
    part = PARTS[name]
    where = machine(note, measured.load_before, measured.load_after)
    return (
        f"### {part.title} (`{name}`)\n\n"
        f"The latest run: {measured.finished}, `{command}`, {measured.seconds:.0f} s; {where}.\n\n"
        f"{table(measured.rows)}\n\n{part.notes}"
    )


@contextmanager
def stdout_kept_for_the_table() -> Iterator[None]:
    """While the parts run, whatever they print (the handlers' log lines, on stdout as in
    Lambda) goes to stderr, at the file descriptor, so stdout carries the table alone."""
    # Both: a logger holds the stdout it found (file descriptor 1); a print looks sys.stdout up.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    parser.add_argument("--large", action="store_true", help="the 100,000-bill scaling rows")
    parser.add_argument(
        "--only", help=f"comma-separated parts ({', '.join(PARTS)}); rewrites only their rows"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no doc")
    parser.add_argument(
        "--note",
        default=os.environ.get("BENCH_NOTE", ""),
        help="said in the header line, e.g. 'the cores shared with other test runs'",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    if args.large:
        from bench.scaling import scaling

        n = _env_int("BENCH_LARGE_BILLS", 100_000)
        with stdout_kept_for_the_table():
            text = table(scaling(n, increments=False, repeats=5))
        print(text, flush=True)
        if not args.no_write:
            stamp = time.strftime("%Y-%m-%d", time.gmtime())
            write_section(
                "bench-large",
                f"## Scaling at {n:,} bills (`make bench-large`)\n\nThe latest run, {stamp}, "
                f"{machine(args.note, load_before, os.getloadavg()[0])}, "
                f"{time.perf_counter() - began:.0f} s.\n\n"
                f"{text}\n\n{LARGE_NOTES}",
            )
        return 0
    chosen = parts()
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(chosen)
    unknown = [n for n in names if n not in chosen]
    if unknown:
        parser.error(f"no part {', '.join(unknown)}; the parts: {', '.join(chosen)}")
    command = f"python -m bench --only {','.join(names)}" if args.only else "make bench"
    measured: dict[str, Measured] = {}
    with stdout_kept_for_the_table():
        for name in names:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            started, load = time.perf_counter(), os.getloadavg()[0]
            rows = chosen[name]()
            if not rows:
                raise RuntimeError(f"bench part {name} measured nothing")
            measured[name] = Measured(
                rows,
                time.perf_counter() - started,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                load,
                os.getloadavg()[0],
            )
            print(f"[bench] {name}: {measured[name].seconds:.0f} s", file=sys.stderr, flush=True)
    print(table([row for m in measured.values() for row in m.rows]), flush=True)
    if not args.no_write:
        texts = {name: part_text(name, m, command, args.note) for name, m in measured.items()}
        write_parts("bench", INTRO, texts, list(PARTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
