"""Connecting Clio (C1) on fakes: the state is single use, short lived, bound to the browser
and the user who started the connect; the connection records who was connected."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from billbridge.domain.connection import Region
from billbridge.domain.errors import InvalidInput, RuleViolation, Unauthenticated
from billbridge.domain.oauth_state import STATE_TTL, ConnectingUser
from billbridge.services.connect import ConnectService, WebhookSubscriptions
from tests.fakes import T0, FakeClio, FakeConnections, FakeConnectStates

KEY = b"s" * 32
USER = ConnectingUser("user-c1", "clerk@firm-c.example")


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    expires_at: Any


@dataclass
class OAuthClio(FakeClio):
    """Clio's OAuth side: each code approved by an account, and who_am_i for it."""

    codes: dict[str, str] = field(default_factory=dict)
    account: str | None = None

    def exchange_code(self, code: str) -> Any:
        self.account = self.codes.pop(code)  # single use, as Clio's codes are
        return Tokens(f"at-{self.account}", f"rt-{self.account}", T0 + timedelta(days=30))

    def who_am_i(self) -> dict[str, Any]:
        number = {"firm-c": 1, "victim-v": 2}[self.account or ""]
        return {
            "id": 100 + number,
            "name": f"{self.account} admin",
            "email": f"admin@{self.account}.example",
            "account": {"id": number, "name": f"{self.account} LLP"},
        }


class World:
    def __init__(self) -> None:
        self.now = T0
        self.connections = FakeConnections()
        self.states = FakeConnectStates()
        self.clio = OAuthClio()
        self.syncs: list[str] = []
        self.service = ConnectService(
            connections=self.connections,
            connect_states=self.states,
            state_key=KEY,
            oauth_client_for=lambda region: self.clio,
            request_sync=lambda firm, trigger: self.syncs.append(firm),
            webhooks=WebhookSubscriptions(connections=self.connections, public_api_base_url=None),
            clock=lambda: self.now,
        )

    def start(self, firm_id: str = "firm-c") -> tuple[str, str]:
        """The state in the authorize URL, and the browser's cookie."""
        start = self.service.authorize(firm_id, USER, Region.US)
        (state,) = parse_qs(urlsplit(start.authorize_url).query)["state"]
        return state, start.browser_secret

    def approve(self, account: str) -> str:
        code = f"code-{len(self.clio.codes)}-{account}"
        self.clio.codes[code] = account
        return code

    def callback(self, state: str, cookie: str | None, account: str):
        return self.service.complete(
            code=self.approve(account), state=state, error=None, browser_secret=cookie
        )


def test_given_a_connect_completed_then_who_was_connected_and_who_connected_it_are_kept():
    world = World()
    state, cookie = world.start()

    connection = world.callback(state, cookie, "firm-c")

    assert (connection.clio_account_id, connection.clio_account_name) == (1, "firm-c LLP")
    assert (connection.clio_user_id, connection.clio_user_email) == (101, "admin@firm-c.example")
    assert (connection.connected_by_user_id, connection.connected_by_email) == (
        "user-c1",
        "clerk@firm-c.example",
    )
    assert world.connections.get("firm-c") == connection and world.syncs == ["firm-c"]


def test_given_another_browser_then_refused_and_the_firms_own_browser_can_still_finish():
    world = World()
    state, cookie = world.start()

    with pytest.raises(RuleViolation) as refused:
        world.callback(state, None, "victim-v")

    assert refused.value.code == "clio_connect_other_browser"
    assert world.connections.get("firm-c") is None
    assert world.callback(state, cookie, "firm-c").clio_account_name == "firm-c LLP"


def test_given_a_used_state_then_a_second_callback_is_refused_even_from_the_same_browser():
    world = World()
    state, cookie = world.start()
    world.callback(state, cookie, "firm-c")

    with pytest.raises(RuleViolation) as refused:
        world.callback(state, cookie, "victim-v")

    assert refused.value.code == "clio_connect_used"
    assert world.connections.get("firm-c").clio_account_name == "firm-c LLP"


def test_given_a_state_older_than_its_lifetime_then_refused():
    world = World()
    state, cookie = world.start()
    world.now = T0 + STATE_TTL + timedelta(seconds=1)

    # An expired state proves no connect of ours: a 401, like a bad webhook signature.
    with pytest.raises(Unauthenticated) as refused:
        world.callback(state, cookie, "firm-c")

    assert refused.value.field == "state" and world.connections.get("firm-c") is None


def test_given_clio_denied_then_the_state_is_used_up_and_nothing_connects():
    world = World()
    state, cookie = world.start()

    with pytest.raises(InvalidInput):
        world.service.complete(code=None, state=state, error="access_denied", browser_secret=cookie)
    with pytest.raises(RuleViolation):
        world.callback(state, cookie, "firm-c")

    assert world.connections.get("firm-c") is None
