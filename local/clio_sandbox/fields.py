"""Clio's `fields` query parameter for the sandbox: parsing it, and the schemas it checks against.

Clio answers only `id` and `etag` when `fields` is absent, allows one level of nesting in braces
(`client{id,name}`), gives a nested resource its default fields when it is named without braces,
and answers 400 for an unknown field or a second level of nesting. The sandbox does the same so
that a typo in the client's field list fails in tests rather than in production.
"""

from __future__ import annotations

from dataclasses import dataclass


class FieldsError(ValueError):
    """The `fields` string is malformed or names a field the resource does not have."""


@dataclass(frozen=True)
class NestedSchema:
    fields: frozenset[str]
    defaults: tuple[str, ...]
    many: bool = False  # an array of records (e.g. `matters`) rather than one record


@dataclass(frozen=True)
class Schema:
    name: str
    scalars: frozenset[str]
    nested: dict[str, NestedSchema]
    defaults: tuple[str, ...] = ("id", "etag")


# A field list: each top-level name, with the names asked inside its braces (None = no braces).
FieldSpec = list[tuple[str, tuple[str, ...] | None]]

CONTACT = NestedSchema(
    fields=frozenset(
        {
            "id",
            "etag",
            "name",
            "first_name",
            "last_name",
            "type",
            "primary_email_address",
            "initials",
            "is_client",
            "created_at",
            "updated_at",
        }
    ),
    defaults=("id", "etag"),
)
ADDRESS = NestedSchema(
    fields=frozenset(
        {"id", "etag", "name", "primary", "street", "city", "province", "postal_code", "country"}
    ),
    defaults=("id", "etag"),
)
MATTER = NestedSchema(
    fields=frozenset(
        {
            "id",
            "etag",
            "display_number",
            "number",
            "description",
            "status",
            "client_id",
            "created_at",
            "updated_at",
        }
    ),
    defaults=("id", "etag"),
    many=True,
)
CURRENCY = NestedSchema(fields=frozenset({"id", "etag", "code", "sign"}), defaults=("id", "etag"))
USER = NestedSchema(fields=frozenset({"id", "etag", "name"}), defaults=("id", "etag"))

BILL = Schema(
    name="Bill",
    scalars=frozenset(
        {
            "id",
            "etag",
            "number",
            "subject",
            "memo",
            "purchase_order",
            "state",
            "kind",
            "type",
            "issued_at",
            "due_at",
            "start_at",
            "end_at",
            "created_at",
            "updated_at",
            "paid_at",
            "last_sent_at",
            "total",
            "due",
            "paid",
            "balance",
            "pending",
            "credits_issued",
            "sub_total",
            "tax_sum",
            "tax_rate",
            "secondary_tax_rate",
            "can_update",
            "shared",
            "available_state_transitions",
        }
    ),
    nested={
        "client": CONTACT,
        "client_addresses": ADDRESS,
        "matters": MATTER,
        "currency": CURRENCY,
        "user": USER,
    },
)

WEBHOOK = Schema(
    name="Webhook",
    scalars=frozenset(
        {
            "id",
            "etag",
            "url",
            "fields",
            "shared_secret",
            "model",
            "status",
            "events",
            "expires_at",
            "created_at",
            "updated_at",
        }
    ),
    nested={"user": USER},
    # Unlike bills, webhook answers carry every field unless `fields` narrows them, so the
    # create answer always shows the shared secret the subscriber needs.
    defaults=(
        "id",
        "etag",
        "url",
        "fields",
        "shared_secret",
        "model",
        "status",
        "events",
        "expires_at",
        "created_at",
        "updated_at",
    ),
)

# Account_base: the Clio account (the firm) a user belongs to, nested in User.
ACCOUNT = NestedSchema(
    fields=frozenset({"id", "etag", "name", "state", "created_at", "updated_at"}),
    defaults=("id", "etag"),
)

USER_SCHEMA = Schema(
    name="User",
    scalars=frozenset({"id", "etag", "name", "first_name", "last_name", "email"}),
    nested={"account": ACCOUNT},
)


def parse_fields(raw: str | None, schema: Schema) -> FieldSpec:
    """Parse `fields` against `schema`; no value means the schema's defaults."""
    if raw is None or raw.strip() == "":
        return [(name, None) for name in schema.defaults]
    spec: FieldSpec = []
    i, n = 0, len(raw)
    while i < n:
        j = i
        while j < n and raw[j] not in ",{}":
            j += 1
        name = raw[i:j].strip()
        if not name:
            raise FieldsError(f"malformed fields parameter near position {i}")
        inner: tuple[str, ...] | None = None
        if j < n and raw[j] == "{":
            close = raw.find("}", j + 1)
            if close == -1:
                raise FieldsError(f"unclosed brace after {name!r} in fields")
            body = raw[j + 1 : close]
            if "{" in body:
                raise FieldsError(f"only one level of nested fields is allowed, near {name!r}")
            inner = tuple(part.strip() for part in body.split(","))
            if any(not part for part in inner):
                raise FieldsError(f"malformed nested fields in {name!r}")
            j = close + 1
        elif j < n and raw[j] == "}":
            raise FieldsError(f"unexpected '}}' in fields near {name!r}")
        _check(name, inner, schema)
        spec.append((name, inner))
        if j < n and raw[j] != ",":
            raise FieldsError(f"expected ',' after {name!r} in fields")
        i = j + 1
    return spec


def _check(name: str, inner: tuple[str, ...] | None, schema: Schema) -> None:
    nested = schema.nested.get(name)
    if nested is None:
        if name not in schema.scalars:
            raise FieldsError(f"Invalid field: {name!r} is not a field of {schema.name}")
        if inner is not None:
            raise FieldsError(f"Invalid field: {name!r} of {schema.name} has no nested fields")
        return
    for sub in inner or ():
        if sub not in nested.fields:
            raise FieldsError(f"Invalid field: {sub!r} is not a field of {name!r}")


def nested_names(spec_inner: tuple[str, ...] | None, nested: NestedSchema) -> tuple[str, ...]:
    return spec_inner if spec_inner is not None else nested.defaults
