"""Fixtures for the emulator's own tests.

The project's tests/conftest.py enables ``salesforce_emulator.pytest_plugin``; importing the
fixtures here as well keeps this directory runnable on its own (``pytest tests/salesforce_emulator``).
"""

from __future__ import annotations

import datetime as dt

import pytest

from salesforce_emulator.pytest_plugin import (  # noqa: F401 - fixtures, found by name
    sf_emulator,
    sf_emulator_ca,
    sf_emulator_factory,
)
from salesforce_emulator.store import Org

NOW = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def org() -> Org:
    """A small in-process org (no server) with a fixed clock."""
    org = Org(accounts=20, contacts=60, seed=5, now=NOW)
    org.set_clock(NOW)
    return org
