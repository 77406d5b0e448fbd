"""Unit tests run with the network blocked: they use only in-memory fakes."""

import pytest


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: None) -> None:
    return None
