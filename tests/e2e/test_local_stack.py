"""The local stack as a runtime, over HTTP: its controls (`/_local/`) answer only to the local
admin token (or a firm's local sign-in for that firm's outbox), and its functions are isolated
from each other as Lambda isolates them."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.e2e.test_payments import send_bills

pytestmark = pytest.mark.e2e


def _error_shape(answer: requests.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "field" in body["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_local/outbox"),
        ("GET", "/_local/stats"),
        ("POST", "/_local/tick"),
        ("POST", "/_local/firms/someone/payment-accounts"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer not-the-token", "Basic abc"])
def test_given_no_admin_token_when_calling_a_local_control_then_it_is_refused_401(
    local_stack: Any, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    answer = requests.request(method, f"{local_stack.api_url}{path}", headers=headers, timeout=30)

    _error_shape(answer, 401, "unauthenticated")
    assert local_stack.admin_token not in answer.text


def test_given_a_firms_sign_in_when_onboarding_or_ticking_then_it_is_refused_403(
    local_stack: Any,
) -> None:
    headers = {"Authorization": "Bearer dev-demo"}

    onboard = requests.post(
        f"{local_stack.api_url}/_local/firms/demo/payment-accounts", headers=headers, timeout=30
    )
    tick = requests.post(f"{local_stack.api_url}/_local/tick", headers=headers, timeout=30)

    _error_shape(onboard, 403, "forbidden")
    _error_shape(tick, 403, "forbidden")


def test_given_no_token_when_asking_for_health_then_it_answers_with_the_process_tree(
    local_stack: Any,
) -> None:
    answer = requests.get(f"{local_stack.api_url}/_local/health", timeout=30)

    assert answer.status_code == 200
    health = answer.json()
    assert health["ok"] is True
    assert health["pid"] == local_stack.process.pid
    assert health["pids"] == [health["pid"], *health["worker_pids"]]
    assert health["worker_pids"], "the demo firm's start-up ran functions in workers"


def test_given_the_admin_token_when_reading_stats_then_each_function_lists_its_workers(
    local_stack: Any,
) -> None:
    answer = local_stack.control("GET", "/_local/stats")

    assert answer.status_code == 200, answer.text
    functions = answer.json()["functions"]
    api = functions["ApiFunction"]
    assert api["memory_mb"] == 512 and api["timeout_seconds"] == 29
    assert api["invocations"] >= 1
    assert all(w["pid"] != local_stack.process.pid for w in api["workers"])
    assert set(functions) >= {"ApiFunction", "PayFunction", "SendEnvelopeFunction"}


def test_given_two_firms_emails_when_each_reads_the_outbox_with_its_sign_in_then_it_sees_its_own(
    new_firm: Any, local_stack: Any
) -> None:
    first, first_clio = new_firm()
    second, second_clio = new_firm()
    send_bills(first, first_clio, [{"total_cents": 10_000}])
    send_bills(second, second_clio, [{"total_cents": 20_000}])

    def outbox_of(firm_id: str) -> list[dict[str, Any]]:
        answer = requests.get(
            f"{local_stack.api_url}/_local/outbox",
            headers={"Authorization": f"Bearer dev-{firm_id}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        mails: list[dict[str, Any]] = answer.json()
        return mails

    everything = {m["to"][0] for m in local_stack.outbox()}
    assert {f"{first_clio.account}@client.example", f"{second_clio.account}@client.example"} <= (
        everything
    )
    assert [m["to"] for m in outbox_of(first.firm_id)] == [[f"{first_clio.account}@client.example"]]
    assert [m["to"] for m in outbox_of(second.firm_id)] == [
        [f"{second_clio.account}@client.example"]
    ]
    assert outbox_of("a-firm-with-no-mail") == []


def test_given_pay_pages_and_settings_read_at_once_then_every_answer_is_the_one_asked_for(
    new_firm: Any, local_stack: Any
) -> None:
    """Powertools keeps the current event on a class attribute shared by every resolver of a
    process: with the API and the pay page in one process, a pay page asked for as JSON came
    back as HTML while settings were being read."""
    firm, clio = new_firm()
    client, _, _ = send_bills(firm, clio, [{"total_cents": 12_345}])
    wrong: list[str] = []
    lock = threading.Lock()

    def answered_as_asked(kind: int, session: requests.Session) -> tuple[bool, str]:
        if kind == 0:
            answer = session.get(f"{local_stack.api_url}/settings", timeout=60)
            check = lambda: "templates" in answer.json()  # noqa: E731
        elif kind == 1:
            answer = session.get(client.pay_url, headers={"Accept": "application/json"}, timeout=60)
            check = lambda: answer.json()["total_cents"] == 12_345  # noqa: E731
        else:
            answer = session.get(client.pay_url, timeout=60)
            check = lambda: answer.headers["Content-Type"].startswith("text/html")  # noqa: E731
        try:
            ok = answer.status_code == 200 and bool(check())
        except (ValueError, KeyError):
            ok = False
        return ok, f"{answer.request.url}: {answer.status_code} {answer.text[:80]}"

    def read(n: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer dev-{firm.firm_id}"
        for k in range(12):
            ok, what = answered_as_asked((n + k) % 3, session)
            if not ok:
                with lock:
                    wrong.append(what)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert wrong == []
