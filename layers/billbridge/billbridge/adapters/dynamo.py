"""The DynamoDB store: the single import point for the repositories over the one app table.

The implementation is split by item family (dynamo_bills, dynamo_sync, dynamo_firms) over
shared plumbing (dynamo_common); docs/data-model.md describes every item and access pattern.
"""

from __future__ import annotations

from billbridge.adapters.dynamo_bills import DynamoBillRepository
from billbridge.adapters.dynamo_common import DynamoRepository, StoreUnavailable
from billbridge.adapters.dynamo_envelopes import DynamoEnvelopeRepository, DynamoSendingRepository
from billbridge.adapters.dynamo_firms import DynamoConnectionRepository, DynamoSettingsRepository
from billbridge.adapters.dynamo_links import DynamoPaymentLinkRepository
from billbridge.adapters.dynamo_sync import DynamoSyncRepository

__all__ = [
    "DynamoBillRepository",
    "DynamoConnectionRepository",
    "DynamoEnvelopeRepository",
    "DynamoPaymentLinkRepository",
    "DynamoRepository",
    "DynamoSendingRepository",
    "DynamoSettingsRepository",
    "DynamoSyncRepository",
    "StoreUnavailable",
]
