"""Infrastructure tests: template.yaml lints clean, builds, and keeps its security promises.

`sam build` fetches the layer's requirements from PyPI, so that one test needs the network and
takes tens of seconds; every other test only reads files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.aws_template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
EVENTS_DIR = ROOT / "events"

API_ID = "FirmApi"
AUTHORIZER = "CognitoAuthorizer"
LAYER_ID = "BillbridgeLayer"
FIRM_CLAIM = "custom:firm_id"

# Public by design (api.md): the pay pages and webhooks, which prove themselves by token or
# signature, plus the OAuth callback (the firm comes from the signed state) and the API's
# own OpenAPI document.
PUBLIC_PREFIXES = ("/pay", "/webhooks", "/signup")
PUBLIC_ROUTES = {("GET", "/clio/callback"), ("ANY", "/clio/callback"), ("GET", "/openapi.json")}


def _is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC_ROUTES or any(
        path == prefix or path.startswith(prefix + "/") for prefix in PUBLIC_PREFIXES
    )


# --- helpers ------------------------------------------------------------------------------------


def _sam() -> str:
    """The sam of the running interpreter's environment, so tests use the pinned version."""
    beside = Path(sys.executable).parent / "sam"
    if beside.exists():
        return str(beside)
    found = shutil.which("sam")
    if found is None:
        pytest.fail("sam not found: install requirements-dev.txt (aws-sam-cli)")
    return found


def _sam_env() -> dict[str, str]:
    env = dict(os.environ)
    env["SAM_CLI_TELEMETRY"] = "0"
    # Lambda runs python3.13; on these machines pyenv provides it through this variable.
    env.setdefault("PYENV_VERSION", "3.13.0")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _function_dir(properties: dict[str, Any]) -> str:
    return Path(properties["CodeUri"]).name


def _api_routes(template: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path) -> the Api event's Properties, over every function."""
    routes: dict[tuple[str, str], dict[str, Any]] = {}
    for properties in _functions(template).values():
        for event in (properties.get("Events") or {}).values():
            if event["Type"] == "Api":
                event_properties = event["Properties"]
                key = (event_properties["Method"].upper(), event_properties["Path"])
                assert key not in routes, f"route {key} declared twice"
                routes[key] = event_properties
    return routes


# --- tests --------------------------------------------------------------------------------------


