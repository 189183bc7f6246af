"""Fields that appear, disappear or change type in Salesforce, and what the warehouse does about it.

Each run compares the fields it selects (describe, through the settings) with the table's field
catalog, `<schema>.field_catalog`:

* **appeared** (added in Salesforce under ``fields: "all"``, or newly configured): the column is
  added (``ALTER TABLE ADD COLUMN``, typed from describe) and, once the run's load is committed,
  filled for every existing row by a re-read of `Id` plus the new fields only
  (:mod:`salesforce_pipeline.column_refresh`), with no full refresh;
* **disappeared** (deleted, or hidden by field-level security): the column and its values stay,
  never dropped; extraction goes on without it;
* **changed type**: the column is widened when its type cannot hold the new kind (a number that
  became text, an integer that became a decimal), never narrowed, so the load never fails on it;
* each change is logged and recorded once in `<schema>.schema_changes` (org, object, field,
  change, when, run).

A table that has no catalog yet (its first run since this was added) is catalogued as it is:
only fields whose column it lacks count as new, so an upgrade costs no re-read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.sql_files import sql_template
from salesforce_pipeline.transform import snake_case
from salesforce_pipeline.warehouse import Waits, holds, lock_object, run_ddl, table_columns

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.extract import FieldPlan
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import ObjectSpec
    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogedField:
    """A field as the catalog (or, for a selected one, this run's describe) knows it."""

    field: str
    column: str
    kind: str
    salesforce_type: str
    calculated: bool = False
    present: bool = True


@dataclass
class Drift:
    """What changed between the catalog and this run's selection."""

    selected: list[CatalogedField]
    added: list[CatalogedField] = field(default_factory=list)
    restored: list[CatalogedField] = field(default_factory=list)
    removed: list[CatalogedField] = field(default_factory=list)
    retyped: list[tuple[CatalogedField, CatalogedField]] = field(default_factory=list)
    widened: dict[str, str] = field(default_factory=dict)  # column -> the type it was widened to
    first_catalog: bool = False

    @property
    def to_fill(self) -> list[CatalogedField]:
        """Fields whose column must be filled for the existing rows (new, or back after a gap)."""
        return [*self.added, *self.restored]

    @property
    def calculated(self) -> list[CatalogedField]:
        """The selected formula and roll-up fields."""
        return [f for f in self.selected if f.calculated]


def selected_fields(plan: FieldPlan, describe: Mapping[str, Any]) -> list[CatalogedField]:
    """This run's fields as catalog entries, typed and flagged calculated from describe."""
    by_name = {f["name"]: f for f in describe.get("fields", [])}
    selected = []
    for name in plan.fields:
        described = by_name.get(name, {})  # a relationship path (Account.Name) is described elsewhere
        selected.append(
            CatalogedField(
                field=name,
                column=snake_case(name),
                kind=plan.kinds[name],
                salesforce_type=str(described.get("type", "reference path")),
                calculated=bool(described.get("calculated", False)),
            )
        )
    return selected


def compare(
    catalog: Mapping[str, CatalogedField],
    selected: Sequence[CatalogedField],
    visible: set[str],
    columns: set[str],
) -> Drift:
    """The drift from ``catalog`` to ``selected`` (``visible``: every field describe shows;
    ``columns``: the table's columns before this run)."""
    drift = Drift(selected=list(selected), first_catalog=not catalog)
    if not catalog:
        drift.added = [f for f in selected if f.column not in columns]
        return drift
    for chosen in selected:
        known = catalog.get(chosen.field)
        if known is None:
            drift.added.append(chosen)
        elif not known.present:
            drift.restored.append(chosen)
        elif known.kind != chosen.kind:
            drift.retyped.append((known, chosen))
    drift.removed = [
        f for f in catalog.values() if f.present and f.field not in visible and "." not in f.field
    ]
    return drift


def read_catalog(conn: PgConnection, schema: str, sobject: str) -> dict[str, CatalogedField]:
    """The catalog's entries for ``sobject``, by field name."""
    from psycopg2 import sql

    with conn.cursor() as cur:
        cur.execute(
            sql_template("field_catalog.sql", catalog=sql.Identifier(schema, "field_catalog")),
            {"sobject": sobject},
        )
        rows = cur.fetchall()
    conn.commit()
    return {row[0]: CatalogedField(*row) for row in rows}


def prepare(
    conn: PgConnection,
    settings: PipelineSettings,
    spec: ObjectSpec,
    plan: FieldPlan,
    describe: Mapping[str, Any],
    waits: Waits,
) -> Drift:
    """Compare, and widen any column whose type changed beyond what it holds (before the load)."""
    selected = selected_fields(plan, describe)
    columns = {name: type_ for name, type_, *_ in table_columns(conn, settings.schema, spec.table)}
    catalog = read_catalog(conn, settings.schema, spec.name)
    visible = {f["name"] for f in describe.get("fields", [])}
    drift = compare(catalog, selected, visible, set(columns))
    to_widen = {
        new.column: _wider_type(columns[new.column], new.kind)
        for _, new in drift.retyped
        if new.column in columns and not holds(columns[new.column], new.kind)
    }
    if to_widen:
        _widen(conn, settings.schema, spec.table, to_widen, waits)
        drift.widened = to_widen
    return drift


def _wider_type(actual: str, kind: str) -> str:
    """The narrowest type that holds both what the column held and the new kind."""
    return "numeric" if actual == "bigint" and kind == "numeric" else "text"


def _widen(conn: PgConnection, schema: str, table: str, columns: Mapping[str, str], waits: Waits) -> None:
    from psycopg2 import sql

    def alter(cur: Any) -> None:
        lock_object(cur, f"{schema}.{table}", waits.object_lock_wait, waits.lock_timeout)
        for column, wider in columns.items():
            cur.execute(
                sql_template(
                    "widen_column.sql",
                    target=sql.Identifier(schema, table),
                    column=sql.Identifier(column),
                    wider=sql.SQL(wider),
                )
            )

    run_ddl(conn, f"widening columns of {schema}.{table}", waits, alter)
    for column, wider in columns.items():
        log.warning(
            "%s.%s: column %s widened to %s (its Salesforce field changed type)", schema, table, column, wider
        )


def settle(
    drift: Drift,
    hook: SalesforcePipelineHook,
    conn: PgConnection,
    settings: PipelineSettings,
    spec: ObjectSpec,
    kinds: Mapping[str, str],
    *,
    full_refresh: bool,
    dag_run_id: str,
    waits: Waits,
) -> int:
    """Once the run's load is committed: fill the columns of fields that appeared, for every
    existing row, then record the changes; returns the rows filled.

    A full refresh read every field of every record already. A failure here leaves the committed
    load as it is and the catalog unchanged, so the next run fills the columns again.
    """
    from salesforce_pipeline import column_refresh

    filled = 0
    if drift.to_fill and not full_refresh:
        fields = [f.field for f in drift.to_fill]
        log.info("%s: filling new field(s) %s for every existing row", spec.name, ", ".join(fields))
        result = column_refresh.refresh_columns(
            hook, conn, settings, spec, fields, kinds, live_only=False, waits=waits
        )
        filled = result.updated
        log.info(
            "%s: new field(s) %s read for %d records (%s, %d API calls); %d rows filled",
            spec.name,
            ", ".join(fields),
            result.read,
            result.method,
            result.api_calls,
            result.updated,
        )
    record(conn, settings, spec, drift, dag_run_id, first_load=full_refresh)
    return filled


def record(
    conn: PgConnection,
    settings: PipelineSettings,
    spec: ObjectSpec,
    drift: Drift,
    dag_run_id: str,
    *,
    first_load: bool = False,
) -> None:
    """Write the changes to schema_changes and bring the catalog up to date (one transaction).

    A table's first load starts the catalog: its fields are where the table starts, not changes.
    """
    from psycopg2 import sql

    starting = first_load and drift.first_catalog
    changes = [
        *((f, "added", f"{f.salesforce_type} as {f.kind}") for f in drift.added if not starting),
        *((f, "restored", f"{f.salesforce_type} as {f.kind}") for f in drift.restored),
        *((f, "removed", "column and values kept") for f in drift.removed),
        *(
            (
                new,
                "retyped",
                f"{old.salesforce_type} -> {new.salesforce_type}" + _widened_note(drift, new.column),
            )
            for old, new in drift.retyped
        ),
    ]
    identifiers = {
        "catalog": sql.Identifier(settings.schema, "field_catalog"),
        "changes": sql.Identifier(settings.schema, "schema_changes"),
    }
    with conn.cursor() as cur:
        for entry, change, detail in changes:
            log.warning("%s.%s: field %s %s (%s)", settings.schema, spec.table, entry.field, change, detail)
            cur.execute(
                sql_template("record_schema_change.sql", **identifiers),
                {
                    "org": settings.org,
                    "sobject": spec.name,
                    "field": entry.field,
                    "column_name": entry.column,
                    "change": change,
                    "detail": detail,
                    "dag_run_id": dag_run_id,
                },
            )
        for entry in drift.selected:
            cur.execute(
                sql_template("catalog_field.sql", **identifiers), _catalog_row(spec, entry, present=True)
            )
        for entry in drift.removed:
            cur.execute(
                sql_template("catalog_field.sql", **identifiers), _catalog_row(spec, entry, present=False)
            )
    conn.commit()


def _widened_note(drift: Drift, column: str) -> str:
    return f"; column widened to {drift.widened[column]}" if column in drift.widened else ""


def _catalog_row(spec: ObjectSpec, entry: CatalogedField, *, present: bool) -> dict[str, Any]:
    return {
        "sobject": spec.name,
        "field": entry.field,
        "column_name": entry.column,
        "kind": entry.kind,
        "salesforce_type": entry.salesforce_type,
        "calculated": entry.calculated,
        "present": present,
    }
