"""The bill PDF cache in S3 (implements services.ports.PdfStore): one object per bill version.

The key names the firm, the bill and a digest of Clio's etag, so a bill changed in Clio has a
new key (fetched again) and an unchanged one keeps its object (never fetched again). Old
versions are left to the bucket's lifecycle rule. See docs/data-model.md, "Bill PDFs".
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from billbridge.adapters.dynamo_common import error_code

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def pdf_key(firm_id: str, bill_id: int, etag: str) -> str:
    # The firm id is percent-encoded so no value can climb into another firm's prefix; the etag
    # (quoted, any characters) is hashed to a fixed-width name.
    version = hashlib.sha256(etag.encode("utf-8")).hexdigest()[:32]
    return f"bills/{quote(firm_id, safe='')}/{int(bill_id)}/{version}.pdf"


class S3PdfStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        # Requests made, for benchmarks and tests.
        self.gets = 0
        self.puts = 0

    def get(self, firm_id: str, bill_id: int, etag: str) -> bytes | None:
        self.gets += 1
        try:
            answer = self._client.get_object(
                Bucket=self._bucket, Key=pdf_key(firm_id, bill_id, etag)
            )
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None  # never stored, or expired by the lifecycle rule
            raise
        body: bytes = answer["Body"].read()
        return body

    def put(self, firm_id: str, bill_id: int, etag: str, pdf: bytes) -> None:
        self.puts += 1
        self._client.put_object(
            Bucket=self._bucket,
            Key=pdf_key(firm_id, bill_id, etag),
            Body=pdf,
            ContentType="application/pdf",
        )
