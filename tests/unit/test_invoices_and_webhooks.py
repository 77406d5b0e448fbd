import hashlib
import hmac
import json
from datetime import timedelta

import pytest

from billbridge.domain.bills import BillState, bill_from_clio
from billbridge.domain.errors import InvalidInput, NotFound, Unauthenticated
from billbridge.domain.settings import FirmSettings
from billbridge.services.clio_webhooks import ClioWebhookService
from billbridge.services.invoices import InvoicesService, encode_cursor
from tests.fakes import (
    T0,
    FakeBills,
    FakeConnections,
    FakeHeaders,
    FakeSettings,
    FakeSyncs,
    clio_bill,
    connection,
)

FIRM = "firm-a"


def _seed(bills: FakeBills, firm: str, states: dict[int, str]) -> None:
    records = [
        bill_from_clio(clio_bill(i, state=s), "https://app.clio.com") for i, s in states.items()
    ]
    bills.save_clio_bills(firm, records, T0)


def _service(bills, settings=None, sync_calls=None):
    sync_calls = sync_calls if sync_calls is not None else []

    def sync_on_view(firm_id, checkpoint):
        sync_calls.append(firm_id)
        return None, None  # as for a firm without Clio: the list still answers

    headers = FakeHeaders(settings or FakeSettings(), FakeSyncs())
    return InvoicesService(bills=bills, headers=headers, sync_on_view=sync_on_view)


def test_given_no_states_then_the_firms_default_filter_applies():
    bills = FakeBills()
    _seed(bills, FIRM, {1: "draft", 2: "awaiting_payment", 3: "paid", 4: "void"})
    page = _service(bills).list(FIRM, states=None, page_size=10, cursor=None)
    assert [s.bill.id for s in page.items] == [3, 2]
    settings = FakeSettings()
    settings.put(FIRM, FirmSettings(default_states=[BillState.VOID, BillState.DRAFT]))
    page = _service(bills, settings).list(FIRM, states=None, page_size=10, cursor=None)
    assert [s.bill.id for s in page.items] == [4, 1]


def test_given_pages_when_followed_then_each_bill_once_and_the_list_reports_no_sync_unconnected():
    bills = FakeBills()
    _seed(bills, FIRM, {i: "paid" for i in range(1, 101)})
    calls = []
    service = _service(bills, sync_calls=calls)
    seen, cursor = [], None
    while True:
        page = service.list(FIRM, states="paid", page_size=37, cursor=cursor)
        assert page.sync is None
        seen += [s.bill.id for s in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(range(100, 0, -1))
    assert calls and all(c == FIRM for c in calls)


@pytest.mark.parametrize("page_size", [0, 201, -3])
def test_given_page_size_out_of_range_then_invalid_input_names_it(page_size):
    with pytest.raises(InvalidInput) as error:
        _service(FakeBills()).list(FIRM, states=None, page_size=page_size, cursor=None)
    assert error.value.field == "page_size"


def test_given_a_cursor_of_another_listing_or_garbage_then_it_names_no_page():
    service = _service(FakeBills())
    other = encode_cursor(10, (BillState.VOID,))
    for cursor in (other, "!!!", "eyJ4Ijo1fQ", "0"):
        with pytest.raises(NotFound) as error:
            service.list(FIRM, states="paid", page_size=5, cursor=cursor)
        assert error.value.field == "cursor" and error.value.code == "unknown_cursor"


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _verify(secret: str, body: bytes, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(_sign(secret, body), signature)


def _webhooks():
    bills, conns = FakeBills(), FakeConnections()
    conns.save(connection(FIRM, webhook_id=42, webhook_secret="hook-secret"))
    service = ClioWebhookService(
        bills=bills,
        connections=conns,
        verify=_verify,
        clio_web_host_for=lambda c: "https://app.clio.com",
        clock=lambda: T0,
    )
    return service, bills


def _delivery(record, event="updated") -> bytes:
    payload = {"data": record, "meta": {"event": event, "webhook_id": 42}}
    return json.dumps(payload, default=str).encode()


def test_given_a_signed_update_when_delivered_twice_and_late_then_the_newest_version_stays():
    service, bills = _webhooks()
    newer = _delivery(clio_bill(9, state="paid", balance="0", updated=T0 + timedelta(hours=2)))
    older = _delivery(clio_bill(9, state="awaiting_payment", updated=T0 + timedelta(hours=1)))
    assert service.deliver(FIRM, newer, _sign("hook-secret", newer)).applied
    service.deliver(FIRM, newer, _sign("hook-secret", newer))
    late = service.deliver(FIRM, older, _sign("hook-secret", older))
    assert not late.applied
    assert bills.get(FIRM, 9).bill.state is BillState.PAID


def test_given_a_forged_signature_then_nothing_is_written():
    service, bills = _webhooks()
    body = _delivery(clio_bill(9))
    for signature in (None, "00" * 32, _sign("other-secret", body)):
        with pytest.raises(Unauthenticated):
            service.deliver(FIRM, body, signature)
    assert bills.items == {}


def test_given_a_deleted_event_then_the_bill_is_marked_deleted():
    service, bills = _webhooks()
    body = _delivery(clio_bill(9))
    service.deliver(FIRM, body, _sign("hook-secret", body))
    gone = _delivery({"id": 9}, event="deleted")
    assert service.deliver(FIRM, gone, _sign("hook-secret", gone)).applied
    assert bills.get(FIRM, 9).bill.state is BillState.DELETED


def test_given_an_unknown_firm_or_missing_firm_then_refused():
    service, _ = _webhooks()
    with pytest.raises(NotFound):
        service.deliver("firm-z", b"{}", "x")
    with pytest.raises(InvalidInput):
        service.deliver(None, b"{}", "x")


def test_given_a_signed_body_that_is_not_a_delivery_then_invalid_input():
    service, _ = _webhooks()
    body = b'{"nothing": 1}'
    with pytest.raises(InvalidInput):
        service.deliver(FIRM, body, _sign("hook-secret", body))


def test_given_the_default_list_then_the_firm_header_is_read_once_and_feeds_the_sync_on_view():
    bills = FakeBills()
    _seed(bills, FIRM, {1: "awaiting_payment", 2: "paid"})
    syncs, settings = FakeSyncs(), FakeSettings()
    headers = FakeHeaders(settings, syncs)
    given = []

    def sync_on_view(firm_id, checkpoint):
        given.append(checkpoint)
        return None, None

    service = InvoicesService(bills=bills, headers=headers, sync_on_view=sync_on_view)
    page = service.list(FIRM, states=None, page_size=10, cursor=None)

    assert [s.bill.id for s in page.items] == [2, 1]
    assert headers.reads == 1 and given == [syncs.checkpoint(FIRM)]
