"""`make load`: start the local stack, run the load, print the table, fail loudly."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.load import __doc__ as description
from bench.load.report import render, write_docs
from bench.load.run import run_load
from bench.load.stack import local_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--firms", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--docs", type=Path, help="write the table into this benchmarks.md")
    parser.add_argument("--no-memory-check", action="store_true")
    args = parser.parse_args(argv)
    check_memory = not args.no_memory_check
    log = Path(tempfile.gettempdir()) / f"billbridge-load-{os.getpid()}.log"
    print(f"starting the local stack (log: {log}) ...", flush=True)
    with local_stack(log) as urls:
        print(
            f"{args.firms} firms set up; {args.clients} clients for {args.duration:.0f} s ...",
            flush=True,
        )
        result = run_load(
            urls,
            clients=args.clients,
            duration=args.duration,
            firms=args.firms,
            seed=args.seed,
        )
    table = render(result, check_memory)
    print(table)
    print("\n4xx answers seen (a few per route; expected kinds are in docs/benchmarks.md):")
    for route, refusals in sorted(result.refusals.items()):
        for refusal in refusals:
            print(f"  {route}: {refusal}")
    failures = result.failures(check_memory)
    if args.docs:
        write_docs(args.docs, table, "make load")
        print(f"\nwritten to {args.docs}")
    if failures:
        print("\nLOAD TEST FAILED:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        for title, items in (
            ("5xx", result.server_errors),
            ("no answer", result.unanswered),
            ("answers meant for another request", result.crossed),
            ("money", result.money.problems),
            ("Clio delivery given up", result.clio_lost),
        ):
            for item in items[:15]:
                print(f"  {title}: {item}", file=sys.stderr)
            if len(items) > 15:
                print(f"  {title}: ... and {len(items) - 15} more", file=sys.stderr)
        return 1
    print(
        "\nload test passed: no 5xx, no crossed answers, money exact"
        + (", memory bounded" if check_memory else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
