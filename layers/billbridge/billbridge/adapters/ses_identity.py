"""The SES identity mail is sent from, and whether SES has verified it (implements
services.ports.SenderIdentity): the address itself, else its domain."""

from __future__ import annotations

from typing import Any

_STATUS = {
    "Success": "verified",
    "Pending": "pending",
    "Failed": "failed",
    "TemporaryFailure": "pending",
    "NotStarted": "pending",
}


class SesSenderIdentity:
    def __init__(self, ses_client: Any) -> None:
        self._ses = ses_client

    def verification_status(self, address: str) -> str:
        domain = address.rpartition("@")[2]
        identities = [address, domain] if domain and domain != address else [address]
        found = self._ses.get_identity_verification_attributes(Identities=identities)
        attributes = found.get("VerificationAttributes") or {}
        statuses = [
            _STATUS.get(str(attributes[i].get("VerificationStatus")), "pending")
            for i in identities
            if i in attributes
        ]
        if "verified" in statuses:
            return "verified"
        return statuses[0] if statuses else "not_found"
