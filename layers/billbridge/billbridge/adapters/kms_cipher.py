"""Direct KMS encryption of small secrets (Clio tokens, webhook secrets): it owns the
one place where plaintext secrets meet KMS.

Every call carries an encryption context, which KMS binds to the ciphertext as authenticated
data: a ciphertext decrypts only with the very context it was made with, so a copy pasted
into another firm's record is useless. Plaintext and ciphertext are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

# KMS Encrypt takes at most 4 KiB of plaintext; our secrets are a few hundred bytes.
MAX_PLAINTEXT_BYTES = 4096


class CipherError(RuntimeError):
    """A ciphertext did not decrypt: wrong context, wrong key, or tampered with."""


class KmsCipher:
    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise ValueError("plaintext too large for direct KMS encryption")
        response = self._kms.encrypt(
            KeyId=self._key_id, Plaintext=plaintext, EncryptionContext=dict(context)
        )
        return bytes(response["CiphertextBlob"])

    def decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        try:
            response = self._kms.decrypt(
                # Pinning the key stops a ciphertext made under another key from being accepted.
                KeyId=self._key_id,
                CiphertextBlob=ciphertext,
                EncryptionContext=dict(context),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("InvalidCiphertextException", "IncorrectKeyException"):
                # `from None`: the KMS error text adds nothing and stays out of logs.
                raise CipherError(f"ciphertext did not decrypt ({code})") from None
            raise
        return bytes(response["Plaintext"])
