"""Rows of the fault matrix table, filled by tests/reliability and printed by tests/conftest.py."""

from __future__ import annotations

FAULT_MATRIX: list[dict] = []
