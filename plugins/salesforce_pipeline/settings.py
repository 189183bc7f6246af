"""Pipeline settings: one JSON Airflow Variable, validated whole before any call to Salesforce.

The Variable `salesforce_to_postgres` (or the environment variable
`AIRFLOW_VAR_SALESFORCE_TO_POSTGRES`) holds a JSON object; every key is optional:

    {
      "salesforce_conn_id": "salesforce_default",
      "postgres_conn_id": "postgres_warehouse",
      "lookback_minutes": 10,
      "chunk_size": 10000,
      "rest_batch_size": 2000,
      "bulk_threshold": 50000,
      "bulk_page_size": 25000,
      "bulk_poll_seconds": 2.0,
      "bulk_max_wait_seconds": 3600,
      "api_budget_share": 0.5,
      "lock_timeout_seconds": 10,
      "statement_timeout_seconds": 3600,
      "object_lock_wait_seconds": 3600,
      "max_parallel_slices": 4,
      "slice_records": 50000,
      "checkpoint_ttl_hours": 72,
      "sweep": "weekly",
      "fields": {"Account": "default", "Contact": "default"},
      "calculated_refresh": "daily",
      "extra_fields": {"Account": ["Health_Score__c", "Tier__c"], "Contact": ["Account.Name"]},
      "max_active_loads": 2,
      "pool": "default_pool",
      "queue": "salesforce"
    }

With many orgs, the same document lists them under `orgs`, each overriding any of these for
itself (see registry.py); `max_active_loads`, `pool` and `queue` are read when the DAG file is
parsed.

Every setting has a type and a range with an upper bound (`RULES`); one SettingsError lists
every problem found, so a fix is made once, not once per problem.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from salesforce_pipeline.errors import SalesforcePipelineError
from salesforce_pipeline.objects import OBJECTS

log = logging.getLogger(__name__)

VARIABLE_NAME = "salesforce_to_postgres"

# A SOQL field name, or a relationship path of them (`Account.Name`). Anything else, such as
# `Id FROM User--` or `Name,(SELECT`, would change the query's meaning and is refused.
_SOQL_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79}){0,4}$")


class SettingsError(SalesforcePipelineError):
    """The pipeline's configuration is invalid; found before anything is extracted."""

    retryable = False


def is_soql_identifier(name: str) -> bool:
    """Whether ``name`` is a field name or relationship path SOQL accepts as is."""
    return bool(_SOQL_IDENTIFIER.match(name))


# Values are shown in messages cut short: a setting pasted by mistake (a whole JSON document, a
# 5,000-digit number that Python refuses to print) must not flood the log or fail the error itself.
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = 60


def _shown(value: Any) -> str:
    try:
        return _SHOWN.repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return "a number too long to print"


