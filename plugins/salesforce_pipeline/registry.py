"""The org registry: every customer's Salesforce org the pipeline loads, each on its own.

Orgs are listed in the settings Variable under `orgs`; each entry names its Salesforce
connection and may override any setting for that org alone:

    {
      "postgres_conn_id": "postgres_warehouse",
      "lookback_minutes": 10,
      "orgs": {
        "acme":   {"salesforce_conn_id": "salesforce_acme"},
        "globex": {"salesforce_conn_id": "salesforce_globex", "schema": "globex",
                   "lookback_minutes": 30, "api_budget_share": 0.2, "enabled": false}
      }
    }

An org's tables, audit and rejects live in its own schema (default `salesforce_<key>`), and it
has its own DAG, `salesforce_org_<key>`. Without `orgs`, the one org of earlier releases runs as
before: connection `salesforce_default`, schema `salesforce`, DAG `salesforce_to_postgres`.

An org's run validates the top level and its own entry only: a mistake in another customer's
entry never stops it (`python -m salesforce_pipeline.registry` checks every entry at once).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from salesforce_pipeline.settings import (
    VARIABLE_NAME,
    PipelineSettings,
    SettingsError,
    problem_report,
    raw_settings,
    validate,
)

LEGACY_ORG = "default"
LEGACY_SCHEMA = "salesforce"
LEGACY_DAG_ID = "salesforce_to_postgres"
# Lower case, so the schema and the DAG id need no quoting and no two keys differ only in case.
ORG_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Postgres' own schemas, and the schema the pipeline keeps its org list and status view in.
SHARED_SCHEMA = "salesforce_pipeline"
RESERVED_SCHEMAS = frozenset({"public", "information_schema", SHARED_SCHEMA})
ENTRY_ONLY = ("schema", "enabled")


def dag_id(org: str) -> str:
    """The DAG id of an org key (the single org keeps ``salesforce_to_postgres``)."""
    return LEGACY_DAG_ID if org == LEGACY_ORG else f"salesforce_org_{org}"


def default_schema(org: str) -> str:
    """The warehouse schema an org gets unless its entry names one."""
    return f"salesforce_{org}"


@dataclass(frozen=True)
class RegisteredOrg:
    """What the DAG file needs to know about an org when it is parsed."""

    key: str
    schema: str
    enabled: bool
    max_active_loads: int
    pool: str
    queue: str

    @property
    def dag_id(self) -> str:
        """This org's DAG id."""
        return dag_id(self.key)


def registered_orgs(raw: Mapping[str, Any] | None) -> list[RegisteredOrg]:
    """Every org with a usable key, for the DAG file; never raises.

    An entry whose settings are wrong still gets its DAG, so that its runs fail with the message
    that names the mistake; a key that cannot name a DAG is left out (the check command names it).
    `raw` None (the Variable could not be read) or without `orgs` means the single legacy org.
    """
    base = PipelineSettings()
    top = _parse_time_values(raw or {}, base)
    orgs = (raw or {}).get("orgs")
    if not isinstance(orgs, Mapping):
        return [
            RegisteredOrg(LEGACY_ORG, LEGACY_SCHEMA, True, top["max_active_loads"], top["pool"], top["queue"])
        ]
    found = []
    for key, entry in orgs.items():
        if not (isinstance(key, str) and ORG_KEY.fullmatch(key)):
            continue
        entry = entry if isinstance(entry, Mapping) else {}
        values = _parse_time_values(entry, base, top)
        schema = entry.get("schema")
        found.append(
            RegisteredOrg(
                key=key,
                schema=schema if isinstance(schema, str) else default_schema(key),
                enabled=entry.get("enabled", True) is not False,
                max_active_loads=values["max_active_loads"],
                pool=values["pool"],
                queue=values["queue"],
            )
        )
    return sorted(found, key=lambda org: org.key)


def _parse_time_values(raw: Mapping[str, Any], base: PipelineSettings, inherited=None) -> dict[str, Any]:
    values = dict(
        inherited or {"max_active_loads": base.max_active_loads, "pool": base.pool, "queue": base.queue}
    )
    subset = {k: raw[k] for k in ("max_active_loads", "pool", "queue") if k in raw}
    checked, problems = validate(subset)
    if not problems:
        values.update(checked)
    return values


