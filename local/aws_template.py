"""The bridge from template.yaml to local AWS resources: it owns reading the SAM/CloudFormation
template and creating its DynamoDB tables and S3 buckets in a local or mocked AWS.

Tests and the local stack create tables only through `create_dynamodb_tables` and buckets only
through `create_s3_buckets`, so what they run against is what deploys: keys, indexes,
projections and TTL, bucket encryption, public access blocks and lifecycle rules all come from
the template, never from a hand-written copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"
TABLE_TYPE = "AWS::DynamoDB::Table"

# Short-form tag -> long-form key. `!Ref` and `!Condition` are not `Fn::` functions.
_SHORT_TAGS: dict[str, str] = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    **{
        f"!{name}": f"Fn::{name}"
        for name in (
            "GetAtt",
            "Sub",
            "If",
            "Equals",
            "Not",
            "And",
            "Or",
            "Select",
            "Split",
            "Join",
            "FindInMap",
            "ImportValue",
            "GetAZs",
            "Base64",
        )
    },
}


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation short-form tags as their long-form dicts."""


def _construct_intrinsic(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    key = _SHORT_TAGS[node.tag]
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        # The scalar form `!GetAtt Resource.Attribute` is the list form in disguise.
        if key == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {key: value}


for _tag in _SHORT_TAGS:
    CloudFormationLoader.add_constructor(_tag, _construct_intrinsic)


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return load_template_text(handle.read())


def load_template_text(text: str) -> dict[str, Any]:
    loaded = yaml.load(text, Loader=CloudFormationLoader)  # a SafeLoader subclass
    if not isinstance(loaded, dict):
        raise ValueError("a template must be a YAML mapping")
    return loaded


def _plain(value: Any, where: str) -> Any:
    """Local creation has no CloudFormation to resolve intrinsics; refuse rather than guess."""
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key == "Ref" or str(key).startswith("Fn::"):
            raise ValueError(f"{where}: intrinsic {key} is not supported for local tables")
    return value


def _key_schema(raw: list[Mapping[str, Any]], where: str) -> list[dict[str, str]]:
    return [
        {
            "AttributeName": _plain(k["AttributeName"], where),
            "KeyType": _plain(k["KeyType"], where),
        }
        for k in raw
    ]


def _throughput(raw: Mapping[str, Any] | None, where: str) -> dict[str, int]:
    if not raw:
        raise ValueError(f"{where}: PROVISIONED billing needs ProvisionedThroughput")
    return {
        "ReadCapacityUnits": int(_plain(raw["ReadCapacityUnits"], where)),
        "WriteCapacityUnits": int(_plain(raw["WriteCapacityUnits"], where)),
    }


def _projection(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": _plain(raw["ProjectionType"], where)}
    if raw.get("NonKeyAttributes"):
        projection["NonKeyAttributes"] = list(raw["NonKeyAttributes"])
    return projection


def create_table_request(
    logical_id: str, properties: Mapping[str, Any], table_name: str
) -> dict[str, Any]:
    """The CreateTable arguments equivalent to one AWS::DynamoDB::Table's Properties."""
    where = f"{logical_id}.Properties"
    # CloudFormation's default billing mode is PROVISIONED when the property is absent.
    billing_mode = _plain(properties.get("BillingMode", "PROVISIONED"), where)
    provisioned = billing_mode == "PROVISIONED"
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": [
            {
                "AttributeName": _plain(a["AttributeName"], where),
                "AttributeType": _plain(a["AttributeType"], where),
            }
            for a in properties["AttributeDefinitions"]
        ],
        "KeySchema": _key_schema(properties["KeySchema"], where),
        "BillingMode": billing_mode,
    }
    if provisioned:
        request["ProvisionedThroughput"] = _throughput(
            properties.get("ProvisionedThroughput"), where
        )
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = []
        for index in properties.get(kind) or []:
            index_where = f"{where}.{kind}.{index.get('IndexName')}"
            entry: dict[str, Any] = {
                "IndexName": _plain(index["IndexName"], index_where),
                "KeySchema": _key_schema(index["KeySchema"], index_where),
                "Projection": _projection(index["Projection"], index_where),
            }
            if provisioned and kind == "GlobalSecondaryIndexes":
                entry["ProvisionedThroughput"] = _throughput(
                    index.get("ProvisionedThroughput"), index_where
                )
            indexes.append(entry)
        if indexes:
            request[kind] = indexes
    stream = properties.get("StreamSpecification")
    if stream and stream.get("StreamViewType"):
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": _plain(stream["StreamViewType"], where),
        }
    return request


