"""What the benchmarks share: ports, the in-process API on moto, seeded firms, counters of
DynamoDB calls, and the table of rows written into docs/benchmarks.md.

Everything runs in-process on moto with the Clio sandbox over HTTP. Each part runs in a
`mock_aws()` of its own, so one part's table size never slows another's.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
# No single wait in a benchmark may hang it: a loaded machine is slow, not stuck.
PATIENCE_SECONDS = float(os.environ.get("BENCH_PATIENCE_SECONDS", "900"))

Row = tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, done: Callable[[], bool], interval: float = 0.2) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark gave up waiting for {what}")
        time.sleep(interval)


def count(n: int) -> str:
    return f"{n:,}"


@dataclass
class DynamoCounter:
    """Counts the DynamoDB calls boto3's default session makes (the handlers' clients), split
    into writes of bills and the rest, and the time spent inside them."""

    calls: Counter[str] = field(default_factory=Counter)
    bill_writes: int = 0
    other_writes: int = 0
    items_read: int = 0
    seconds: float = 0.0

    def install(self) -> None:
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call.dynamodb", self._before)
        session.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, params: dict[str, Any], context: Any = None, **_: Any) -> None:
        name = model.name
        self.calls[name] += 1
        if isinstance(context, dict):
            context["bench_started"] = time.perf_counter()
        if name in WRITE_OPS:
            text = json.dumps(params, default=str)[:4000]
            if "BILL#" in text and "HEADER" not in text:
                self.bill_writes += 1
            else:
                self.other_writes += 1

    def _after(self, model: Any, parsed: Any = None, context: Any = None, **_: Any) -> None:
        began = context.get("bench_started") if isinstance(context, dict) else None
        if began is not None:
            self.seconds += time.perf_counter() - began
        if isinstance(parsed, dict):
            self.items_read += int(parsed.get("ScannedCount") or 0)
            if "Item" in parsed:
                self.items_read += 1
            for items in (parsed.get("Responses") or {}).values():
                self.items_read += len(items)

    def reset(self) -> None:
        self.calls.clear()
        self.bill_writes = self.other_writes = self.items_read = 0
        self.seconds = 0.0


@contextmanager
def aws(stepfunctions: bool = False) -> Iterator[DynamoCounter]:
    """A fresh mocked AWS whose DynamoDB calls are counted."""
    from moto import mock_aws

    from local.provision import FAKE_AWS_ENV

    # Each part gets the environment it sets (start_api's knobs included) and no other part's:
    # the sync's PDF_PREFETCH_PER_RUN=0 once left the prefetch part with nothing to fetch.
    saved = dict(os.environ)
    os.environ.update(FAKE_AWS_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    config: Any = {"stepfunctions": {"execute_state_machine": True}} if stepfunctions else None
    try:
        with mock_aws(config=config):
            # mock_aws replaces boto3's default session: count on the one the handlers will use.
            boto3.setup_default_session()
            counter = DynamoCounter()
            counter.install()
            yield counter
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_api(clio_url: str, lambda_mode: str, *, clio_webhooks: bool = False, **env: str) -> Any:
    """Inside `aws()`: the template's resources, the handlers' environment (plus `env`), and the
    local API Gateway on a free port. Answers (provisioned, api)."""
    from billbridge import bootstrap
    from local.apigw import LocalApiGateway
    from local.provision import provision

    port = free_port()
    provisioned = provision(
        api_base_url=f"http://127.0.0.1:{port}",
        clio_base_url=clio_url,
        lambda_mode=lambda_mode,
        clio_webhooks=clio_webhooks,
    )
    os.environ.update(provisioned.env)
    os.environ.update(env)
    bootstrap.reset()
    api = LocalApiGateway(provisioned.lambdas, port=port)
    api.start()
    return provisioned, api


def seed_spread(state: Any, account: str, n: int, offset: dict[str, float]) -> list[int]:
    """`n` varied bills, their Clio `updated_at` spread over the last 30 days (the sandbox's
    clock is moved while seeding), as a firm's bills are: an increment's overlap then re-reads
    only what changed lately, not the whole seed."""
    from local.clio_sandbox.seed import seed_many

    ids: list[int] = []
    chunks = max(1, n // 200)
    for chunk in range(chunks):
        offset["seconds"] = -30 * 86400 * (1 - chunk / chunks)
        size = n // chunks + (1 if chunk < n % chunks else 0)
        ids += seed_many(state, account, size, 11 + chunk)
    offset["seconds"] = 0.0
    return ids


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(share * len(ordered)) - 1)
    return ordered[rank]


# -- docs/benchmarks.md ----------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = ["| measure | result | against |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def write_section(name: str, text: str, doc: Path | None = None) -> None:
    """Replace section `name` of docs/benchmarks.md (between its markers) and keep the rest,
    so `make bench`, `make bench-large` and other benchmarks each own their part."""
    doc = doc or DOC
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    current = doc.read_text(encoding="utf-8") if doc.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = (current.rstrip() + "\n\n" + block).lstrip() + "\n"
    doc.write_text(updated, encoding="utf-8")


def read_parts(section: str, doc: Path | None = None) -> dict[str, str]:
    """The parts of `section` as the doc holds them (each between `<!-- SECTION PART: begin -->`
    and its end marker), by name, in the doc's order."""
    doc = doc or DOC
    current = doc.read_text(encoding="utf-8") if doc.exists() else ""
    found = re.search(
        re.escape(f"<!-- {section}: begin -->") + r"(.*?)" + re.escape(f"<!-- {section}: end -->"),
        current,
        re.DOTALL,
    )
    if found is None:
        return {}
    part = re.compile(
        re.escape(f"<!-- {section} ")
        + r"(?P<name>[\w-]+): begin -->\n(?P<text>.*?)\n"
        + re.escape(f"<!-- {section} ")
        + r"(?P=name): end -->",
        re.DOTALL,
    )
    return {m["name"]: m["text"].strip() for m in part.finditer(found[1])}


