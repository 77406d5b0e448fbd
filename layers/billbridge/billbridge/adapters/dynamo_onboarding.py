"""The onboarding checklist's marks (implements services.ports.OnboardingRepository): one item
per firm, `FIRM#{id}` / `ONBOARDING`, a map `marks` of step id to `{"mark", "at"}`. Each mark
is one UpdateItem of its own map key, so two people marking different steps at once both
land (docs/data-model.md, "Onboarding checklist")."""

from __future__ import annotations

from datetime import datetime

from billbridge.adapters.dynamo_common import DynamoRepository, firm_pk, from_item, iso_utc, to_attr

ONBOARDING_SK = "ONBOARDING"


class DynamoOnboardingRepository(DynamoRepository):
    def marks(self, firm_id: str) -> dict[str, str]:
        item = self._get_item(firm_pk(firm_id), ONBOARDING_SK)
        if item is None:
            return {}
        marks = from_item(item).get("marks") or {}
        return {str(k): str(v.get("mark")) for k, v in marks.items() if isinstance(v, dict)}

    def mark(self, firm_id: str, step: str, mark: str, at: datetime) -> None:
        # The map is made by the first mark; a later one sets only its own key.
        key = {"pk": to_attr(firm_pk(firm_id)), "sk": to_attr(ONBOARDING_SK)}
        value = to_attr({"mark": mark, "at": iso_utc(at)})
        self._retrying(
            lambda: self._write(
                "update_item",
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #type = :type, marks = if_not_exists(marks, :empty)",
                ExpressionAttributeNames={"#type": "type"},
                ExpressionAttributeValues={":type": to_attr("onboarding"), ":empty": {"M": {}}},
            )
        )
        self._retrying(
            lambda: self._write(
                "update_item",
                TableName=self._table,
                Key=key,
                UpdateExpression="SET marks.#step = :value",
                ExpressionAttributeNames={"#step": step},
                ExpressionAttributeValues={":value": value},
            )
        )
