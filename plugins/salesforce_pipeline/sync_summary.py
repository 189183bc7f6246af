"""What one object's run did: the summary a task logs, returns and audits."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from salesforce_pipeline.audit import Attempt
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

log = logging.getLogger(__name__)


@dataclass
class SyncSummary:
    """What one object's run did, for the task log, the audit row and the task's return value."""

    sobject: str
    mode: str
    method: str
    window: str
    extracted: int = 0
    upserted: int = 0
    deleted: int = 0
    rejected: int = 0
    duplicates: int = 0
    backfilled: int = 0  # existing rows whose new fields' columns were filled (schema_drift.py)
    api_calls: int = 0
    api_usage: str | None = None
    salesforce_count: int | None = None
    count_difference: int | None = None
    count_note: str | None = None
    live_salesforce: int | None = None
    live_warehouse: int | None = None
    slices: int = 0  # slices the window was cut into (1: read in one query)
    slices_resumed: int = 0  # slices an earlier attempt of this run had staged already
    staging_seconds: float = 0.0  # reading Salesforce and staging its pages (no lock)
    merge_seconds: float = 0.0  # making the staged slices the one table the apply reads (no lock)
    lock_seconds: float = 0.0  # how long the object's lock was held (the apply)
    seconds: float = 0.0

    @property
    def live_difference(self) -> int | None:
        """Live rows in the warehouse minus live records in Salesforce (None if not compared)."""
        if self.live_salesforce is None or self.live_warehouse is None:
            return None
        return self.live_warehouse - self.live_salesforce

    def line(self) -> str:
        """The one line per object a data team greps the task log for."""
        return (
            f"SUMMARY {self.sobject}: mode={self.mode} method={self.method} window={self.window} "
            f"extracted={self.extracted} upserted={self.upserted} deleted={self.deleted} "
            f"rejected={self.rejected} salesforce_count={self.salesforce_count} "
            f"count_difference={self.count_difference} live_difference={self.live_difference} "
            f"slices={self.slices} resumed={self.slices_resumed} staging={self.staging_seconds:.1f}s "
            f"merge={self.merge_seconds:.1f}s lock={self.lock_seconds:.1f}s "
            f"api_calls={self.api_calls} "
            f"api_usage={self.api_usage or 'unknown'} duration={self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain values (what the task returns), the live difference included."""
        return {**asdict(self), "live_difference": self.live_difference}


def usage_text(hook: SalesforcePipelineHook) -> str | None:
    """The org's daily API usage as the hook last saw it, e.g. ``1234/15000``."""
    usage = hook.api_usage
    return f"{usage[0]}/{usage[1]}" if usage else None


def finish_audit(
    attempt: Attempt,
    summary: SyncSummary,
    hook: SalesforcePipelineHook,
    calls_before: int,
    *,
    status: str,
    error: str | None,
) -> None:
    """Record the attempt's outcome in its load_audit row (a failure to, after a failed load, is
    only logged: the load's own error matters more)."""
    try:
        attempt.finish(
            method=summary.method or None,
            extracted=summary.extracted,
            upserted=summary.upserted,
            deleted=summary.deleted,
            rejected=summary.rejected,
            api_calls=hook.api_calls - calls_before,
            api_usage_after=usage_text(hook),
            salesforce_count=summary.salesforce_count,
            count_difference=summary.count_difference,
            count_note=summary.count_note,
            live_salesforce=summary.live_salesforce,
            live_warehouse=summary.live_warehouse,
            live_difference=summary.live_difference,
            finished_at=datetime.now(UTC),
            status=status,
            error=error,
        )
    except Exception:
        # The load's own outcome matters more than its audit row; a lost connection lands here.
        log.warning("%s: could not record the load's outcome in its load_audit table", summary.sobject)
        if status == "success":
            raise
