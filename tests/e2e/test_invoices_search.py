"""The invoices list searched, sorted and overdue (L5) through the real local stack: the API's
`q`, `sort` and `overdue`, cursor paging of a sorted search, and bad values refused in the
api.md error shape."""

from __future__ import annotations

import time
from datetime import date, timedelta

PEOPLE = [
    # number, client, matter, total, due in days from today (None: no due date), state
    ("INV-10001", "Priya Raman", "00001-Raman", 30_000, -10, "awaiting_payment"),
    ("INV-10002", "Acme Ltd", "00002-Acme", 10_000, 5, "awaiting_payment"),
    ("INV-10003", "Émile Zola", "00003-Zola", 50_000, -40, "awaiting_payment"),
    ("INV-10004", "Acme Holdings", "00004-Acme", 20_000, -3, "paid"),
    ("TR-10005", "Priya Raman", "00001-Raman", 40_000, None, "awaiting_payment"),
    ("INV-10006", "Bob Stone", "00006-Stone", 12_500, -1, "awaiting_payment"),
    ("INV-10007", "Acme Ltd", "00002-Acme", 90_000, 30, "draft"),
]


def seed(new_firm):
    firm, clio = new_firm()
    today = date.today()
    made = {}
    for number, name, matter, total, due, state in PEOPLE:
        body = {
            "number": number,
            "total_cents": total,
            "state": state,
            "client": {"name": name, "email": "ap@client.example"},
            "matter": {"display_number": matter, "description": "Matter"},
        }
        if due is not None:
            body["due_at"] = (today + timedelta(days=due)).isoformat()
        made[number] = clio.create_bill(**body)
    firm.sync_now()
    return firm, made


def numbers(firm, **params) -> list[str]:
    found, cursor = [], None
    while True:
        query = {**params, "page_size": 2}
        if cursor:
            query["cursor"] = cursor
        answer = firm.get("/invoices", **query)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += [i["number"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def test_search_sort_and_overdue_over_the_api(new_firm):
    firm, _ = seed(new_firm)

    # Sorted, every page by cursor (the default states: awaiting payment and paid).
    assert numbers(firm, sort="due_at") == [
        "INV-10003",
        "INV-10001",
        "INV-10004",
        "INV-10006",
        "INV-10002",
        "TR-10005",
    ]
    # Amount is Outstanding (Clio): the bill paid in Clio owes nothing.
    assert numbers(firm, sort="-amount") == [
        "INV-10003",
        "TR-10005",
        "INV-10001",
        "INV-10006",
        "INV-10002",
        "INV-10004",
    ]
    # Client A to Z, accents ignored; ties by Clio id.
    assert numbers(firm, sort="client") == [
        "INV-10004",
        "INV-10002",
        "INV-10006",
        "INV-10003",
        "INV-10001",
        "TR-10005",
    ]

    # Search: the start of a client's name, a bill number or a matter, any case or accent.
    assert sorted(numbers(firm, q="priya")) == ["INV-10001", "TR-10005"]
    assert numbers(firm, q="emile") == ["INV-10003"]
    assert numbers(firm, q="tr-") == ["TR-10005"]
    assert numbers(firm, q="00002-ac") == ["INV-10002"]  # the draft is not in these states
    assert numbers(firm, q="acme", sort="-amount") == ["INV-10002", "INV-10004"]
    assert numbers(firm, q="acme", states="draft") == ["INV-10007"]
    page = firm.get("/invoices", q="  ACME  ", sort="amount").json()
    assert (page["q"], page["sort"], page["overdue"]) == ("acme", "amount", False)

    # Overdue: awaiting payment, a balance, due before today; oldest due first.
    assert numbers(firm, overdue="true") == ["INV-10003", "INV-10001", "INV-10006"]
    assert numbers(firm, overdue="true", q="priya") == ["INV-10001"]
    assert numbers(firm, overdue="true", states="paid") == []


def test_bad_sort_search_or_cursor_is_a_4xx_in_the_error_shape(new_firm):
    firm, _ = seed(new_firm)
    for params in ({"sort": "size"}, {"sort": "-"}, {"q": "x" * 101}, {"overdue": "maybe"}):
        answer = firm.get("/invoices", **params)
        assert answer.status_code in (400, 422), (params, answer.text)
        error = answer.json()["error"]
        assert error["code"] and error["message"]
    first = firm.get("/invoices", sort="amount", page_size=2).json()
    other = firm.get("/invoices", sort="-amount", cursor=first["next_cursor"])
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "unknown_cursor"


def eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_word_start_search_and_a_renamed_client_over_the_api(new_firm):
    firm, clio = new_firm()
    made = {}
    for number, name in (
        ("INV-20001", "John Smith"),
        ("INV-20002", "Acme Ltd"),
        ("INV-20003", "Zoë Brontë-Hale"),
        ("INV-20004", "Smithers & Co"),
    ):
        made[number] = clio.create_bill(
            number=number, client={"name": name, "email": "ap@client.example"}
        )
    firm.sync_now()

    # The start of any word of the client's name, any case or accent.
    assert numbers(firm, q="smith") == ["INV-20004", "INV-20001"]
    assert numbers(firm, q="ltd") == ["INV-20002"]
    assert numbers(firm, q="acme l") == ["INV-20002"]
    assert numbers(firm, q="BRONTË") == ["INV-20003"]
    assert numbers(firm, q="hale") == ["INV-20003"]
    assert numbers(firm, q="co", sort="client") == ["INV-20004"]
    assert numbers(firm, q="mith") == []  # inside a word: not a word start
    assert numbers(firm, q="inv-2000") == ["INV-20004", "INV-20003", "INV-20002", "INV-20001"]

    # John Smith's bill now bills Mary Carter; the sync brings it (no webhook).
    clio.change_bill(made["INV-20001"]["id"], client_name="Mary Carter", webhooks=False)
    firm.sync_now()
    assert numbers(firm, q="carter") == ["INV-20001"]
    assert numbers(firm, q="smith") == ["INV-20004"]
    # And then Ann Lee's, through Clio's webhook.
    clio.change_bill(made["INV-20001"]["id"], client_name="Ann Lee")
    assert eventually(lambda: numbers(firm, q="lee") == ["INV-20001"])
    assert numbers(firm, q="carter") == []
    # Paid in Clio: found among paid bills, by the same word.
    clio.change_bill(made["INV-20001"]["id"], state="paid", webhooks=False)
    firm.sync_now()
    assert numbers(firm, q="lee", states="paid") == ["INV-20001"]
    assert numbers(firm, q="lee", states="awaiting_payment") == []