def create_dynamodb_tables(
    dynamodb_client: Any,
    template: Mapping[str, Any] | None = None,
    name_for: Callable[[str], str] = lambda logical_id: logical_id,
    *,
    exist_ok: bool = False,
) -> dict[str, str]:
    """Create every AWS::DynamoDB::Table of the template; returns {logical_id: table_name}.

    `name_for` names each table (the template leaves naming to CloudFormation). With
    `exist_ok`, a table that already exists is left as it is (a restarted local stack)."""
    if template is None:
        template = load_template()
    created: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, Mapping) or resource.get("Type") != TABLE_TYPE:
            continue
        properties = resource.get("Properties") or {}
        table_name = name_for(logical_id)
        try:
            dynamodb_client.create_table(**create_table_request(logical_id, properties, table_name))
        except ClientError as exc:
            if not (exist_ok and exc.response["Error"]["Code"] == "ResourceInUseException"):
                raise
        # A real (or dynamodb-local) endpoint creates tables asynchronously; moto is immediate.
        dynamodb_client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl and _plain(ttl.get("Enabled"), f"{logical_id}.TimeToLiveSpecification"):
            current = dynamodb_client.describe_time_to_live(TableName=table_name)
            status = current.get("TimeToLiveDescription", {}).get("TimeToLiveStatus")
            # Enabling TTL twice is an error, which matters only with exist_ok.
            if status not in ("ENABLED", "ENABLING"):
                dynamodb_client.update_time_to_live(
                    TableName=table_name,
                    TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"],
                        "Enabled": True,
                    },
                )
        created[logical_id] = table_name
    return created


BUCKET_TYPE = "AWS::S3::Bucket"


def create_s3_buckets(
    s3_client: Any,
    template: Mapping[str, Any] | None = None,
    name_for: Callable[[str], str] = lambda logical_id: logical_id.lower(),
    *,
    exist_ok: bool = False,
) -> dict[str, str]:
    """Create every AWS::S3::Bucket of the template with its encryption, public access block,
    ownership controls and lifecycle rules; returns {logical_id: bucket_name}."""
    if template is None:
        template = load_template()
    created: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, Mapping) or resource.get("Type") != BUCKET_TYPE:
            continue
        properties = resource.get("Properties") or {}
        where = f"{logical_id}.Properties"
        name = name_for(logical_id)
        try:
            s3_client.create_bucket(Bucket=name)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if not (exist_ok and code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")):
                raise
        if properties.get("BucketEncryption"):
            rules = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            s3_client.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [_encryption_rule(r, where) for r in rules]
                },
            )
        if properties.get("PublicAccessBlockConfiguration"):
            s3_client.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration=dict(properties["PublicAccessBlockConfiguration"]),
            )
        if properties.get("OwnershipControls"):
            s3_client.put_bucket_ownership_controls(
                Bucket=name, OwnershipControls=dict(properties["OwnershipControls"])
            )
        lifecycle = properties.get("LifecycleConfiguration")
        if lifecycle:
            s3_client.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [_lifecycle_rule(r, where) for r in lifecycle["Rules"]]
                },
            )
        created[logical_id] = name
    return created


def _encryption_rule(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """CloudFormation's encryption rule in the S3 API's words (its key names differ)."""
    default = raw["ServerSideEncryptionByDefault"]
    applied: dict[str, Any] = {"SSEAlgorithm": _plain(default["SSEAlgorithm"], where)}
    if default.get("KMSMasterKeyID"):
        applied["KMSMasterKeyID"] = _plain(default["KMSMasterKeyID"], where)
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": applied}
    if "BucketKeyEnabled" in raw:
        rule["BucketKeyEnabled"] = bool(raw["BucketKeyEnabled"])
    return rule


def _lifecycle_rule(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape in the S3 API's words."""
    rule: dict[str, Any] = {
        "ID": _plain(raw["Id"], where),
        "Status": _plain(raw["Status"], where),
        "Filter": {"Prefix": _plain(raw.get("Prefix", ""), where)},
    }
    if "ExpirationInDays" in raw:
        rule["Expiration"] = {"Days": int(_plain(raw["ExpirationInDays"], where))}
    abort = raw.get("AbortIncompleteMultipartUpload")
    if abort:
        rule["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(_plain(abort["DaysAfterInitiation"], where))
        }
    return rule
