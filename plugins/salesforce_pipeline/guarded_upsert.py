"""The guarded way into a table that holds rows: each staged chunk applied by one set-based upsert.

The upsert's WHERE keeps the newest version of a record (`upsert_from_stage.sql`): an older
SystemModstamp never overwrites a newer one, so backfills in any order regress nothing and reruns
change nothing. Verification and, on a full refresh, marking rows Salesforce no longer has read
the Ids `staging` noted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from salesforce_pipeline.load_target import LoadTarget, PreparedChunk
from salesforce_pipeline.staging import Staging


class GuardedUpsert:
    """Stage each chunk, then upsert it into the target under the SystemModstamp guard."""

    mode = "guarded"

    def __init__(self, target: LoadTarget, staging: Staging) -> None:
        self.target = target
        self.staging = staging

    @classmethod
    def begin(cls, target: LoadTarget) -> GuardedUpsert:
        """The guarded way in, its staging tables created."""
        staging = Staging(target)
        staging.create()
        return cls(target, staging)

    @classmethod
    def after_direct_copy(cls, target: LoadTarget) -> GuardedUpsert:
        """The guarded way in for the rest of a load whose chunks so far were COPYed straight
        into the (then empty) target: those rows count as extracted."""
        upsert = cls.begin(target)
        upsert.staging.note_rows_copied_directly()
        return upsert

    def write(self, prepared: PreparedChunk) -> int:
        """Stage the chunk and apply it; returns the rows the upsert wrote (the guard skips a row
        whose stored version is newer)."""
        self.staging.stage(prepared)
        return self._apply_stage()

    def _apply_stage(self) -> int:
        return upsert_from(self.target, self.staging.table)

    def verification_problem(self) -> str | None:
        """Extracted Ids not in the table at their extracted SystemModstamp or newer, or None."""
        missing = [row[0] for row in self.target.query("verify_load.sql", extracted=self.staging.extracted)]
        if not missing:
            return None
        return (
            f"{len(missing)}+ extracted records are not in {self.target.table_name} at their extracted "
            f"SystemModstamp or newer (e.g. {missing[:5]})"
        )

    def mark_missing_as_deleted(self, extraction_started_at: datetime) -> int:
        """Full refresh: flag rows whose Id Salesforce no longer has at all; returns how many."""
        return self.target.run(
            "mark_missing_deleted.sql",
            {
                "extracted_at": self.target.extracted_at,
                "dag_run_id": self.target.dag_run_id,
                "extraction_started_at": extraction_started_at,
            },
            extracted=self.staging.extracted,
            rejected=self.target.rejected,
        )

    def extracted_id_count(self) -> int:
        """Distinct Ids loaded by this run (rejected records are not among them)."""
        return self.staging.extracted_id_count()


def upsert_from(target: LoadTarget, stage: Any) -> int:
    """Upsert every row of ``stage`` into the target under the SystemModstamp guard; returns the
    rows written (a row whose stored version is newer is skipped)."""
    from psycopg2 import sql

    assignments = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in target.columns if c != "id"
    )
    return target.run(
        "upsert_from_stage.sql", stage=stage, columns=target.column_list(), assignments=assignments
    )
