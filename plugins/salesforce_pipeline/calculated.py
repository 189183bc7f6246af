"""Formula and roll-up fields kept fresh (setting ``calculated_refresh``: daily, weekly or off).

Their values change without SystemModstamp (a Contact added to an Account changes its roll-up
count; a formula reads a parent or a custom setting), so no incremental run sees them change.
On the chosen cadence the sweep task reads `Id` plus the object's calculated fields of every record
(the recycle bin's too: the table keeps deleted rows) again and
updates only those columns of only the rows that differ (:mod:`salesforce_pipeline.column_refresh`).
It is audited as mode 'calculated_refresh': API calls, records read, rows updated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import audit, extract, schema_drift, warehouse
from salesforce_pipeline.column_refresh import refresh_columns
from salesforce_pipeline.sql_files import sql_template

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import ObjectSpec
    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

MODE = "calculated_refresh"
# A little under the period, so a daily run that starts a few minutes early still refreshes.
CADENCES = {"daily": timedelta(hours=20), "weekly": timedelta(days=6, hours=12)}


@dataclass
class CalculatedSummary:
    """What one refresh did (the task log, the audit row and the task's return value)."""

    sobject: str
    fields: tuple[str, ...] = ()
    read: int = 0
    updated: int = 0
    rejected: int = 0
    api_calls: int = 0
    method: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        """One log line with the figures."""
        return (
            f"{self.sobject} calculated refresh: fields={','.join(self.fields) or '-'} read={self.read} "
            f"updated={self.updated} rejected={self.rejected} api_calls={self.api_calls} "
            f"method={self.method or '-'} duration={self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain values."""
        return asdict(self)


def refresh_due(conn: PgConnection, schema: str, sobject: str, cadence: str, now: datetime) -> bool:
    """Whether the object's calculated fields were last refreshed ``cadence`` ago (or never)."""
    from psycopg2 import sql

    if cadence == "off":
        return False
    with conn.cursor() as cur:
        cur.execute(
            sql_template("calculated_refresh_due.sql", schema=sql.Identifier(schema)), {"sobject": sobject}
        )
        (last,) = cur.fetchone()
    conn.commit()
    return last is None or now - last >= CADENCES[cadence]


def refresh_calculated(
    spec: ObjectSpec,
    settings: PipelineSettings,
    hook: SalesforcePipelineHook,
    conn: PgConnection,
    *,
    dag_run_id: str,
    try_number: int | None = None,
) -> CalculatedSummary:
    """Re-read the object's selected calculated fields and update the rows whose values changed."""
    waits = warehouse.Waits.from_settings(settings)
    summary = CalculatedSummary(sobject=spec.name)
    plan = extract.plan_for(spec, settings, hook)
    describe = hook.describe_object(spec.name)  # cached by the hook
    columns = {name for name, *_ in warehouse.table_columns(conn, settings.schema, spec.table)}
    fields = [
        f
        for f in schema_drift.selected_fields(plan, describe)
        if f.calculated and "." not in f.field and f.column in columns
    ]
    summary.fields = tuple(f.field for f in fields)
    if not fields:
        log.info("%s: no formula or roll-up field is extracted; nothing to refresh", spec.name)
        return summary
    started_at = datetime.now(UTC)
    started = time.monotonic()
    attempt = audit.start_attempt(
        conn,
        settings.schema,
        dag_run_id=dag_run_id,
        sobject=spec.name,
        mode=MODE,
        method=None,
        window_start=None,
        window_end=started_at,
        started_at=started_at,
        try_number=try_number,
    )
    calls_before = hook.api_calls
    try:
        result = refresh_columns(
            hook, conn, settings, spec, summary.fields, plan.kinds, live_only=False, waits=waits
        )
    except BaseException as exc:
        failure = warehouse.translate(exc, f"{spec.name} calculated refresh", waits)
        summary.api_calls = hook.api_calls - calls_before
        _finish(attempt, summary, started, "failed", str(failure)[:2000])
        if failure is exc:
            raise
        raise failure from exc
    summary.read, summary.updated, summary.rejected = result.read, result.updated, result.rejected
    summary.api_calls, summary.method = result.api_calls, result.method
    _finish(attempt, summary, started, "success", None)
    log.info("%s", summary.line())
    return summary


def _finish(
    attempt: audit.Attempt, summary: CalculatedSummary, started: float, status: str, error: str | None
) -> None:
    summary.seconds = time.monotonic() - started
    try:
        attempt.finish(
            method=summary.method or None,
            extracted=summary.read,
            upserted=summary.updated,
            deleted=0,
            rejected=summary.rejected,
            api_calls=summary.api_calls,
            api_usage_after=None,
            salesforce_count=None,
            count_difference=None,
            count_note=f"calculated fields: {', '.join(summary.fields)}",
            live_salesforce=None,
            live_warehouse=None,
            live_difference=None,
            finished_at=datetime.now(UTC),
            status=status,
            error=error,
        )
    finally:
        attempt.close()
