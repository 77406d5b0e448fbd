"""The firm's settings (T1): read with defaults, replaced whole."""

from __future__ import annotations

from billbridge.domain.settings import FirmSettings, check_header_fields
from billbridge.services.ports import SettingsRepository


class SettingsService:
    def __init__(self, settings: SettingsRepository) -> None:
        self._settings = settings

    def get(self, firm_id: str) -> FirmSettings:
        return self._settings.get(firm_id)

    def put(self, firm_id: str, settings: FirmSettings) -> None:
        check_header_fields(settings)
        self._settings.put(firm_id, settings)
