"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from creditlake.ledger import Ledger
from tests.api_support import sqlite_url


@pytest.fixture
def ledger(tmp_path) -> Iterator[Ledger]:
    """A migrated SQLite ledger of the test's own (modules that need another one override it)."""
    led = Ledger(sqlite_url(tmp_path))
    yield led
    led.close()
