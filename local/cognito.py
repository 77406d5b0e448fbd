"""The firm user pool on the AWS emulator: created from template.yaml's `UserPool`, its app
clients and groups, and moto's cognito-idp made to behave as Cognito does where the product
depends on it.

What moto does not do and Cognito does (installed by `install()`, in the process that runs
moto, before the first cognito-idp request):
- Each pool signs its tokens with a key of its own, published at the pool's
  `/<pool_id>/.well-known/jwks.json` (moto signs every pool's tokens with one RSA key that is
  published in its own source, so anyone could mint a token for any pool).
- `SignUp` emails a six-digit confirmation code and `ConfirmSignUp` takes only that code
  (moto confirms with any code); a client with a secret must send its `SecretHash`.
- `AdminCreateUser` makes a temporary password when none is given and emails the invitation
  with it (unless `MessageAction` is `SUPPRESS`).
- An app client writes only its `WriteAttributes` (`SignUp`, `UpdateUserAttributes`), and no
  one changes an attribute the schema makes immutable once the user exists
  (`UpdateUserAttributes`, `AdminUpdateUserAttributes`): moto checks neither, so the web
  client could sign someone up into any firm (`custom:firm_id`) or move a user to another.
- TOTP (RFC 6238: SHA-1, 6 digits, 30 s): `AssociateSoftwareToken` gives each user a secret of
  their own, `VerifySoftwareToken` and the `SOFTWARE_TOKEN_MFA` challenge take only a code of
  that secret (one step either side). moto hands every user one secret published in its source
  and takes any code unless an environment switch is on.
Cognito's emails land in the emulator's SES, so the outbox (`GET /_local/outbox`) shows them,
sent from Cognito's default address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwk, jwt
from moto.cognitoidp import urls as cognito_urls
from moto.cognitoidp import utils as cognito_utils
from moto.cognitoidp.exceptions import (
    CodeMismatchException,
    InvalidParameterException,
    NotAuthorizedError,
    UserNotFoundError,
)
from moto.cognitoidp.models import (
    CognitoIdpBackend,
    CognitoIdpUserPool,
    cognitoidp_backends,
)
from moto.cognitoidp.responses import CognitoIdpResponse
from moto.core.exceptions import JsonRESTError
from moto.ses.models import ses_backends

from local.aws_template import load_template

# Cognito's own sender when a pool has no SES configuration of its own (EmailSendingAccount
# COGNITO_DEFAULT).
COGNITO_SENDER = "no-reply@verificationemail.com"
JWKS_PATH = "{0}/(?P<user_pool_id>[^/]+)/.well-known/jwks.json$"

_installed = False


@dataclass(frozen=True)
class UserPoolInfo:
    """What a client needs to sign in (api.md's `POST /_local/users` answer) and the API's
    sign-up needs to make a firm's first admin."""

    user_pool_id: str
    client_id: str  # the web UI's app client (no secret)
    signup_client_id: str  # the API's sign-up client (with a secret)
    region: str
    endpoint: str  # where Cognito's API answers (the emulator's address locally)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint.rstrip('/')}/{self.user_pool_id}/.well-known/jwks.json"

    def public(self) -> dict[str, str]:
        return {
            "user_pool_id": self.user_pool_id,
            "client_id": self.client_id,
            "region": self.region,
            "endpoint": self.endpoint,
        }


# --- the pool from the template ----------------------------------------------------------------


def _resolve(value: Any, stack_name: str, refs: dict[str, str]) -> Any:
    """The few intrinsics the pool's properties use, resolved as a non-prod stage deploys."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "Fn::Sub":
            return str(inner).replace("${AWS::StackName}", stack_name)
        if key == "Fn::If":
            return _resolve(inner[2], stack_name, refs)  # conditions are false off prod
        if key == "Ref":
            return refs[str(inner)]
    if isinstance(value, dict):
        return {k: _resolve(v, stack_name, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, stack_name, refs) for v in value]
    return value


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical: resource.get("Properties", {})
        for logical, resource in template["Resources"].items()
        if resource.get("Type") == kind
    }


# UserPool properties that are CloudFormation's alone, or set through another call.
_POOL_ONLY_IN_CFN = {"UserPoolName", "EnabledMfas", "DeletionProtection"}


def create_user_pool(client: Any, *, stack_name: str, endpoint: str, region: str) -> UserPoolInfo:
    """The template's user pool, its app clients and groups, made in the emulator; or, when
    the emulator holds it already (a restarted local stack restored it, local/persistence),
    that pool with its ids, clients, groups and users as they were."""
    template = load_template()
    pools = _resources(template, "AWS::Cognito::UserPool")
    ((pool_logical, pool_props),) = pools.items()
    props = _resolve(pool_props, stack_name, {})
    kept = _kept_pool(client, template, pool_logical, props["UserPoolName"], stack_name)
    if kept is not None:
        kept_id, kept_clients = kept
        return UserPoolInfo(
            user_pool_id=kept_id,
            client_id=kept_clients["UserPoolClient"],
            signup_client_id=kept_clients["SignupClient"],
            region=region,
            endpoint=endpoint,
        )
    request = {k: v for k, v in props.items() if k not in _POOL_ONLY_IN_CFN}
    pool_id = str(
        client.create_user_pool(PoolName=props["UserPoolName"], **request)["UserPool"]["Id"]
    )
    if "SOFTWARE_TOKEN_MFA" in props.get("EnabledMfas", []):
        client.set_user_pool_mfa_config(
            UserPoolId=pool_id,
            SoftwareTokenMfaConfiguration={"Enabled": True},
            MfaConfiguration=props.get("MfaConfiguration", "OFF"),
        )
    refs = {pool_logical: pool_id}
    client_ids: dict[str, str] = {}
    for logical, raw in _resources(template, "AWS::Cognito::UserPoolClient").items():
        made = client.create_user_pool_client(**_resolve(raw, stack_name, refs))
        client_ids[logical] = str(made["UserPoolClient"]["ClientId"])
    for raw in _resources(template, "AWS::Cognito::UserPoolGroup").values():
        client.create_group(**_resolve(raw, stack_name, refs))
    return UserPoolInfo(
        user_pool_id=pool_id,
        client_id=client_ids["UserPoolClient"],
        signup_client_id=client_ids["SignupClient"],
        region=region,
        endpoint=endpoint,
    )


def _kept_pool(
    client: Any,
    template: dict[str, Any],
    pool_logical: str,
    name: str,
    stack_name: str,
) -> tuple[str, dict[str, str]] | None:
    """The pool of that name the emulator holds already, and its app clients' ids by logical
    id; a group the template added since is made."""
    listed = client.list_user_pools(MaxResults=60)["UserPools"]
    found = [pool["Id"] for pool in listed if pool["Name"] == name]
    if not found:
        return None
    pool_id = str(found[0])
    refs = {pool_logical: pool_id}
    clients = client.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)
    by_name = {c["ClientName"]: str(c["ClientId"]) for c in clients["UserPoolClients"]}
    client_ids: dict[str, str] = {}
    for logical, raw in _resources(template, "AWS::Cognito::UserPoolClient").items():
        client_name = str(_resolve(raw, stack_name, refs).get("ClientName", ""))
        if client_name not in by_name:
            raise RuntimeError(
                f"the kept user pool {pool_id} has no app client {client_name!r}, which "
                "template.yaml declares; start clean with `make run FRESH=1`"
            )
        client_ids[logical] = by_name[client_name]
    groups = {g["GroupName"] for g in client.list_groups(UserPoolId=pool_id)["Groups"]}
    for raw in _resources(template, "AWS::Cognito::UserPoolGroup").values():
        group = _resolve(raw, stack_name, refs)
        if group["GroupName"] not in groups:
            client.create_group(**group)
    return pool_id, client_ids


def signup_client_secret(client: Any, pool: UserPoolInfo) -> str:
    described = client.describe_user_pool_client(
        UserPoolId=pool.user_pool_id, ClientId=pool.signup_client_id
    )
    return str(described["UserPoolClient"]["ClientSecret"])


# --- Cognito's behaviour on moto ---------------------------------------------------------------


def _pool_key(pool: CognitoIdpUserPool) -> jwk.RSAKey:
    key = getattr(pool, "_billbridge_key", None)
    if key is None:
        key = jwk.RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8)})
        pool._billbridge_key = key  # type: ignore[attr-defined]
        pool.json_web_key = key
    return key


def _find_pool(pool_id: str) -> CognitoIdpUserPool | None:
    for account in list(cognitoidp_backends.keys()):
        for region in list(cognitoidp_backends[account].keys()):
            found = cognitoidp_backends[account][region].user_pools.get(pool_id)
            if found is not None:
                return found
    return None


def _serve_json_web_key(*args: Any) -> tuple[int, dict[str, str], bytes]:
    """`GET /<pool_id>/.well-known/jwks.json`: that pool's public key (kid and all)."""
    pool_id = urlsplit(str(args[1])).path.strip("/").split("/")[0]
    pool = _find_pool(pool_id)
    if pool is None:
        return 404, {"Content-Type": "application/json"}, b'{"message": "no such user pool"}'
    public = _pool_key(pool).as_dict(private=False)
    public.update({"alg": "RS256", "use": "sig"})
    return 200, {"Content-Type": "application/json"}, json.dumps({"keys": [public]}).encode()


def _signed_by_pool(original: Any) -> Any:
    def create_jwt(self: CognitoIdpUserPool, *args: Any, **kwargs: Any) -> tuple[str, int]:
        token, expires_in = original(self, *args, **kwargs)
        claims = jwt.decode(token, self.json_web_key).claims  # moto's own signature
        key = _pool_key(self)
        header = {"kid": key.kid, "alg": "RS256"}
        return jwt.encode(header, claims, key), expires_in

    return create_jwt


def _send_mail(pool: CognitoIdpUserPool, to: str, subject: str, body: str) -> None:
    backend = ses_backends[pool.account_id][pool.region]
    backend.verify_email_identity(COGNITO_SENDER)  # a no-op once verified
    backend.send_email(COGNITO_SENDER, subject, body, {"ToAddresses": [to]})


def _template_text(pool: CognitoIdpUserPool, section: str, field: str, default: str) -> str:
    return str((pool.extended_config.get(section) or {}).get(field) or default)


def _code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def _temporary_password() -> str:
    # Meets the template's policy: upper, lower, digit, 12+ characters.
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"Aa1{body}"


def _pool_of_client(client_id: str) -> tuple[CognitoIdpUserPool, Any]:
    for account in list(cognitoidp_backends.keys()):
        for region in list(cognitoidp_backends[account].keys()):
            for pool in cognitoidp_backends[account][region].user_pools.values():
                if client_id in pool.clients:
                    return pool, pool.clients[client_id]
    raise NotAuthorizedError("no such app client")


def _secret_hash(secret: str, client_id: str, username: str) -> str:
    # Cognito's SECRET_HASH: HMAC-SHA256 of username + client id, in UTF-8 (moto's own check
    # encodes Latin-1 and fails on an internationalised address).
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _check_secret(client: Any, username: str, secret_hash: str | None) -> None:
    if client.generate_secret and not (
        secret_hash is not None
        and hmac.compare_digest(_secret_hash(client.secret, client.id, username), secret_hash)
    ):
        raise NotAuthorizedError(
            f"Client {client.id} is configured with secret but SECRET_HASH "
            "was not received or is wrong"
        )


def _names(attributes: Any) -> list[str]:
    return [str(a.get("Name")) for a in attributes or [] if isinstance(a, dict)]


def _check_writable(client: Any, attributes: Any) -> None:
    """Cognito refuses an attribute the app client may not write (its WriteAttributes; all,
    when it names none)."""
    allowed = client.extended_config.get("WriteAttributes")
    if allowed is None:
        return
    for name in _names(attributes):
        if name not in allowed:
            raise NotAuthorizedError("A client attempted to write unauthorized attribute")


def _check_mutable(pool: CognitoIdpUserPool, attributes: Any) -> None:
    for name in _names(attributes):
        schema = pool.schema_attributes.get(name)
        if schema is not None and not schema.mutable:
            raise InvalidParameterException(f"Cannot modify an immutable attribute: {name}.")


def _pool_of_access_token(backend: CognitoIdpBackend, token: str) -> tuple[Any, Any] | None:
    for pool in backend.user_pools.values():
        issued = pool.access_tokens.get(token)
        if issued is not None:
            return pool, pool.clients.get(issued[0])
    return None


def _update_user_attributes(original: Any) -> Any:
    def update_user_attributes(
        self: CognitoIdpBackend, access_token: str, attributes: list[dict[str, str]]
    ) -> Any:
        found = _pool_of_access_token(self, access_token)
        if found is not None:
            pool, client = found
            if client is not None:
                _check_writable(client, attributes)
            _check_mutable(pool, attributes)
        return original(self, access_token, attributes)

    return update_user_attributes


def _admin_update_user_attributes(original: Any) -> Any:
    def admin_update_user_attributes(
        self: CognitoIdpBackend, user_pool_id: str, username: str, attributes: Any
    ) -> Any:
        _check_mutable(self.describe_user_pool(user_pool_id), attributes)
        return original(self, user_pool_id, username, attributes)

    return admin_update_user_attributes


def _sign_up(original: Any) -> Any:
    def sign_up(self: CognitoIdpResponse) -> Any:
        client_id = str(self._get_param("ClientId"))
        username = str(self._get_param("Username"))
        pool, client = _pool_of_client(client_id)
        _check_secret(client, username, self._get_param("SecretHash"))
        _check_writable(client, self._get_param("UserAttributes"))
        answer = original(self)
        user = pool._get_user(username)
        code = _code()
        user._billbridge_code = code
        email = user.attribute_lookup.get("email", username)
        subject = _template_text(
            pool, "VerificationMessageTemplate", "EmailSubject", "Your verification code"
        )
        message = _template_text(
            pool, "VerificationMessageTemplate", "EmailMessage", "Your verification code is {####}."
        )
        _send_mail(pool, email, subject, message.replace("{####}", code))
        return answer

    return sign_up


def _confirm_sign_up(original: Any) -> Any:
    def confirm_sign_up(self: CognitoIdpResponse) -> Any:
        client_id = str(self._get_param("ClientId"))
        username = str(self._get_param("Username"))
        pool, client = _pool_of_client(client_id)
        _check_secret(client, username, self._get_param("SecretHash"))
        user = pool._get_user(username)
        if user is None:
            raise UserNotFoundError("Username/client id combination not found.")
        expected = getattr(user, "_billbridge_code", None)
        given = str(self._get_param("ConfirmationCode") or "")
        if expected is None or not secrets.compare_digest(given, expected):
            raise CodeMismatchException("Invalid verification code provided, please try again.")
        answer = original(self)
        user._billbridge_code = None
        user.update_attributes([{"Name": "email_verified", "Value": "true"}])
        return answer

    return confirm_sign_up


def _admin_create_user(original: Any) -> Any:
    def admin_create_user(
        self: CognitoIdpBackend,
        user_pool_id: str,
        username: str,
        message_action: str,
        temporary_password: str,
        attributes: list[dict[str, str]],
    ) -> Any:
        password = temporary_password or _temporary_password()
        user = original(self, user_pool_id, username, message_action, password, attributes)
        if message_action != "SUPPRESS":
            pool = self.describe_user_pool(user_pool_id)
            config = pool.extended_config.get("AdminCreateUserConfig") or {}
            invite = config.get("InviteMessageTemplate") or {}
            subject = str(invite.get("EmailSubject") or "Your temporary password")
            message = str(
                invite.get("EmailMessage")
                or "Your username is {username} and temporary password is {####}."
            )
            email = user.attribute_lookup.get("email", username)
            body = message.replace("{username}", email).replace("{####}", password)
            _send_mail(pool, email, subject, body)
        return user

    return admin_create_user


# --- TOTP (software token MFA) -------------------------------------------------------------------

TOTP_STEP_SECONDS = 30


def totp_code(secret: str, at: float) -> str:
    """RFC 6238's code of a base32 secret at a moment (RFC 4226's HOTP of the 30 s step)."""
    padded = secret.upper() + "=" * (-len(secret) % 8)
    key = base64.b32decode(padded)
    counter = int(at // TOTP_STEP_SECONDS).to_bytes(8, "big")
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def _totp_matches(secret: str | None, code: Any) -> bool:
    import time

    given = str(code or "").strip()
    if not secret or not given.isdigit():
        return False
    now = time.time()
    return any(
        secrets.compare_digest(totp_code(secret, now + step * TOTP_STEP_SECONDS), given)
        for step in (-1, 0, 1)
    )


class EnableSoftwareTokenMfaError(JsonRESTError):
    def __init__(self) -> None:
        super().__init__(
            "EnableSoftwareTokenMFAException", "Code mismatch and fail enable Software Token MFA"
        )


def _user_of(backend: CognitoIdpBackend, access_token: str, session: str | None) -> Any:
    if session:
        found = backend.sessions.get(session)
        if found is None:
            return None
        username, pool = found
        return pool._get_user(username)
    for pool in backend.user_pools.values():
        issued = pool.access_tokens.get(access_token)
        if issued is not None:
            return pool._get_user(issued[1])
    return None


def _associate_software_token(original: Any) -> Any:
    def associate_software_token(
        self: CognitoIdpBackend, access_token: str, session: str
    ) -> dict[str, str]:
        user = _user_of(self, access_token, session)
        secret = base64.b32encode(secrets.token_bytes(20)).decode()
        if user is not None:
            # Set before moto's call, which the persistence layer saves after.
            user._billbridge_totp_pending = secret
        answer = dict(original(self, access_token, session))
        answer["SecretCode"] = secret
        return answer

    return associate_software_token


def _verify_software_token(original: Any) -> Any:
    def verify_software_token(
        self: CognitoIdpBackend,
        access_token: str,
        session: str,
        user_code: str,
        friendly_device_name: str,
    ) -> dict[str, str]:
        user = _user_of(self, access_token, session)
        if user is not None:
            pending = getattr(user, "_billbridge_totp_pending", None)
            if not _totp_matches(pending, user_code):
                raise EnableSoftwareTokenMfaError()
            user._billbridge_totp_secret = pending
            user._billbridge_totp_pending = None
        answer = dict(original(self, access_token, session, user_code, friendly_device_name))
        if not session:
            answer.pop("Session", None)  # Cognito answers a Session only to a Session
        return answer

    return verify_software_token


def _respond_to_auth_challenge(original: Any) -> Any:
    def respond_to_auth_challenge(
        self: CognitoIdpBackend,
        session: str,
        client_id: str,
        challenge_name: str,
        challenge_responses: dict[str, str],
    ) -> Any:
        if challenge_name == "SOFTWARE_TOKEN_MFA":
            user = _user_of(self, "", session)
            code = (challenge_responses or {}).get("SOFTWARE_TOKEN_MFA_CODE")
            if user is not None and not _totp_matches(
                getattr(user, "_billbridge_totp_secret", None), code
            ):
                raise CodeMismatchException("Invalid code received for user")
        return original(self, session, client_id, challenge_name, challenge_responses)

    return respond_to_auth_challenge


def install() -> None:
    """Make moto's cognito-idp behave as described above (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    cognito_urls.url_paths[JWKS_PATH] = _serve_json_web_key
    # Cognito takes any address as an email username; moto's check refuses RFC 5322's
    # `!#$&'*/=?^{|}~` in the local part.
    cognito_utils.FORMATS["email"] = r"[^@\s]+@[^@\s]+\.[^@\s]+"
    CognitoIdpUserPool.create_jwt = _signed_by_pool(CognitoIdpUserPool.create_jwt)  # type: ignore[method-assign]
    CognitoIdpResponse.sign_up = _sign_up(CognitoIdpResponse.sign_up)  # type: ignore[method-assign]
    CognitoIdpResponse.confirm_sign_up = _confirm_sign_up(  # type: ignore[method-assign]
        CognitoIdpResponse.confirm_sign_up
    )
    CognitoIdpBackend.admin_create_user = _admin_create_user(  # type: ignore[method-assign]
        CognitoIdpBackend.admin_create_user
    )
    CognitoIdpBackend.associate_software_token = _associate_software_token(  # type: ignore[method-assign]
        CognitoIdpBackend.associate_software_token
    )
    CognitoIdpBackend.verify_software_token = _verify_software_token(  # type: ignore[method-assign]
        CognitoIdpBackend.verify_software_token
    )
    CognitoIdpBackend.respond_to_auth_challenge = _respond_to_auth_challenge(  # type: ignore[method-assign]
        CognitoIdpBackend.respond_to_auth_challenge
    )
    CognitoIdpBackend.update_user_attributes = _update_user_attributes(  # type: ignore[method-assign]
        CognitoIdpBackend.update_user_attributes
    )
    CognitoIdpBackend.admin_update_user_attributes = _admin_update_user_attributes(  # type: ignore[method-assign]
        CognitoIdpBackend.admin_update_user_attributes
    )


# --- users made by the local stack (POST /_local/users, the demo admin) -------------------------


class LocalUserError(ValueError):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def make_user(
    pool: UserPoolInfo, table_name: str, email: str, password: str, firm_id: str, role: str
) -> dict[str, str]:
    """A confirmed user of `firm_id` in `role`'s group, who signs in with `password`, listed
    among the firm's users. Answers what a client needs to sign in (api.md)."""
    import boto3
    from botocore.exceptions import ClientError

    from billbridge.adapters.dynamo_accounts import DynamoMembers
    from billbridge.domain.access import FIRM_ID, Role
    from billbridge.domain.accounts import Member, MemberStatus, checked_email
    from billbridge.domain.errors import DomainError
    from billbridge.domain.sync import utcnow

    try:
        address = checked_email(email)
    except DomainError as exc:
        raise LocalUserError(400, "invalid_input", exc.message, "email") from exc
    if not FIRM_ID.fullmatch(firm_id or ""):
        raise LocalUserError(
            400, "invalid_input", "firm_id: 1 to 64 of A-Z a-z 0-9 _ . -", "firm_id"
        )
    if role not in (Role.ADMIN.value, Role.STAFF.value):
        raise LocalUserError(400, "invalid_input", "role: admin or staff", "role")
    client = boto3.client("cognito-idp", region_name=pool.region)
    try:
        made = client.admin_create_user(
            UserPoolId=pool.user_pool_id,
            Username=address,
            MessageAction="SUPPRESS",
            TemporaryPassword=password,
            UserAttributes=[
                {"Name": "email", "Value": address},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "custom:firm_id", "Value": firm_id},
            ],
        )
        client.admin_set_user_password(
            UserPoolId=pool.user_pool_id, Username=address, Password=password, Permanent=True
        )
        client.admin_add_user_to_group(
            UserPoolId=pool.user_pool_id, Username=address, GroupName=role
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        message = exc.response["Error"].get("Message", code)
        if code == "UsernameExistsException":
            raise LocalUserError(
                409, "email_taken", "a user with this email exists", "email"
            ) from exc
        if code in ("InvalidPasswordException", "InvalidParameterException"):
            raise LocalUserError(422, "weak_password", message, "password") from exc
        raise
    user_id = next(a["Value"] for a in made["User"]["Attributes"] if a["Name"] == "sub")
    members = DynamoMembers(boto3.client("dynamodb", region_name=pool.region), table_name)
    for stale in members.list(firm_id):
        if stale.email == address:  # from an earlier start's pool, which is gone
            members.forget(firm_id, stale.user_id)
    members.add(
        Member(
            user_id=user_id,
            firm_id=firm_id,
            email=address,
            role=Role(role),
            status=MemberStatus.ACTIVE,
            created_at=utcnow(),
        )
    )
    return pool.public()
