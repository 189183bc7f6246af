"""The table one load writes, and a chunk made ready for it: what every way into the table shares.

All SQL lives in `include/sql/`; table and column names are filled in with psycopg2's
`sql.Identifier`, never by pasting strings, and values always travel as query parameters.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.copy_format import copy_bytes
from salesforce_pipeline.objects import ObjectSpec
from salesforce_pipeline.sql_files import sql_template

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from psycopg2.extensions import connection as PgConnection

LINEAGE_COLUMNS = ("_extracted_at", "_dag_run_id")
# psycopg2 reads a COPY payload in pieces of this size, one libpq call each.
_COPY_READ_SIZE = 1 << 20


@dataclass
class PreparedChunk:
    """A transformed chunk serialised for COPY: the Python side of loading it, done up front so
    the database side can run in another thread while the next chunk is being transformed."""

    payload: io.BytesIO
    rows: int
    id_hashes: Any  # numpy int64 array: sorted hashes of the chunk's Ids (None when not asked for)


class LoadTarget:
    """One object's table in one run: the connection, the table's names and columns, the lineage
    written on every row. It decides nothing; the ways into the table write through it."""

    def __init__(
        self,
        conn: PgConnection,
        spec: ObjectSpec,
        columns: Sequence[str],
        *,
        schema: str,
        dag_run_id: str,
        extracted_at: datetime,
    ) -> None:
        from psycopg2 import sql
        from psycopg2.extensions import encodings

        self.conn = conn
        self.spec = spec
        self.schema = schema
        self.dag_run_id = dag_run_id
        self.extracted_at = extracted_at
        self.data_columns = list(columns)
        self.columns = [*self.data_columns, *LINEAGE_COLUMNS]
        self.table = sql.Identifier(schema, spec.table)
        self.table_name = f"{schema}.{spec.table}"  # for lock names and messages
        # Ids of the records this run rejected: a full refresh must not mark their rows deleted.
        self.rejected = sql.Identifier(f"_rejected_{spec.table}")
        # COPY data goes as bytes in the connection's encoding, as psycopg2 would encode str. Read
        # here, once: `prepare` runs while the writer thread uses the connection.
        self.encoding = encodings[conn.encoding]

    def prepare(self, frame: pd.DataFrame, *, id_hashes: bool = True) -> PreparedChunk | None:
        """Serialise one transformed chunk for COPY (None when it has no rows). Python only: it
        runs while the writer thread uses the connection, so it does not touch it.

        ``id_hashes``: also the sorted hashes of the chunk's Ids, which the direct path needs to
        notice an Id it already copied (`direct_copy`); a staged slice does not (the merge keeps
        one row per Id).
        """
        import numpy as np

        if frame.empty:
            return None
        payload = copy_bytes(frame, self.data_columns, (self.extracted_at, self.dag_run_id), self.encoding)
        hashes = (
            np.unique(np.fromiter(map(hash, frame["id"]), dtype=np.int64, count=len(frame)))
            if id_hashes
            else None
        )
        return PreparedChunk(payload=payload, rows=len(frame), id_hashes=hashes)

    def copy_into(self, table: Any, payload: io.BytesIO) -> None:
        """COPY a prepared payload into `table` (the target itself or a staging table)."""
        from psycopg2 import sql

        with self.conn.cursor() as cur:
            copy = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
                table=table, columns=self.column_list()
            )
            cur.copy_expert(copy.as_string(cur), payload, size=_COPY_READ_SIZE)

    def column_list(self) -> Any:
        """The pipeline's columns (data and lineage) as an SQL list."""
        from psycopg2 import sql

        return sql.SQL(", ").join(sql.Identifier(column) for column in self.columns)

    def run(self, statement: str, params: Any = None, **identifiers: Any) -> int:
        """Run an `include/sql` statement, the target filled in as `{target}`; returns the rows
        it changed (its rowcount)."""
        with self.conn.cursor() as cur:
            cur.execute(sql_template(statement, target=self.table, **identifiers), params)
            return cur.rowcount

    def query(self, statement: str, **identifiers: Any) -> list[tuple[Any, ...]]:
        """The rows an `include/sql` query returns, the target filled in as `{target}`."""
        with self.conn.cursor() as cur:
            cur.execute(sql_template(statement, target=self.table, **identifiers))
            return cur.fetchall()