@dataclass(frozen=True)
class Rule:
    """A numeric setting's type and inclusive range, and what it is for (said in its message)."""

    kind: type
    low: float
    high: float
    why: str = ""

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is not valid for setting ``name``, or None."""
        # bool is an int in Python, and `true` in JSON is never meant as a number.
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind is int and (not numeric or not isinstance(value, int)):
            return (
                f"{name} must be a whole number between {self.low:,} and {self.high:,}, got {_shown(value)}"
            )
        if not numeric or value != value:  # NaN too
            return f"{name} must be a number between {self.low:g} and {self.high:g}, got {_shown(value)}"
        if not self.low <= value <= self.high:
            low, high = (
                (f"{self.low:,}", f"{self.high:,}")
                if self.kind is int
                else (f"{self.low:g}", f"{self.high:g}")
            )
            return f"{name} must be between {low} and {high}{self.why}, got {_shown(value)}"
        return None


RULES: dict[str, Rule] = {
    "lookback_minutes": Rule(int, 0, 10_080, " (at most a week)"),
    "chunk_size": Rule(int, 1, 100_000, " (records held in memory at once)"),
    "rest_batch_size": Rule(int, 200, 2000, " (Salesforce's range)"),
    "bulk_threshold": Rule(int, 0, 100_000_000),
    "bulk_page_size": Rule(int, 1, 1_000_000, " (Salesforce's maxRecords)"),
    # Above zero: every poll is an API call, so no pause at all would spend the day's budget.
    "bulk_poll_seconds": Rule(float, 0.01, 300),
    "bulk_max_wait_seconds": Rule(float, 1, 86_400),
    "api_budget_share": Rule(float, 0.01, 1, " (the share of the remaining daily API calls a run may use)"),
    "lock_timeout_seconds": Rule(float, 0.1, 600),
    "statement_timeout_seconds": Rule(float, 1, 86_400),
    "object_lock_wait_seconds": Rule(float, 1, 86_400),
    "max_active_loads": Rule(int, 1, 16, " (object loads of one org at once)"),
    # Each REST slice holds a query cursor while it reads, and Salesforce keeps 10 per user.
    "max_parallel_slices": Rule(
        int, 1, 8, " (slices of one load read at once; Salesforce keeps 10 cursors per user)"
    ),
    "slice_records": Rule(int, 100, 100_000_000, " (records per slice of a large load)"),
    "checkpoint_ttl_hours": Rule(int, 1, 336, " (Salesforce keeps Bulk job results for days, not longer)"),
}
SWEEP_CADENCES = ("daily", "weekly", "off")
# "default": the documented field list of objects.py (plus extra_fields); "all": every field
# describe shows the integration user, new ones included as they appear (schema_drift.py).
FIELD_CHOICES = ("default", "all")
CALCULATED_REFRESH_CADENCES = ("daily", "weekly", "off")
# Airflow's own rule for a connection id (airflow.models.connection.RE_SANITIZE_CONN_ID and
# CONN_ID_MAX_LEN), matched whole: Airflow's `$` would also let a trailing newline through.
_CONN_ID = re.compile(r"[\w#!()\-.:/\\]{1,250}")
CONN_ID_SETTINGS = ("salesforce_conn_id", "postgres_conn_id")
# Set per org by the registry (registry.py), never at the top level of the Variable.
ORG_ONLY = ("org", "schema", "enabled")


@dataclass(frozen=True)
class PipelineSettings:
    """The pipeline's settings for one org, from Variable ``salesforce_to_postgres`` (docs in the module)."""

    salesforce_conn_id: str = "salesforce_default"
    postgres_conn_id: str = "postgres_warehouse"
    lookback_minutes: int = 10
    chunk_size: int = 10_000
    rest_batch_size: int = 2000
    bulk_threshold: int = 50_000
    # Records per Bulk API 2.0 results page: one API call each, so large; but each parallel Bulk
    # slice holds its page as text while it is parsed, and its COPY text after. Measured at
    # 300,000 Contacts: the task process peaked at 245 MB against 288 MB with 50,000, for 7 more calls.
    bulk_page_size: int = 25_000
    bulk_poll_seconds: float = 2.0
    bulk_max_wait_seconds: float = 3600.0
    api_budget_share: float = 0.5
    lock_timeout_seconds: float = 10.0
    statement_timeout_seconds: float = 3600.0
    object_lock_wait_seconds: float = 3600.0
    # A load of more than slice_records records is split into SystemModstamp slices read up to
    # max_parallel_slices at once; their progress is checkpointed, and kept checkpoint_ttl_hours.
    max_parallel_slices: int = 4
    slice_records: int = 50_000
    checkpoint_ttl_hours: int = 72
    sweep: str = "weekly"
    # Per object: "default" or "all" (a plain "all" in the Variable applies to every object).
    fields: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(OBJECTS, "default"))
    # How often formula and roll-up fields (describe's `calculated`) are read again.
    calculated_refresh: str = "daily"
    extra_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Read when the DAG file is parsed: concurrent object loads of one org, and the Airflow pool
    # that caps extraction across all orgs.
    max_active_loads: int = 2
    pool: str = "default_pool"
    # The executor queue of every extraction task (CeleryExecutor: a worker must serve it).
    queue: str = "salesforce"
    # Which org these settings are for, and where its tables live (registry.py fills these in).
    org: str = "default"
    schema: str = "salesforce"
    enabled: bool = True

    def all_fields(self, sobject: str) -> bool:
        """Whether every field describe shows is extracted for ``sobject`` (setting ``fields``)."""
        return self.fields.get(sobject, "default") == "all"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], **org: Any) -> PipelineSettings:
        """Validate a settings mapping; one error names every problem and how to fix it."""
        values, problems = validate(raw)
        if problems:
            raise SettingsError(problem_report(problems))
        return cls(**values, **org)