def test_given_the_template_when_sam_validate_lints_it_then_it_passes_with_no_warning() -> None:
    result = subprocess.run(
        [_sam(), "validate", "--lint", "--template", str(TEMPLATE_PATH)],
        cwd=ROOT,
        env=_sam_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(900)
def test_given_the_template_when_sam_builds_it_then_every_function_and_the_layer_are_built(
    template: dict[str, Any], tmp_path: Path
) -> None:
    build_dir = tmp_path / "build"
    # sam keeps cached dependencies under ./.aws-sam of its working directory: a scratch
    # directory keeps the checkout clean and parallel runs apart.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    result = subprocess.run(
        [
            _sam(),
            "build",
            "--template-file",
            str(TEMPLATE_PATH),
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=workdir,
        env=_sam_env(),
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (build_dir / "template.yaml").is_file()

    for logical_id, properties in _functions(template).items():
        module = properties["Handler"].rsplit(".", 1)[0].replace(".", "/")
        assert (build_dir / logical_id / f"{module}.py").is_file(), logical_id

    layer_python = build_dir / LAYER_ID / "python"
    assert (layer_python / "billbridge" / "__init__.py").is_file()
    assert (layer_python / "aws_lambda_powertools").is_dir()
    # The functions run on arm64: compiled dependencies must be the aarch64 builds.
    assert list((layer_python / "pydantic_core").glob("*aarch64*.so"))


def test_given_the_template_when_listing_sample_events_then_every_function_has_one(
    template: dict[str, Any],
) -> None:
    for logical_id, properties in _functions(template).items():
        samples = sorted((EVENTS_DIR / _function_dir(properties)).glob("*.json"))
        assert samples, f"{logical_id}: no sample event in events/{_function_dir(properties)}/"


def test_given_the_sample_events_when_parsed_then_each_is_a_json_object() -> None:
    files = sorted(path for path in EVENTS_DIR.rglob("*") if path.is_file())
    assert files
    for path in files:
        assert path.suffix == ".json", path
        assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict), path


def test_given_the_sample_api_events_when_matched_to_routes_then_claims_follow_the_auth(
    template: dict[str, Any],
) -> None:
    routes = _api_routes(template)
    for path in sorted(EVENTS_DIR.rglob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        if "httpMethod" not in event:
            continue
        key = (event["httpMethod"], event["resource"])
        assert key in routes, f"{path.name}: {key} is not a route of the template"
        claims = ((event["requestContext"].get("authorizer") or {}).get("claims")) or {}
        if _is_public(*key):
            assert not claims, f"{path.name}: a public route gets no authorizer claims"
        else:
            assert claims.get(FIRM_CLAIM), f"{path.name}: needs the {FIRM_CLAIM} claim"


def test_given_the_api_routes_when_checking_auth_then_only_public_routes_skip_cognito(
    template: dict[str, Any],
) -> None:
    api = template["Resources"][API_ID]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == AUTHORIZER
    assert api["Auth"]["Authorizers"][AUTHORIZER]["UserPoolArn"] == {
        "Fn::GetAtt": ["UserPool", "Arn"]
    }

    routes = _api_routes(template)
    assert {("POST", "/webhooks/clio"), ("GET", "/invoices"), ("GET", "/clio/callback")} <= set(
        routes
    )
    for (method, path), event in routes.items():
        # An Api event without RestApiId lands on SAM's implicit API, which has no authorizer.
        assert event.get("RestApiId") == {"Ref": API_ID}, (method, path)
        authorizer = (event.get("Auth") or {}).get("Authorizer", AUTHORIZER)
        expected = "NONE" if _is_public(method, path) else AUTHORIZER
        assert authorizer == expected, (method, path)


def test_given_the_apis_own_refusals_then_each_is_in_the_api_md_error_shape(
    template: dict[str, Any],
) -> None:
    responses = template["Resources"][API_ID]["Properties"]["GatewayResponses"]
    # Without UNAUTHORIZED, a missing token gets DEFAULT_4XX's code, the raw response type.
    assert {"UNAUTHORIZED", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(
        responses
    )
    assert responses["UNAUTHORIZED"]["StatusCode"] == 401
    for kind, spec in responses.items():
        body = spec["ResponseTemplates"]["application/json"]
        # What API Gateway substitutes: the type's name, and its message as a JSON string.
        filled = body.replace("$context.error.responseType", kind).replace(
            "$context.error.messageString", json.dumps("Some message")
        )
        error = json.loads(filled)["error"]
        assert set(error) == {"code", "message", "field"}, kind
        assert error["code"] and error["message"], kind


def test_given_the_sync_worker_when_reading_its_events_then_it_is_scheduled_every_minute(
    template: dict[str, Any],
) -> None:
    (worker,) = [
        properties
        for properties in _functions(template).values()
        if _function_dir(properties) == "sync_worker"
    ]
    schedules = [
        event["Properties"] for event in worker["Events"].values() if event["Type"] == "Schedule"
    ]
    assert [schedule["Schedule"] for schedule in schedules] == ["rate(1 minute)"]
    assert all(schedule.get("Enabled", True) is True for schedule in schedules)


def test_given_the_reminders_function_then_a_schedule_drives_it_and_it_may_start_sends(
    template: dict[str, Any],
) -> None:
    """X3: an EventBridge schedule invokes it; it starts the send workflow (its policy names
    that state machine) and reads the connected firms (the token key, to read connections)."""
    (reminders,) = [
        properties
        for properties in _functions(template).values()
        if _function_dir(properties) == "reminders"
    ]
    schedules = [e["Properties"] for e in reminders["Events"].values() if e["Type"] == "Schedule"]
    assert [schedule["Schedule"] for schedule in schedules] == ["rate(1 hour)"]
    assert all(schedule.get("Enabled", True) is True for schedule in schedules)
    policies = json.dumps(reminders["Policies"])
    assert "StepFunctionsExecutionPolicy" in policies and "SendEnvelopesStateMachine" in policies
    assert reminders["Environment"]["Variables"]["SEND_STATE_MACHINE_ARN"] == {
        "Ref": "SendEnvelopesStateMachine"
    }


# --- failures kept, keys kept, requests logged ------------------------------------------------

ASYNC_EVENT_TYPES = {"Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3"}


def _alarmed_queues(template: dict[str, Any]) -> set[str]:
    """Queues (logical ids) whose visible messages an alarm watches."""
    watched = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        if props.get("MetricName") != "ApproximateNumberOfMessagesVisible":
            continue
        for dimension in props.get("Dimensions", []):
            value = dimension.get("Value")
            if dimension.get("Name") == "QueueName" and isinstance(value, dict):
                watched.add(value["Fn::GetAtt"][0])
    return watched


def test_given_functions_invoked_asynchronously_then_each_keeps_its_failures_in_an_alarmed_queue(
    template: dict[str, Any],
) -> None:
    asynchronous = {
        logical_id: properties
        for logical_id, properties in _functions(template).items()
        if any(e["Type"] in ASYNC_EVENT_TYPES for e in (properties.get("Events") or {}).values())
    }
    assert {"SyncWorkerFunction", "SesEventsFunction"} <= set(asynchronous)
    watched = _alarmed_queues(template)
    for logical_id, properties in asynchronous.items():
        on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        assert on_failure["Type"] == "SQS", logical_id
        queue = on_failure["Destination"]["Fn::GetAtt"][0]
        assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue", logical_id
        assert queue in watched, f"{logical_id}: no alarm watches {queue}"


def test_given_keys_that_stored_data_needs_then_they_outlive_the_stack(
    template: dict[str, Any],
) -> None:
    # The pay-link key makes every emailed link's token; the KMS key decrypts stored Clio tokens.
    for logical_id in ("PayLinkSecret", "ClioTokenKey", "AppTable"):
        resource = template["Resources"][logical_id]
        assert resource.get("DeletionPolicy") == "Retain", logical_id
        assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_given_the_api_then_its_access_logs_go_to_a_kept_log_group_without_pay_tokens(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    api = resources[API_ID]
    access = api["Properties"]["AccessLogSetting"]
    log_group = access["DestinationArn"]["Fn::GetAtt"]
    assert log_group[1] == "Arn"
    assert resources[log_group[0]]["Type"] == "AWS::Logs::LogGroup"
    assert resources[log_group[0]]["Properties"]["RetentionInDays"]
    line = json.loads(access["Format"].replace("$context.", "context."))
    assert {"request_id", "status", "resource", "method", "source_ip"} <= set(line)
    # The path of /pay/{token} is the credential: only the route template is logged.
    assert "$context.path" not in access["Format"]
    assert "$context.resourcePath" in access["Format"]


def test_given_api_gateway_logging_then_the_account_names_a_role_it_can_assume(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    (account_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::ApiGateway::Account"]
    role_id = resources[account_id]["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert any(
        "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(arn)
        for arn in role["ManagedPolicyArns"]
    )
    # A stage with access logs fails to create before the account has its role.
    assert resources[API_ID].get("DependsOn") == account_id


def test_given_the_local_controls_then_no_deployed_route_or_function_serves_them(
    template: dict[str, Any],
) -> None:
    assert not [path for _, path in _api_routes(template) if path.startswith("/_local")]
    for properties in _functions(template).values():
        code = ROOT / str(properties["CodeUri"])
        for source in code.rglob("*.py"):
            assert "/_local" not in source.read_text(encoding="utf-8"), source
    for source in (ROOT / "layers" / "billbridge").rglob("*.py"):
        assert "/_local" not in source.read_text(encoding="utf-8"), source


def test_given_the_bill_pdf_bucket_then_it_is_private_encrypted_expiring_and_tls_only(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    bucket = resources["BillPdfBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and r.get("ExpirationInDays") for r in rules)
    (policy,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": "BillPdfBucket"}
    ]
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _bucket_actions(properties: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for policy in properties.get("Policies") or []:
        for statement in (policy.get("Statement") or []) if isinstance(policy, dict) else []:
            if "BillPdfBucket" in json.dumps(statement.get("Resource")):
                listed = statement["Action"]
                actions |= set(listed if isinstance(listed, list) else [listed])
    return actions


def test_given_the_functions_then_only_those_using_bill_pdfs_may_touch_their_bucket(
    template: dict[str, Any],
) -> None:
    # PayFunction: the client views and downloads the bills of the pay link.
    users = {"ApiFunction", "SyncWorkerFunction", "SendEnvelopeFunction", "PayFunction"}
    for logical_id, properties in _functions(template).items():
        expected = (
            {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} if logical_id in users else set()
        )
        assert _bucket_actions(properties) == expected, logical_id
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["BILL_PDF_BUCKET"] == {"Ref": "BillPdfBucket"}


# --- the user pool, its clients and the roles (docs/auth.md) ------------------------------------


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]
    return resource


def test_given_the_user_pool_then_the_firm_id_is_immutable_mfa_optional_totp_and_passwords_strong(
    template: dict[str, Any],
) -> None:
    pool = _resource(template, "UserPool")
    assert pool["DeletionPolicy"] == "Retain"
    props = pool["Properties"]
    firm = next(a for a in props["Schema"] if a["Name"] == "firm_id")
    assert firm["Mutable"] is False and firm["AttributeDataType"] == "String"
    assert props["MfaConfiguration"] == "OPTIONAL"
    assert props["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert policy["RequireUppercase"] and policy["RequireLowercase"] and policy["RequireNumbers"]
    assert props["UsernameAttributes"] == ["email"]
    # Sign-up codes and invitations are emailed; the messages carry Cognito's placeholders.
    assert "{####}" in props["VerificationMessageTemplate"]["EmailMessage"]
    invite = props["AdminCreateUserConfig"]["InviteMessageTemplate"]["EmailMessage"]
    assert "{####}" in invite and "{username}" in invite


def test_given_the_groups_then_admin_and_staff_exist_in_the_pool(template: dict[str, Any]) -> None:
    groups = {
        r["Properties"]["GroupName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Cognito::UserPoolGroup"
    }
    assert set(groups) == {"admin", "staff"}
    for group in groups.values():
        assert group["UserPoolId"] == {"Ref": "UserPool"}


def test_given_the_web_client_then_it_has_no_secret_and_cannot_write_the_firm(
    template: dict[str, Any],
) -> None:
    web = _resource(template, "UserPoolClient")["Properties"]
    assert web["GenerateSecret"] is False
    assert set(web["ExplicitAuthFlows"]) == {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    assert FIRM_CLAIM not in web["WriteAttributes"]
    assert FIRM_CLAIM in web["ReadAttributes"]
    # Sign-up's client: the only writer of the firm id, and it needs the API's secret.
    signup = _resource(template, "SignupClient")["Properties"]
    assert signup["GenerateSecret"] is True
    assert FIRM_CLAIM in signup["WriteAttributes"]
    assert signup["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]


def test_given_the_outputs_then_they_fill_the_web_uis_config(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["UserPoolId"]["Value"] == {"Ref": "UserPool"}
    assert outputs["UserPoolClientId"]["Value"] == {"Ref": "UserPoolClient"}
    config = outputs["WebConfigJs"]["Value"]["Fn::Sub"]
    for part in ("${UserPool}", "${UserPoolClient}", "${AWS::Region}", 'mode: "cognito"'):
        assert part in config
    assert "cognito-idp.${AWS::Region}" in outputs["CognitoEndpoint"]["Value"]["Fn::Sub"]


def test_given_the_api_function_then_it_may_call_only_named_cognito_actions_on_its_pool(
    template: dict[str, Any],
) -> None:
    api = _functions(template)["ApiFunction"]
    assert api["Environment"]["Variables"]["USER_POOL_ID"] == {"Ref": "UserPool"}
    assert api["Environment"]["Variables"]["SIGNUP_CLIENT_ID"] == {"Ref": "SignupClient"}
    statements = [
        statement
        for policy in api["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
        if any(str(a).startswith("cognito-idp:") for a in statement["Action"])
    ]
    assert len(statements) == 1
    actions = statements[0]["Action"]
    assert "cognito-idp:*" not in actions and all(a.startswith("cognito-idp:") for a in actions)
    assert statements[0]["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    # No other function touches the pool.
    for name, properties in _functions(template).items():
        if name != "ApiFunction":
            assert "cognito-idp:" not in json.dumps(properties.get("Policies", [])), name


def test_given_every_firm_api_route_then_the_role_table_names_it_or_it_is_public(
    template: dict[str, Any],
) -> None:
    from billbridge.domain.access import PUBLIC_RESOURCES, ROUTE_ROLES

    api_routes = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"]): event["Properties"]
        for event in (_functions(template)["ApiFunction"].get("Events") or {}).values()
        if event["Type"] == "Api"
    }
    for (method, path), event in api_routes.items():
        public = (event.get("Auth") or {}).get("Authorizer") == "NONE"
        if public:
            assert path in PUBLIC_RESOURCES, (method, path)
        else:
            assert (method, path) in ROUTE_ROLES, f"{method} {path}: add it to ROUTE_ROLES"
