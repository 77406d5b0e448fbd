"""The firm user pool behind services.ports.UserDirectory: Cognito's sign-up through the API's
own SignupClient (the one client that may write `custom:firm_id`, proven by its secret, read
once per container with DescribeUserPoolClient), and the admin calls for invitations and groups.
Cognito's error codes become domain errors here."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cached_property
from typing import Any

from botocore.exceptions import ClientError

from billbridge.domain.access import FIRM_CLAIM, Role
from billbridge.domain.accounts import EmailTaken
from billbridge.domain.errors import InvalidInput, NotFound, RuleViolation

EMAIL_TAKEN = "There is already a BillBridge account with this email address: sign in instead."


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")).strip()


class CognitoDirectory:
    def __init__(self, client: Any, user_pool_id: str, signup_client_id: str) -> None:
        self._client = client
        self._pool = user_pool_id
        self._signup_client = signup_client_id

    @cached_property
    def _secret(self) -> str:
        described = self._client.describe_user_pool_client(
            UserPoolId=self._pool, ClientId=self._signup_client
        )
        return str(described["UserPoolClient"]["ClientSecret"])

    def _secret_hash(self, username: str) -> str:
        digest = hmac.new(
            self._secret.encode(), (username + self._signup_client).encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode()

    def sign_up(self, firm_id: str, email: str, password: str) -> str:
        try:
            answer = self._client.sign_up(
                ClientId=self._signup_client,
                SecretHash=self._secret_hash(email),
                Username=email,
                Password=password,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": FIRM_CLAIM, "Value": firm_id},
                ],
            )
        except ClientError as exc:
            code = _code(exc)
            if code == "UsernameExistsException":
                raise EmailTaken(EMAIL_TAKEN, field="email") from exc
            if code == "InvalidPasswordException":
                raise InvalidInput(
                    "Choose a password of at least 12 characters with upper and lower case "
                    "letters and a number.",
                    field="password",
                    code="weak_password",
                ) from exc
            if code == "InvalidParameterException":
                raise InvalidInput(_message(exc) or "Cognito refused the sign-up.") from exc
            raise
        return str(answer["UserSub"])

    def confirm_sign_up(self, email: str, code: str) -> tuple[str, str]:
        try:
            self._client.confirm_sign_up(
                ClientId=self._signup_client,
                SecretHash=self._secret_hash(email),
                Username=email,
                ConfirmationCode=code,
            )
        except ClientError as exc:
            error = _code(exc)
            if error == "CodeMismatchException":
                # As any unguessable token that is not the caller's: 404.
                raise NotFound(
                    "That code is not the one we emailed: check the email and try again.",
                    field="code",
                    code="wrong_code",
                ) from exc
            if error == "ExpiredCodeException":
                raise RuleViolation(
                    "That code has expired: sign up again for a new one.",
                    field="code",
                    code="code_expired",
                ) from exc
            if error in ("UserNotFoundException", "NotAuthorizedException"):
                raise NotFound(
                    "There is no sign-up waiting for this email address to be confirmed.",
                    field="email",
                    code="nothing_to_confirm",
                ) from exc
            raise
        user = self._client.admin_get_user(UserPoolId=self._pool, Username=email)
        attributes = {a["Name"]: a["Value"] for a in user.get("UserAttributes", [])}
        return str(attributes["sub"]), str(attributes[FIRM_CLAIM])

    def invite(self, firm_id: str, email: str) -> str:
        try:
            made = self._client.admin_create_user(
                UserPoolId=self._pool,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    # The admin vouches for the address; the invitation goes to it.
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": FIRM_CLAIM, "Value": firm_id},
                ],
                DesiredDeliveryMediums=["EMAIL"],
            )
        except ClientError as exc:
            if _code(exc) == "UsernameExistsException":
                raise EmailTaken(EMAIL_TAKEN.split(":")[0] + ".", field="email") from exc
            raise
        attributes = {a["Name"]: a["Value"] for a in made["User"].get("Attributes", [])}
        return str(attributes.get("sub") or made["User"]["Username"])

    def set_role(self, user_id: str, role: Role) -> None:
        try:
            self._client.admin_add_user_to_group(
                UserPoolId=self._pool, Username=user_id, GroupName=role.value
            )
            for other in Role:
                if other is not role:
                    self._client.admin_remove_user_from_group(
                        UserPoolId=self._pool, Username=user_id, GroupName=other.value
                    )
        except ClientError as exc:
            if _code(exc) == "UserNotFoundException":
                raise NotFound("There is no such user.", field="user_id") from exc
            raise

    def remove(self, user_id: str) -> None:
        try:
            self._client.admin_user_global_sign_out(UserPoolId=self._pool, Username=user_id)
            self._client.admin_delete_user(UserPoolId=self._pool, Username=user_id)
        except ClientError as exc:
            if _code(exc) != "UserNotFoundException":
                raise
