from datetime import timedelta

from billbridge.domain.errors import ClioUnreachable
from billbridge.services.connect import WEBHOOK_LIFETIME, WebhookSubscriptions
from tests.fakes import T0, FakeClio, FakeConnections, connection

FIRM = "firm-a"


class RecordingClio(FakeClio):
    def __init__(self, renew_fails: bool = False) -> None:
        super().__init__()
        self.created: list[str] = []
        self.renewed: list[int] = []
        self.activated: list[int] = []
        self.renew_fails = renew_fails

    def create_bill_webhook(self, url, *, events=(), expires_at):
        self.created.append(url)
        return {"id": 77, "shared_secret": "fresh-secret", "status": "pending"}

    def renew_webhook(self, webhook_id, expires_at):
        if self.renew_fails:
            raise ClioUnreachable("Clio answered 404: no such webhook")
        self.renewed.append(webhook_id)
        return {"id": webhook_id}

    def activate_webhook(self, webhook_id, shared_secret):
        self.activated.append(webhook_id)


def _keeper(base_url="https://api.example.com/prod"):
    conns = FakeConnections()
    return WebhookSubscriptions(
        connections=conns, public_api_base_url=base_url, clock=lambda: T0
    ), conns


def test_given_no_subscription_then_one_is_created_for_the_firms_address_and_activated():
    keeper, conns = _keeper()
    conns.save(connection(FIRM))
    clio = RecordingClio()
    kept = keeper.keep(conns.get(FIRM), clio)
    assert clio.created == ["https://api.example.com/prod/webhooks/clio?firm_id=firm-a"]
    assert clio.activated == [77]
    assert kept.webhook_id == 77 and kept.webhook_expires_at == T0 + WEBHOOK_LIFETIME
    assert conns.get(FIRM).webhook_secret == "fresh-secret"


def test_given_a_subscription_lapsing_within_a_week_then_it_is_renewed():
    keeper, conns = _keeper()
    conns.save(
        connection(
            FIRM, webhook_id=5, webhook_secret="s", webhook_expires_at=T0 + timedelta(days=3)
        )
    )
    clio = RecordingClio()
    kept = keeper.keep(conns.get(FIRM), clio)
    assert clio.renewed == [5] and clio.created == []
    assert conns.get(FIRM).webhook_expires_at == T0 + WEBHOOK_LIFETIME == kept.webhook_expires_at


def test_given_a_fresh_subscription_then_clio_is_not_called():
    keeper, conns = _keeper()
    conns.save(
        connection(
            FIRM, webhook_id=5, webhook_secret="s", webhook_expires_at=T0 + timedelta(days=20)
        )
    )
    clio = RecordingClio()
    keeper.keep(conns.get(FIRM), clio)
    assert clio.renewed == [] and clio.created == []


def test_given_a_subscription_clio_no_longer_knows_then_a_new_one_replaces_it():
    keeper, conns = _keeper()
    conns.save(
        connection(
            FIRM, webhook_id=5, webhook_secret="s", webhook_expires_at=T0 + timedelta(days=1)
        )
    )
    clio = RecordingClio(renew_fails=True)
    keeper.keep(conns.get(FIRM), clio)
    assert conns.get(FIRM).webhook_id == 77 and conns.get(FIRM).webhook_secret == "fresh-secret"


def test_given_no_public_address_then_no_subscription_is_made():
    keeper, conns = _keeper(base_url="")
    conns.save(connection(FIRM))
    clio = RecordingClio()
    keeper.keep(conns.get(FIRM), clio)
    assert clio.created == [] and conns.get(FIRM).webhook_id is None


def test_given_tokens_refreshed_meanwhile_then_saving_the_subscription_keeps_them():
    keeper, conns = _keeper()
    stale = connection(FIRM, access_token="old")
    conns.save(stale.with_tokens("new-access", "new-refresh", T0 + timedelta(days=30)))
    keeper.keep(stale, RecordingClio())
    assert conns.get(FIRM).access_token == "new-access" and conns.get(FIRM).webhook_id == 77
