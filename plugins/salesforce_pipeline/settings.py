"""Pipeline settings: one JSON Airflow Variable, validated before any call to Salesforce.

The Variable `salesforce_to_postgres` (or the environment variable
`AIRFLOW_VAR_SALESFORCE_TO_POSTGRES`) holds a JSON object; every key is optional:

    {
      "salesforce_conn_id": "salesforce_default",
      "postgres_conn_id": "postgres_warehouse",
      "lookback_minutes": 10,
      "chunk_size": 10000,
      "rest_batch_size": 2000,
      "bulk_threshold": 50000,
      "bulk_page_size": 50000,
      "bulk_poll_seconds": 2.0,
      "api_budget_share": 0.5,
      "extra_fields": {"Account": ["Health_Score__c", "Tier__c"], "Contact": ["Account.Name"]}
    }
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import OBJECTS

VARIABLE_NAME = "salesforce_to_postgres"

# A SOQL field name, or a relationship path of them (`Account.Name`). Anything else, such as
# `Id FROM User--` or `Name,(SELECT`, would change the query's meaning and is refused.
_SOQL_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79}){0,4}$")


class SettingsError(SalesforcePipelineError):
    """The pipeline's configuration is invalid; found before anything is extracted."""

    retryable = False


def is_soql_identifier(name: str) -> bool:
    return bool(_SOQL_IDENTIFIER.match(name))


@dataclass(frozen=True)
class PipelineSettings:
    salesforce_conn_id: str = "salesforce_default"
    postgres_conn_id: str = "postgres_warehouse"
    lookback_minutes: int = 10
    chunk_size: int = 10_000
    rest_batch_size: int = 2000
    bulk_threshold: int = 50_000
    # Records per Bulk API 2.0 results page: one API call each, so large; held as text, one page at a time.
    bulk_page_size: int = 50_000
    bulk_poll_seconds: float = 2.0
    api_budget_share: float = 0.5
    extra_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PipelineSettings:
        """Validate a settings mapping; every problem is named with how to fix it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SettingsError(
                f"Unknown setting(s) {unknown} in Variable {VARIABLE_NAME!r}; known settings: {sorted(known)}"
            )
        values = dict(raw)
        for name in ("lookback_minutes", "chunk_size", "rest_batch_size", "bulk_threshold", "bulk_page_size"):
            if name in values and (not isinstance(values[name], int) or values[name] < 0):
                raise SettingsError(f"Setting {name!r} must be a non-negative integer, got {values[name]!r}")
        if not 200 <= values.get("rest_batch_size", 2000) <= 2000:
            raise SettingsError("Setting 'rest_batch_size' must be between 200 and 2000 (Salesforce's range)")
        if values.get("chunk_size", 1) < 1:
            raise SettingsError("Setting 'chunk_size' must be at least 1")
        if not 1 <= values.get("bulk_page_size", 50_000) <= 1_000_000:
            raise SettingsError("Setting 'bulk_page_size' must be between 1 and 1,000,000 records")
        share = values.get("api_budget_share", 0.5)
        if not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise SettingsError(f"Setting 'api_budget_share' must be a number in (0, 1], got {share!r}")
        values["extra_fields"] = _validate_extra_fields(values.get("extra_fields", {}))
        return cls(**values)


def _validate_extra_fields(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise SettingsError("Setting 'extra_fields' must map an object name to a list of field names")
    result: dict[str, tuple[str, ...]] = {}
    for sobject, names in raw.items():
        if sobject not in OBJECTS:
            raise SettingsError(
                f"Setting 'extra_fields' names object {sobject!r}; this pipeline extracts {sorted(OBJECTS)}"
            )
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise SettingsError(f"Setting 'extra_fields.{sobject}' must be a list of field names")
        bad = [n for n in names if not is_soql_identifier(n)]
        if bad:
            raise SettingsError(
                f"Setting 'extra_fields.{sobject}' has {bad!r}, which is not a SOQL field name; use API "
                "names such as Health_Score__c or a relationship path such as Account.Name"
            )
        result[sobject] = tuple(dict.fromkeys(names))
    return result


def load_settings() -> PipelineSettings:
    """Read the settings Variable at task run time (never at DAG parse time)."""
    from airflow.sdk import Variable

    raw = Variable.get(VARIABLE_NAME, default=None)
    if raw is None or raw == "":
        return PipelineSettings()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"Variable {VARIABLE_NAME!r} is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise SettingsError(f"Variable {VARIABLE_NAME!r} must be a JSON object")
    return PipelineSettings.from_mapping(raw)
