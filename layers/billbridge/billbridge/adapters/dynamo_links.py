"""Payment link items of the app table (implements services.ports.PaymentLinkRepository).
See docs/data-model.md, "Payment link"."""

from __future__ import annotations

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import (
    DynamoRepository,
    Item,
    cancellation_codes,
    firm_pk,
    from_item,
    iso_utc,
    require_iso,
    to_item,
)
from billbridge.domain.payment_links import PaymentLink, bill_set_key

CONDITION_FAILED = "ConditionalCheckFailed"


def link_sk(link_id: str) -> str:
    return f"PLINK#{link_id}"


def bill_set_sk(bill_ids: tuple[int, ...]) -> str:
    return f"PLINKSET#{bill_set_key(bill_ids)}"


def token_pk(token_hash: str) -> str:
    return f"PAYTOKEN#{token_hash}"


def _link_from_item(firm_id: str, item: Item) -> PaymentLink:
    data = from_item(item)
    return PaymentLink(
        id=str(data["link_id"]),
        firm_id=firm_id,
        bill_ids=tuple(int(i) for i in data.get("bill_ids") or []),
        created_at=require_iso(data["created_at"]),
    )


class DynamoPaymentLinkRepository(DynamoRepository):
    def get(self, firm_id: str, link_id: str) -> PaymentLink | None:
        item = self._get_item(firm_pk(firm_id), link_sk(link_id))
        return _link_from_item(firm_id, item) if item else None

    def for_bills(self, firm_id: str, bill_ids: tuple[int, ...]) -> PaymentLink | None:
        found = self._get_item(firm_pk(firm_id), bill_set_sk(bill_ids))
        if found is None:
            return None
        return self.get(firm_id, str(from_item(found)["link_id"]))

    def create(self, link: PaymentLink, token_hash: str) -> PaymentLink:
        """Record a new link for its set of bills, or answer the one a concurrent send made."""
        firm = firm_pk(link.firm_id)
        common = {"link_id": link.id, "created_at": iso_utc(link.created_at)}
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": firm,
                            "sk": bill_set_sk(link.bill_ids),
                            "type": "payment_link_set",
                            **common,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": firm,
                            "sk": link_sk(link.id),
                            "type": "payment_link",
                            "bill_ids": [int(i) for i in link.bill_ids],
                            "token_hash": token_hash,
                            **common,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    # The pay page finds its link from the token's hash alone (no firm login).
                    "Item": to_item(
                        {
                            "pk": token_pk(token_hash),
                            "sk": "PAYTOKEN",
                            "type": "payment_token",
                            "firm_id": link.firm_id,
                            **common,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        try:
            self._transact(items)
        except ClientError as exc:
            if CONDITION_FAILED not in cancellation_codes(exc):
                raise
            existing = self.for_bills(link.firm_id, link.bill_ids)
            if existing is None:
                raise
            return existing
        return link

    def by_token_hash(self, token_hash: str) -> tuple[str, str] | None:
        """(firm_id, link_id) of the link whose token hashes to this, for the pay page."""
        item = self._get_item(token_pk(token_hash), "PAYTOKEN")
        if item is None:
            return None
        data = from_item(item)
        return str(data["firm_id"]), str(data["link_id"])
