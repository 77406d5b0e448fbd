"""A load run's table (requests, errors, latency per route, the checks, memory), and the
"Load test" section of docs/benchmarks.md that keeps it."""

from __future__ import annotations

from pathlib import Path

from bench.load.memory import rows as memory_rows
from bench.load.run import MEMORY_GROWTH_LIMIT_MB, LoadResult

DOCS_HEADING = "## Load test"


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def render(result: LoadResult, check_memory: bool) -> str:
    lines = [
        f"{result.clients} concurrent clients for {result.duration_s:.0f} s across "
        f"{result.firms} firms, on loopback (2 cores shared by the stack and the clients), "
        f"{result.started_at:%Y-%m-%d}.",
        "",
        "| route | requests | 4xx | 5xx or no answer | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for route, count, client_errors, errors, p50, p95, p99 in result.rows:
        lines.append(
            f"| {route} | {count} | {client_errors} | {errors} "
            f"| {p50:.0f} | {p95:.0f} | {p99:.0f} |"
        )
    total = sum(row[1] for row in result.rows)
    lines.append(
        f"| **all** | **{total}** | {sum(r[2] for r in result.rows)} | "
        f"**{sum(r[3] for r in result.rows)}** | | | |"
    )
    money = result.money
    lines += [
        "",
        "| check | result |",
        "| --- | --- |",
        f"| 5xx answers (webhook deliveries included) | {len(result.server_errors)} |",
        f"| requests with no answer | {len(result.unanswered)} |",
        f"| answers meant for another request | {len(result.crossed)} |",
        f"| money: Paid (GL) = ledger = Stripe, per bill ({money.bills} bills paid) | "
        f"{'exact' if not money.problems else f'{len(money.problems)} differ'}: "
        f"{_money(money.paid_gl_cents)} = {_money(money.ledger_cents)} = "
        f"{_money(money.stripe_cents)} |",
        f"| money: Stripe payments, refunds; ledger entries, of them twice | {money.payments}, "
        f"{money.refunds}; {money.ledger_entries}, {money.duplicates} |",
        f"| money: payments refunded beyond their amount | {money.over_refunded} |",
        f"| Clio webhook deliveries: delivered (of them after the sandbox's retry), given up | "
        f"{result.clio_delivered} ({result.clio_retried}), {len(result.clio_lost)} |",
        f"| bills changed in Clio whose last change shows (webhooks only, no sync) | "
        f"{result.clio_bills - len(result.clio_behind)} of {result.clio_bills} |",
    ]
    if result.memory_before_mb is not None and result.memory_after_mb is not None:
        growth = result.memory_growth_mb or 0.0
        verdict = (
            ""
            if not check_memory
            else (
                " (limit 50 MB: ok)"
                if growth < MEMORY_GROWTH_LIMIT_MB
                else " (limit 50 MB: FAILED)"
            )
        )
        lines.append(
            f"| stack memory (RSS, whole process tree): after warm-up, after the run, peak | "
            f"{result.memory_before_mb:.0f} MB, {result.memory_after_mb:.0f} MB "
            f"({growth:+.1f} MB{verdict}), {result.memory_peak_mb or 0:.0f} MB |"
        )
    if result.before is not None and result.after is not None:
        warm = result.warm_up
        if warm is not None:
            lines += [
                "",
                f"Memory part by part (RSS), after a warm-up of {warm.seconds:.0f} s "
                f"({', '.join(warm.steps)}; "
                + (
                    "until no pool had changed and the workers' memory had held still for 10 s)"
                    if warm.settled
                    else "it ended at its limit before every pool had held still)"
                )
                + " and after the run:",
            ]
        lines += [
            "",
            "| part | after warm-up | after the run | growth | what the growth is |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for part, was, now, what in memory_rows(result.before, result.after):
            lines.append(f"| {part} | {was:.0f} MB | {now:.0f} MB | {now - was:+.1f} MB | {what} |")
        lines.append(
            f"| **whole tree** | {result.before.total_mb:.0f} MB | {result.after.total_mb:.0f} MB "
            f"| **{result.after.total_mb - result.before.total_mb:+.1f} MB** | |"
        )
    return "\n".join(lines)


def write_docs(path: Path, table: str, command: str) -> None:
    """Replace the "Load test" section of docs/benchmarks.md (or add it), keeping the rest."""
    text = path.read_text() if path.exists() else ""
    section = (
        f"{DOCS_HEADING}\n\n"
        f"The latest `{command}` (bench/load.py): the local stack in a subprocess, clients as "
        "threads of another process, everything on 127.0.0.1.\n\n"
        f"{table}\n\n"
        "Reading the table:\n"
        "- Routes named by method and path are the API's own answers. `Stripe sandbox: ...` and "
        "`Clio sandbox: ...` are the clients' calls to the sandboxes (a payment, an ACH "
        "settlement, a resend, a bill change in Clio); the sandboxes deliver the webhooks those "
        "cause, and `POST /webhooks/...` rows are those deliveries as the sandboxes recorded them "
        "(`(duplicate)`: a resend of an event already delivered).\n"
        "- 4xx answers are expected: a checkout for more than is left to pay (422), a session a "
        "newer checkout on the same link expired (the sandbox's 409), a refund racing another "
        "(422), a Clio delivery throttled while every worker of its function was busy (429, "
        "retried by the sandbox as Clio retries; docs/local-stack.md).\n"
        "- Every request of the run counts, the warm-up's included: it runs beside the clients "
        "from the start (a schedule tick; then, once no worker is in its init, one Clio change "
        "per pre-started worker of the Clio webhook function, so each has served before memory "
        "is measured). A Clio delivery the sandbox got no answer to within its 5 s counts as "
        "no answer, even when its retry was delivered.\n"
        "- Latencies are the local stack's on a shared 2-core machine under this load, not "
        "Lambda's; the checks are the point.\n"
        "- Memory: the limit is on the whole tree's growth after the warm-up. Part by part, "
        "the stack's own process grows with the data the emulator and the sandboxes hold (as "
        "DynamoDB and the services would; its kept state grows with it), a pool grows by "
        "whole workers up to its concurrency (the warm-up brings each to what the run needs), "
        "and a leak would show as the same workers growing with the invocations they serve.\n"
    )
    # Between its own markers, as make bench's sections are, so neither erases the other.
    begin, end = "<!-- load: begin -->", "<!-- load: end -->"
    block = f"{begin}\n{section.strip()}\n{end}"
    if begin in text and end in text:
        before, _, rest = text.partition(begin)
        _, _, after = rest.partition(end)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
