"""Staging: where a chunk lands before it is applied to the target, and the record of every Id
the run extracted.

Both are temporary tables of the load's transaction. A chunk is COPYed into the staging table
(the pipeline's columns only, typed as the target has them, no constraints) and its Ids and
stamps are noted; applying it to the target is `guarded_upsert`'s business, so the two can
later run in different transactions.
"""

from __future__ import annotations

from salesforce_pipeline.load_target import LoadTarget, PreparedChunk


class Staging:
    """The staging table and the extracted-Ids table of one object's load."""

    def __init__(self, target: LoadTarget) -> None:
        from psycopg2 import sql

        self.target = target
        self.table = sql.Identifier(f"_stage_{target.spec.table}")
        self.extracted = sql.Identifier(f"_extracted_{target.spec.table}")

    def create(self) -> None:
        """Create both tables (dropped at the end of the transaction)."""
        self.target.run("create_stage.sql", stage=self.table, columns=self.target.column_list())
        self.target.run("create_extracted_ids.sql", extracted=self.extracted)

    def stage(self, prepared: PreparedChunk) -> None:
        """Put one chunk, and only it, in the staging table, and note its Ids and stamps."""
        from psycopg2 import sql

        with self.target.conn.cursor() as cur:
            cur.execute(sql.SQL("TRUNCATE {}").format(self.table))
        self.target.copy_into(self.table, prepared.payload)
        self.target.run("record_extracted_ids.sql", extracted=self.extracted, stage=self.table)

    def note_rows_copied_directly(self) -> None:
        """Note the Ids of every row in the target as extracted: it was empty under the object's
        lock, so this run COPYed all of them (see `direct_copy`)."""
        self.target.run("record_copied_ids.sql", extracted=self.extracted)

    def extracted_id_count(self) -> int:
        """Distinct Ids noted (rejected records are not among them)."""
        ((count,),) = self.target.query("count_extracted_ids.sql", extracted=self.extracted)
        return count
