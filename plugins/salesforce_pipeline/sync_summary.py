"""What one object's run did: the summary a task logs, returns and audits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
            f"slices={self.slices} resumed={self.slices_resumed} lock={self.lock_seconds:.1f}s "
            f"api_calls={self.api_calls} "
            f"api_usage={self.api_usage or 'unknown'} duration={self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain values (what the task returns), the live difference included."""
        return {**asdict(self), "live_difference": self.live_difference}
