"""Seed data for the Clio sandbox: the deterministic `demo` firm the local stack starts with, and
bulk bills for benchmarks and paging tests.

Seeding fires no webhooks (a firm importing its history does not notify anyone either), which is
also what keeps 20,000 bills a fraction of a second.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from local.clio_sandbox.state import SandboxState

# (name, email); the last client has no email address on file, a case the product must handle.
DEMO_CLIENTS: tuple[tuple[str, str | None], ...] = (
    ("Acme Holdings LLC", "billing@acme-holdings.example"),
    ("Maria Gonzalez", "maria.gonzalez@example.com"),
    ("Northwind Traders Inc", "accounts@northwind.example"),
    ("James Okafor", "james.okafor@example.com"),
    ("Priya Raman", "priya.raman@example.com"),
    ("Blue Harbor Trust", None),
)
# (client index, display number, description)
DEMO_MATTERS: tuple[tuple[int, str, str], ...] = (
    (0, "00101-Acme", "Supply contract dispute"),
    (0, "00102-Acme", "Trademark registration"),
    (1, "00103-Gonzalez", "Residential purchase"),
    (1, "00104-Gonzalez", "Estate planning"),
    (2, "00105-Northwind", "Employment claim defence"),
    (2, "00106-Northwind", "Lease renewal"),
    (3, "00107-Okafor", "Personal injury claim"),
    (4, "00108-Raman", "Immigration petition"),
    (4, "00109-Raman", "Business formation"),
    (5, "00110-BlueHarbor", "Trust administration"),
)
# 40 states: mostly unpaid and paid, every other state present a few times.
DEMO_STATES: tuple[str, ...] = (
    "awaiting_payment",
    "paid",
    "awaiting_payment",
    "paid",
    "draft",
    "awaiting_payment",
    "paid",
    "awaiting_approval",
    "awaiting_payment",
    "void",
    "paid",
    "awaiting_payment",
    "deleted",
    "awaiting_payment",
    "paid",
    "awaiting_payment",
    "paid",
    "draft",
    "awaiting_payment",
    "paid",
    "awaiting_payment",
    "void",
    "paid",
    "awaiting_payment",
    "awaiting_approval",
    "paid",
    "awaiting_payment",
    "deleted",
    "awaiting_payment",
    "paid",
    "awaiting_payment",
    "paid",
    "awaiting_payment",
    "draft",
    "paid",
    "awaiting_payment",
    "awaiting_payment",
    "paid",
    "awaiting_payment",
    "paid",
)
DEMO_TOTALS_CENTS: tuple[int, ...] = (
    125000,
    48050,
    310000,
    9999,
    75025,
    220000,
    1500000,
    64000,
    33333,
    890000,
)


def seed_demo(state: SandboxState, account: str = "demo") -> list[int]:
    """The demo firm's bills: 40 of both kinds and every state, same ids and numbers each run
    of a fresh sandbox."""
    ids: list[int] = []
    first_issue = date(2026, 1, 6)
    with state.lock:
        for i, bill_state in enumerate(DEMO_STATES):
            client_index, display_number, description = DEMO_MATTERS[i % len(DEMO_MATTERS)]
            name, email = DEMO_CLIENTS[client_index]
            trust = i % 7 == 3
            total = DEMO_TOTALS_CENTS[(i * 3) % len(DEMO_TOTALS_CENTS)] + i * 1000
            balance = None
            if bill_state == "awaiting_payment" and i % 3 == 0:
                balance = total * 2 // 5  # a partial payment is on file
            issued = first_issue + timedelta(days=8 * i)
            due = issued + timedelta(days=14 if i % 4 == 0 else 30)
            sent = (
                datetime(issued.year, issued.month, issued.day, 16, 30, tzinfo=UTC)
                if bill_state in ("awaiting_payment", "paid") and i % 2 == 0
                else None
            )
            bill = state.create_bill(
                account=account,
                kind="trust_request" if trust else "invoice",
                total_cents=total,
                state=bill_state,
                client_name=name,
                client_email=email,
                # Every sixth bill is a client-level bill, not tied to one matter.
                matter_display_number=None if i % 6 == 5 else display_number,
                matter_description=description,
                balance_cents=balance,
                issued_at=None if bill_state == "draft" else issued,
                due_at=None if bill_state == "draft" else due,
                subject=f"{'Trust request' if trust else 'Legal services'}: {description}",
                last_sent_at=sent,
                notify=False,
            )
            ids.append(bill.id)
    return ids


_FIRST = (
    "Ava",
    "Noah",
    "Mia",
    "Liam",
    "Zoe",
    "Omar",
    "Lena",
    "Ravi",
    "Sara",
    "Tom",
    "Yuki",
    "Ines",
)
_LAST = (
    "Smith",
    "Nguyen",
    "Garcia",
    "Kowalski",
    "Haddad",
    "Osei",
    "Larsen",
    "Rossi",
    "Chen",
    "Murphy",
    "Silva",
    "Novak",
)
_COMPANY = ("Harbor", "Summit", "Cedar", "Granite", "Beacon", "Willow", "Falcon", "Orchard")
_WEIGHTED_STATES = (
    ("awaiting_payment", 40),
    ("paid", 35),
    ("draft", 8),
    ("awaiting_approval", 5),
    ("void", 6),
    ("deleted", 6),
)


def seed_many(state: SandboxState, account: str, count: int, rng_seed: int = 0) -> list[int]:
    """`count` varied bills for `account`, reproducible for one (account, rng_seed)."""
    rng = random.Random(f"{account}:{rng_seed}")
    states = [name for name, _ in _WEIGHTED_STATES]
    weights = [weight for _, weight in _WEIGHTED_STATES]
    n_clients = max(3, min(count // 25 + 1, 500))
    clients: list[tuple[str, str | None]] = []
    for c in range(n_clients):
        if c % 3 == 2:
            name = f"{_COMPANY[c % len(_COMPANY)]} Partners {c} LLC"
        else:
            name = f"{_FIRST[c % len(_FIRST)]} {_LAST[(c // len(_FIRST)) % len(_LAST)]}{c}"
        email = None if c % 17 == 16 else f"client{c}@{account}.example"
        clients.append((name, email))
    start = date(2025, 1, 1)
    ids: list[int] = []
    with state.lock:
        for _ in range(count):
            c = rng.randrange(n_clients)
            name, email = clients[c]
            bill_state = rng.choices(states, weights)[0]
            total = rng.randrange(5_000, 2_500_000)
            balance = None
            if bill_state == "awaiting_payment" and rng.random() < 0.3:
                balance = rng.randrange(1, total)
            issued = start + timedelta(days=rng.randrange(0, 700))
            m = rng.randrange(2)
            bill = state.create_bill(
                account=account,
                kind="trust_request" if rng.random() < 0.12 else "invoice",
                total_cents=total,
                state=bill_state,
                client_name=name,
                client_email=email,
                matter_display_number=f"{c:05d}-{m}",
                matter_description=f"Matter {m + 1} for {name}",
                balance_cents=balance,
                issued_at=None if bill_state == "draft" else issued,
                due_at=None if bill_state == "draft" else issued + timedelta(days=30),
                notify=False,
            )
            ids.append(bill.id)
    return ids
