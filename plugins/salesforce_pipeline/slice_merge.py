"""The slices' rows made into the one table the apply reads, one row per Id, before the lock.

Two ways, as the checkpoint was planned (`Checkpoint.into_successor`):

- A first load of several slices COPYed them straight into the table's successor. What is left
  is the slice reaching up to now, read last, which may hold a newer version of a record another
  slice has: it is merged in, newest version kept. Then the successor gets the target's
  constraints and indexes, built once over all the rows, and its statistics.
- Otherwise the slices' stage tables are merged into a new table in one pass: the table's
  successor when the target is empty and can be swapped (a first load of one slice), else an
  UNLOGGED merged stage that the apply's guarded upsert reads. A table an earlier attempt left
  is dropped and built again.

A retry after a kill during or after the merge does it again: merging the last slice again
keeps the newest version of each record, and an index built already is not built again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from salesforce_pipeline import table_swap

if TYPE_CHECKING:
    from salesforce_pipeline.checkpoint import Checkpoint

log = logging.getLogger(__name__)


def merge(saved: Checkpoint) -> Any:
    """Build the table the apply reads and analyse it; returns its name. Commits."""
    from psycopg2 import errors

    target, merged = saved.target, saved.merged_table
    if saved.into_successor:
        try:
            _complete_successor(saved)
        except errors.UniqueViolation:
            # The slices' disjoint bounds rule this out; should an Id be there twice anyway, a
            # load that fails on it at every retry would help no one.
            saved.conn.rollback()
            log.warning(
                "%s: the table's successor held an Id twice; keeping each record's newest version",
                target.spec.name,
            )
            target.run("dedupe_successor.sql", successor=merged)
            saved.conn.commit()
            _complete_successor(saved)
    else:
        _merge_stages(saved)
    target.run("analyze_table.sql", table=merged)
    saved.conn.commit()
    return merged


def _complete_successor(saved: Checkpoint) -> None:
    target, successor = saved.target, saved.merged_table
    for state in saved.slices:
        if saved.in_stage(state):  # the slice reaching up to now
            target.run(
                "merge_last_slice.sql",
                successor=successor,
                stage=saved.stage_table(state.plan.number),
                columns=target.column_list(),
            )
    table_swap.build_indexes(target, successor)
    log.info("%s: the slices filled the table's successor; indexed it, to swap in", target.spec.name)


def _merge_stages(saved: Checkpoint) -> None:
    from psycopg2 import sql

    target, merged = saved.target, saved.merged_table
    columns = target.column_list()
    slices = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {columns} FROM {stage}").format(
            columns=columns, stage=saved.stage_table(s.plan.number)
        )
        for s in saved.slices
    )
    target.run("drop_tables.sql", tables=merged)
    ((empty,),) = target.query("target_is_empty.sql")
    refused = table_swap.blockers(target) if empty else ["it holds rows"]
    if refused:
        target.run("merge_slice_stages.sql", merged=merged, columns=columns, slices=slices)
        log.info("%s: merged the slices into a stage (no swap: %s)", target.spec.name, "; ".join(refused))
    else:
        table_swap.build_successor(target, merged, slices)
        log.info("%s: merged the slices into the table's successor, indexed, to swap in", target.spec.name)
