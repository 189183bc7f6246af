"""After the load, before the commit: does the warehouse agree with Salesforce's own counts?

Two comparisons, each one API call. The window's `COUNT()` against the Ids the run holds fails
and rolls back a gap nothing explains. The object's live records against the table's live rows
(drift, whatever its cause: a record committed late, a delete missed, a row changed by hand) is
recorded in the audit and healed by the sweep.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from salesforce_pipeline import extract
from salesforce_pipeline.errors import SalesforcePipelineError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class CountMismatch(SalesforcePipelineError):
    """Salesforce's COUNT() and the records extracted disagree, and nothing changed meanwhile."""

    retryable = True


def reconcile(hook, spec, window, loader, summary, full_refresh) -> None:
    """Compare Salesforce's COUNT() with what the run holds; log both, explain or fail a gap.

    A gap is explained when the count moved while the run was under way (records changed
    meanwhile) or when it is no larger than the records rejected (they are in load_rejects).
    """
    if full_refresh:
        live_soql = extract.build_count_soql(spec, window, live_only=True)
        # Asked before the object's lock was taken, when the caller could (the same query).
        salesforce_side = summary.live_salesforce
        if salesforce_side is None:
            salesforce_side = hook.count(live_soql, include_deleted=False)
        warehouse_side = loader.count_live_rows()
        summary.live_salesforce, summary.live_warehouse = salesforce_side, warehouse_side
        what = "live records"
        recount_soql, recount_deleted = live_soql, False
    else:
        salesforce_side = summary.salesforce_count
        warehouse_side = loader.extracted_id_count()
        what = "records in the window"
        recount_soql, recount_deleted = extract.build_count_soql(spec, window), True
    summary.count_difference = warehouse_side - salesforce_side
    log.info(
        "%s: Salesforce counts %d %s; this run holds %d (%d rejected)",
        spec.name,
        salesforce_side,
        what,
        warehouse_side,
        summary.rejected,
    )
    if summary.count_difference == 0:
        return
    if abs(summary.count_difference) <= summary.rejected:
        summary.count_note = f"difference of {summary.count_difference} explained by rejected records"
        log.info("%s: %s (see load_rejects in the org's schema)", spec.name, summary.count_note)
        return
    recount = hook.count(recount_soql, include_deleted=recount_deleted)
    if recount != salesforce_side:
        summary.count_note = (
            f"Salesforce's count moved from {salesforce_side} to {recount} while the run was under way; "
            "records changed meanwhile and the next run picks them up"
        )
        log.info("%s: %s", spec.name, summary.count_note)
        return
    raise CountMismatch(
        f"{spec.name}: Salesforce counts {salesforce_side} {what} in {window.describe()} but this run holds "
        f"{warehouse_side}, and the count did not change during the run; the load was rolled back"
    )


def compare_live(hook, spec, loader, summary) -> None:
    """Drift: the object's live records in Salesforce against the table's live rows, after the
    load. One API call (a full refresh has both figures from its reconciliation already)."""
    if summary.live_salesforce is None:
        summary.live_salesforce = hook.count(
            extract.build_count_soql(spec, extract.FULL_REFRESH_WINDOW, live_only=True), include_deleted=False
        )
    if summary.live_warehouse is None:
        summary.live_warehouse = loader.count_live_rows()
    if summary.live_difference:
        log.warning(
            "%s: drift: Salesforce has %d live records, the warehouse %d live rows (difference %+d); the "
            "sweep (setting 'sweep') re-reads the records that differ",
            spec.name,
            summary.live_salesforce,
            summary.live_warehouse,
            summary.live_difference,
        )
    else:
        log.info(
            "%s: Salesforce and the warehouse both hold %d live records", spec.name, summary.live_warehouse
        )