def write_parts(
    section: str, intro: str, texts: dict[str, str], order: list[str], doc: Path | None = None
) -> None:
    """Rewrite the parts named in `texts` of `section` and keep every other part as the doc
    holds it, so a part re-run alone (`python -m bench --only PART`) replaces its own rows and
    nothing else; the section is laid out in `order` (parts the order does not know last)."""
    kept = {**read_parts(section, doc), **texts}
    names = [n for n in order if n in kept] + [n for n in kept if n not in order]
    blocks = [
        f"<!-- {section} {n}: begin -->\n{kept[n].strip()}\n<!-- {section} {n}: end -->"
        for n in names
    ]
    write_section(section, "\n\n".join([intro.strip(), *blocks]), doc)


def add_member(table_name: str, firm: str, user_id: str) -> None:
    """A staff member of `firm` in the store, as sign-up or an invitation leaves one: a request
    signed in as them reads this record (accounts.current), as every real user's does."""
    from datetime import UTC, datetime

    from billbridge.adapters.dynamo_accounts import DynamoMembers
    from billbridge.domain.access import Role
    from billbridge.domain.accounts import Member, MemberStatus

    DynamoMembers(boto3.client("dynamodb"), table_name).add(
        Member(
            user_id=user_id,
            firm_id=firm,
            email=f"{user_id}@bench.example",
            role=Role.STAFF,
            status=MemberStatus.ACTIVE,
            created_at=datetime.now(UTC),
        )
    )


def call_invoices(
    handler: Any, spec: Any, route: Any, firm: str, query: str, user: str | None = None
) -> tuple[dict[str, Any], float]:
    """One `GET /invoices` through the API handler, as the gateway hands it over (a staff user's
    claims), and the calling thread's CPU seconds it took. Answers (the proxy answer, seconds).
    `user`: a member's user id (add_member), whose record the request reads as a real user's
    does; without it, the local stage's stand-in user, who has no record to read."""
    from local.apigw import proxy_event
    from local.lambdas import FakeContext

    event = proxy_event(
        route,
        "GET",
        "/invoices",
        query,
        {"Authorization": f"Bearer dev-{firm}"},
        b"",
        {},
        {"custom:firm_id": firm, "sub": user or f"dev-user-{firm}", "cognito:groups": "staff"},
    )
    began = time.thread_time()
    answer = handler(event, FakeContext(spec, "us-east-1", "123456789012"))
    spent = time.thread_time() - began
    assert answer["statusCode"] == 200, answer
    return answer, spent