def org_settings(raw: Mapping[str, Any], org: str) -> PipelineSettings:
    """The validated settings of one org: the top level, with its entry's overrides.

    Raises SettingsError naming the org and every problem of the top level and of its entry
    (including a schema or connection it shares with another entry); other entries are not read.
    """
    orgs = raw.get("orgs")
    top, problems = validate({k: v for k, v in raw.items() if k != "orgs"})
    if org == LEGACY_ORG and orgs is None:
        if problems:
            raise SettingsError(problem_report(problems))
        return PipelineSettings(**top)
    if not isinstance(orgs, Mapping):
        problems.append(
            f'orgs must map each org key to its entry, e.g. {{"acme": {{"salesforce_conn_id": '
            f'"salesforce_acme"}}}}; got {type(orgs).__name__}'
        )
        raise SettingsError(problem_report(problems, org))
    if org not in orgs:
        raise SettingsError(
            f"org {org!r} is not in the registry (Variable {VARIABLE_NAME!r}, key 'orgs'): it was removed "
            f"or renamed, so DAG {dag_id(org)} has nothing to run. Its tables are kept; add the entry back "
            "to run it again."
        )
    entry, entry_problems = _entry(org, orgs[org])
    problems += entry_problems + _conflicts(org, orgs)
    if problems:
        raise SettingsError(problem_report(problems, org))
    overrides = {k: v for k, v in entry.items() if k not in ENTRY_ONLY}
    return replace(
        PipelineSettings(**{**top, **overrides}),
        org=org,
        schema=entry.get("schema", default_schema(org)),
        enabled=entry.get("enabled", True),
        salesforce_conn_id=overrides.get("salesforce_conn_id", f"salesforce_{org}"),
    )


def _entry(org: str, entry: Any) -> tuple[dict[str, Any], list[str]]:
    where = f"orgs.{org}."
    if not ORG_KEY.fullmatch(org):
        return {}, [
            f"org key {org!r} must be 1 to 40 lower-case letters, digits and _, starting with a letter "
            "(it names the org's schema and DAG)"
        ]
    if not isinstance(entry, Mapping):
        return {}, [f'orgs.{org} must be an object such as {{"salesforce_conn_id": "salesforce_{org}"}}']
    values, problems = validate(entry, where, allowed=ENTRY_ONLY)
    schema = entry.get("schema", default_schema(org))
    if not (isinstance(schema, str) and SCHEMA_NAME.fullmatch(schema)):
        problems.append(
            f"{where}schema must be a lower-case Postgres name (letters, digits, _; at most 63), got "
            f"{schema!r}; or remove it for the default {default_schema(org)!r}"
        )
    elif schema in RESERVED_SCHEMAS or schema.startswith("pg_"):
        problems.append(f"{where}schema {schema!r} is reserved; choose another, e.g. {default_schema(org)!r}")
    if "enabled" in entry and not isinstance(entry["enabled"], bool):
        problems.append(f"{where}enabled must be true or false, got {entry['enabled']!r}")
    values.update({k: entry[k] for k in ENTRY_ONLY if k in entry})
    return values, problems


def _identity(org: str, entry: Any) -> tuple[Any, Any]:
    if not isinstance(entry, Mapping):
        return None, None
    return entry.get("schema", default_schema(org)), entry.get("salesforce_conn_id", f"salesforce_{org}")


def _conflicts(org: str, orgs: Mapping[str, Any]) -> list[str]:
    """Two entries must not share a schema (their rows would mix) or a connection (same org twice)."""
    schema, conn_id = _identity(org, orgs[org])
    problems = []
    for other, entry in orgs.items():
        if other == org:
            continue
        other_schema, other_conn = _identity(other, entry)
        if schema is not None and other_schema == schema:
            problems.append(
                f"orgs.{org} and orgs.{other} both load into schema {schema!r}; give each org its own schema"
            )
        if conn_id is not None and other_conn == conn_id:
            problems.append(
                f"orgs.{org} and orgs.{other} both use connection {conn_id!r}, so they would load the same "
                "Salesforce org twice; remove one entry or give each its own connection"
            )
    return problems


def registry_problems(raw: Mapping[str, Any]) -> dict[str, str]:
    """Every org's problems at once, by org key ('' for the top level); empty when all is well."""
    orgs = raw.get("orgs")
    keys = list(orgs) if isinstance(orgs, Mapping) else [LEGACY_ORG]
    found = {}
    for key in keys:
        try:
            org_settings(raw, str(key))
        except SettingsError as exc:
            found[str(key)] = str(exc)
    return found


def main(argv: list[str]) -> int:
    """`python -m salesforce_pipeline.registry [FILE]`: check a settings document (default: the
    Variable as Airflow sees it) and list each org's connection and schema."""
    import json
    from pathlib import Path

    try:
        raw = json.loads(Path(argv[0]).read_text()) if argv else raw_settings()
    except (OSError, ValueError, SettingsError) as exc:
        print(f"cannot read the settings: {exc}", file=sys.stderr)
        return 2
    problems = registry_problems(raw)
    for org in registered_orgs(raw):
        status = "PROBLEM" if org.key in problems else ("ok" if org.enabled else "disabled")
        print(f"{org.key:<24} {status:<9} DAG {org.dag_id:<40} schema {org.schema}")
    for text in problems.values():
        print(text, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