def problem_report(problems: list[str], org: str | None = None) -> str:
    """One error message listing every problem found in the settings, numbered."""
    # One numbered line each: the messages have semicolons of their own.
    where = f" for org {org!r}" if org else ""
    return (
        f"Variable {VARIABLE_NAME!r} has {len(problems)} problem(s){where}; nothing was extracted:"
        + "".join(f"\n  {n}. {problem}" for n, problem in enumerate(problems, 1))
    )


def validate(
    raw: Mapping[str, Any], where: str = "", allowed: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[str]]:
    """The valid settings in `raw` and a problem for each one that is not.

    `where` prefixes every setting's name in the messages (`orgs.acme.`); `allowed` are further
    keys the caller reads itself (an org entry's `schema` and `enabled`).
    """
    defaults = {f.name: f.default for f in fields(PipelineSettings) if f.name not in ORG_ONLY}
    values = {k: v for k, v in raw.items() if k in defaults}
    problems = _unknown_setting_problems(raw, {**defaults, **dict.fromkeys(allowed)}, where)
    for name, rule in RULES.items():
        problem = rule.problem(where + name, values[name]) if name in values else None
        if problem:
            problems.append(
                f"{problem}; set it in that range, or remove it for the default {defaults[name]!r}"
            )
        elif name in values and rule.kind is float:
            values[name] = float(values[name])  # JSON `10` means 10.0; the pipeline formats floats
    for name in (*CONN_ID_SETTINGS, "pool", "queue"):
        if name in values and not (isinstance(values[name], str) and _CONN_ID.fullmatch(values[name])):
            kind = {"pool": "an Airflow pool name", "queue": "a queue name"}.get(
                name, "an Airflow connection id"
            )
            problems.append(
                f"{where}{name} must be {kind} (1 to 250 letters, digits and _ - . : / \\ # ! "
                f"( )), got {_shown(values[name])}; or remove it for the default {defaults[name]!r}"
            )
    if "sweep" in values and values["sweep"] not in SWEEP_CADENCES:
        problems.append(
            f"{where}sweep must be one of {list(SWEEP_CADENCES)} (how often the drift sweep runs), "
            f"got {_shown(values['sweep'])}; or remove it for the default {defaults['sweep']!r}"
        )
    if "calculated_refresh" in values and values["calculated_refresh"] not in CALCULATED_REFRESH_CADENCES:
        problems.append(
            f"{where}calculated_refresh must be one of {list(CALCULATED_REFRESH_CADENCES)} (how often formula "
            f"and roll-up fields are read again), got {_shown(values['calculated_refresh'])}; or remove it "
            f"for the default {defaults['calculated_refresh']!r}"
        )
    if "fields" in values:
        values["fields"], field_problems = _validate_fields(values["fields"], where)
        problems += field_problems
    if "extra_fields" in values:
        values["extra_fields"], extra_problems = _validate_extra_fields(values["extra_fields"], where)
        problems += extra_problems
    return values, problems


def _validate_fields(raw: Any, where: str = "") -> tuple[dict[str, str], list[str]]:
    where = f"{where}fields"
    if isinstance(raw, str) and raw in FIELD_CHOICES:
        return dict.fromkeys(OBJECTS, raw), []
    if not isinstance(raw, Mapping):
        return {}, [
            f"{where} must be {' or '.join(map(repr, FIELD_CHOICES))}, or map an object name to one of "
            f'them (e.g. {{"Contact": "all"}}), got {_shown(raw)}'
        ]
    result = dict.fromkeys(OBJECTS, "default")
    problems = []
    for sobject, choice in raw.items():
        if sobject not in OBJECTS:
            problems.append(
                f"{where} names object {_shown(sobject)}; this pipeline extracts {sorted(OBJECTS)}"
            )
        elif choice not in FIELD_CHOICES:
            problems.append(
                f"{where}.{sobject} must be {' or '.join(map(repr, FIELD_CHOICES))}, got {_shown(choice)}"
            )
        else:
            result[sobject] = choice
    return result, problems


