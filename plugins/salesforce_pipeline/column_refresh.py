"""Read some fields of every record again and update just those columns of the rows that differ.

Two things need it: a field that appears (its new column is filled for every existing row,
without a full refresh), and formula and roll-up fields, whose values change without
SystemModstamp (so no incremental run sees them change). Either way the records are read as
`Id, SystemModstamp, IsDeleted` plus the fields (REST or Bulk 2.0 by count, within the run's API
budget), staged in a temporary table, and applied by one UPDATE that:

* never inserts a row and never writes another column;
* skips a row whose SystemModstamp is newer than the one read: a load after this read wrote it,
  with values at least as fresh (the upsert guard's rule);
* skips a row whose values are already those read, so only changed rows are rewritten.

The stage fills outside any lock (in a writer thread, overlapping the reading); the object's lock is
taken only for the UPDATE.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import budget, extract
from salesforce_pipeline.copy_format import copy_bytes
from salesforce_pipeline.sql_files import sql_template
from salesforce_pipeline.transform import snake_case, transform_columns
from salesforce_pipeline.warehouse import Waits, lock_object
from salesforce_pipeline.writer import BackgroundWriter

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
    from salesforce_pipeline.objects import ObjectSpec
    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

KEY_FIELDS = ("Id", "SystemModstamp")  # the row, and the stamp the guard compares


@dataclass
class RefreshResult:
    """What one re-read did: records read, rows rewritten, API calls spent, and how it read."""

    read: int = 0
    updated: int = 0
    rejected: int = 0
    api_calls: int = 0
    method: str = "rest"


def refresh_columns(
    hook: SalesforcePipelineHook,
    conn: PgConnection,
    settings: PipelineSettings,
    spec: ObjectSpec,
    fields: Sequence[str],
    kinds: Mapping[str, str],
    *,
    live_only: bool,
    waits: Waits,
) -> RefreshResult:
    """Re-read ``fields`` of every record (only live ones when ``live_only``) and update their
    columns where they differ; commits on success, rolls back on any failure."""
    result = RefreshResult()
    calls_before = hook.api_calls
    where = " WHERE IsDeleted = false" if live_only else ""
    count = hook.count(f"SELECT COUNT() FROM {spec.name}{where}", include_deleted=not live_only)
    result.method = budget.choose_method("auto", count, settings)
    allowed = budget.check_budget(hook, spec, count, result.method, settings)
    read_fields = [*KEY_FIELDS, *(f for f in fields if f not in KEY_FIELDS)]
    soql = f"SELECT {', '.join(read_fields)} FROM {spec.name}{where}"
    columns = [snake_case(f) for f in read_fields]
    from psycopg2.extensions import encodings

    encoding = encodings[conn.encoding]
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql_template(
                    "create_refresh_stage.sql",
                    stage=_stage(),
                    target=_target(settings, spec),
                    columns=_ids(columns),
                )
            )
            copy = sql_template("copy_from_stdin.sql", table=_stage(), columns=_ids(columns)).as_string(cur)
            progress = extract.Progress(f"{spec.name} re-read")
            job = (
                _bulk_limits(hook, settings, count, allowed, calls_before) if result.method == "bulk2" else {}
            )
            chunks = extract.chunks(
                hook, soql, read_fields, method=result.method, settings=settings, progress=progress, **job
            )
            # The stage fills in a writer thread while this one reads and transforms the next chunk.
            with BackgroundWriter(f"{spec.name} re-read writer") as writer:
                for chunk in chunks:
                    transformed = transform_columns(chunk, read_fields, kinds, key_prefix=spec.key_prefix)
                    result.read += chunk.count
                    result.rejected += len(transformed.rejects)
                    writer.submit(cur.copy_expert, copy, copy_bytes(transformed.frame, columns, (), encoding))
                    del transformed
            cur.execute(sql_template("analyze_table.sql", table=_stage()))
            lock_object(cur, f"{settings.schema}.{spec.table}", waits.object_lock_wait, waits.lock_timeout)
            cur.execute(_update(settings, spec, [snake_case(f) for f in fields]))
            result.updated = cur.rowcount
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        result.api_calls = hook.api_calls - calls_before
    return result


def _bulk_limits(
    hook: SalesforcePipelineHook, settings: PipelineSettings, count: int, allowed: int, calls_before: int
) -> dict[str, Any]:
    """Polls within what the budget has left after the pages (no job to resume: a re-read is short)."""
    pages = extract.bulk_page_calls(count, settings.bulk_page_size)
    spent = hook.api_calls - calls_before
    return {"max_polls": max(1, allowed - spent - 2 - pages), "max_wait": settings.bulk_max_wait_seconds}


def _update(settings: PipelineSettings, spec: ObjectSpec, columns: Sequence[str]) -> Any:
    from psycopg2 import sql

    return sql_template(
        "update_from_refresh_stage.sql",
        target=_target(settings, spec),
        stage=_stage(),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in columns
        ),
        differs=sql.SQL(" OR ").join(
            sql.SQL("t.{} IS DISTINCT FROM s.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in columns
        ),
    )


def _target(settings: PipelineSettings, spec: ObjectSpec) -> Any:
    from psycopg2 import sql

    return sql.Identifier(settings.schema, spec.table)


def _stage() -> Any:
    from psycopg2 import sql

    return sql.Identifier("column_refresh_stage")


def _ids(columns: Sequence[str]) -> Any:
    from psycopg2 import sql

    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)
