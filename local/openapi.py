"""Writes the firm API's OpenAPI document (generated from the code) to a file: `make openapi`.

The committed copy is docs/openapi.json; a test fails when it and the code disagree."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from local.lambdas import function_specs, load_handler

PLACEHOLDER_ENV = {
    "TABLE_NAME": "unused",
    "TOKEN_KMS_KEY_ID": "unused",
    "CLIO_APP_SECRET_ARN": "unused",
    "CLIO_REDIRECT_URI": "https://example.invalid/clio/callback",
    "SYNC_FUNCTION_NAME": "unused",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def document() -> str:
    for key, value in PLACEHOLDER_ENV.items():
        os.environ.setdefault(key, value)
    spec = function_specs()["ApiFunction"]
    module = sys.modules[load_handler(spec).__module__]
    return json.dumps(json.loads(module.openapi_document()), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    text = document()
    if target:
        target.write_text(text)
    else:
        sys.stdout.write(text)