def _unknown_setting_problems(raw: Mapping[str, Any], known: Mapping[str, Any], where: str = "") -> list[str]:
    # Only the names are shown, never the values: an unknown key may hold anything.
    problems = []
    for name in sorted(set(raw) - set(known), key=str):
        close = difflib.get_close_matches(str(name), list(known), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known settings: {sorted(known)}"
        problems.append(f"unknown setting {where}{_shown(name)}; {hint}")
    return problems


def _validate_extra_fields(raw: Any, where: str = "") -> tuple[dict[str, tuple[str, ...]], list[str]]:
    where = f"{where}extra_fields"
    if not isinstance(raw, Mapping):
        return {}, [f"{where} must map an object name to a list of field names, got {_shown(raw)}"]
    result: dict[str, tuple[str, ...]] = {}
    problems = []
    for sobject, names in raw.items():
        if sobject not in OBJECTS:
            problems.append(f"{where} names object {sobject!r}; this pipeline extracts {sorted(OBJECTS)}")
            continue
        if (
            isinstance(names, str)
            or not isinstance(names, list)
            or not all(isinstance(n, str) for n in names)
        ):
            problems.append(f"{where}.{sobject} must be a list of field names, got {_shown(names)}")
            continue
        bad = [n for n in names if not is_soql_identifier(n)]
        if bad:
            problems.append(
                f"{where}.{sobject} has {bad!r}, which is not a SOQL field name; use API names such "
                "as Health_Score__c or a relationship path such as Account.Name"
            )
            continue
        result[sobject] = tuple(dict.fromkeys(names))
    return result, problems


def selected_objects(requested: Any) -> list[str]:
    """The objects a run loads, from its `objects` param: None means all; empty is a mistake."""
    if requested is None:
        return list(OBJECTS)
    # An empty list once meant "everything" (`or OBJECTS`); a run that loads what was not asked
    # for is worse than one refused, so only None (param not given) means all.
    if not isinstance(requested, list) or not requested:
        raise SettingsError(
            f"param 'objects' must be a non-empty list chosen from {list(OBJECTS)}, got {_shown(requested)}; "
            "leave it out to load every object"
        )
    unknown = [name for name in requested if not isinstance(name, str) or name not in OBJECTS]
    if unknown:
        raise SettingsError(f"param 'objects' names {_shown(unknown)}; choose from {list(OBJECTS)}")
    return [name for name in OBJECTS if name in requested]


def check_connections(settings: PipelineSettings) -> None:
    """Both connections exist (UI, CLI, environment or secrets backend), before any call is made."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    missing = []
    for name in CONN_ID_SETTINGS:
        conn_id = getattr(settings, name)
        _say_if_shadowed(conn_id)
        try:
            BaseHook.get_connection(conn_id)
        # What the task SDK raises when no backend has the id; any other failure is not "missing".
        except AirflowNotFoundException:
            missing.append(f"{name} {conn_id!r} (e.g. AIRFLOW_CONN_{conn_id.upper()})")
    if missing:
        raise SettingsError(
            f"Airflow has no connection for {' and '.join(missing)}. Create it in the UI (Admin -> "
            "Connections), with `airflow connections add`, or as an AIRFLOW_CONN_<ID> environment "
            f"variable; or set the id in Variable {VARIABLE_NAME!r}."
        )


def _say_if_shadowed(conn_id: str) -> None:
    # Airflow reads AIRFLOW_CONN_<ID> before its database, and the UI does not list it: a user
    # who edits the connection of the same id in the UI would change nothing that runs.
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    if variable in os.environ:
        log.warning(
            "connection %r comes from the environment variable %s, which hides any connection with the "
            "same id saved in the Airflow UI or database; unset it to use the one saved there",
            conn_id,
            variable,
        )


def raw_settings() -> Mapping[str, Any]:
    """The settings Variable as a mapping, unvalidated (empty when it is not set)."""
    from airflow.sdk import Variable

    raw = Variable.get(VARIABLE_NAME, default=None)
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError, or a number with more digits than Python reads
            raise SettingsError(f"Variable {VARIABLE_NAME!r} is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise SettingsError(f"Variable {VARIABLE_NAME!r} must be a JSON object")
    return raw
