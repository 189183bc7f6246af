"""The way into a table that was empty when the load took the object's lock: COPY straight into it.

There is nothing to guard and nothing to mark deleted, and the table itself is the record of what
was extracted, so a first load runs at the speed of a plain COPY. The one thing it cannot do is
keep the newest of two versions of a record: it notices an Id it already copied, so that the
load can move onto the guarded path before that chunk is written (see `load.ObjectLoad`).
"""

from __future__ import annotations

from typing import Any

from salesforce_pipeline.load_target import LoadTarget, PreparedChunk


class DirectCopy:
    """COPY each chunk into the (empty at the start) target; verify by counting its rows."""

    mode = "direct"

    def __init__(self, target: LoadTarget) -> None:
        import numpy as np

        self.target = target
        self.copied = 0
        # Hashes of every Id copied, sorted: 8 bytes per Id. A collision only sends the load onto
        # the guarded path, which is correct for any input.
        self._seen_hashes: Any = np.empty(0, dtype=np.int64)

    def repeats_an_id(self, prepared: PreparedChunk) -> bool:
        """Whether any of the chunk's Ids (by hash) was in a chunk this load already copied."""
        import numpy as np

        seen, hashes = self._seen_hashes, prepared.id_hashes
        if not len(seen) or not len(hashes):
            return False
        positions = np.searchsorted(seen, hashes).clip(max=len(seen) - 1)
        return bool((seen[positions] == hashes).any())

    def write(self, prepared: PreparedChunk) -> int:
        """COPY the chunk into the table; returns the rows written (all of them)."""
        import numpy as np

        self.target.copy_into(self.target.table, prepared.payload)
        # Two sorted runs: the stable sort (timsort) merges them in linear time.
        merged = np.concatenate((self._seen_hashes, prepared.id_hashes))
        merged.sort(kind="stable")
        self._seen_hashes = merged
        self.copied += prepared.rows
        return prepared.rows

    def verification_problem(self) -> str | None:
        """The table was empty, so it must hold exactly the rows copied; what differs, or None."""
        ((present,),) = self.target.query("count_rows.sql")
        if present == self.copied:
            return None
        return f"{self.target.table_name} holds {present} rows after COPYing {self.copied} into it while it was empty"

    def mark_missing_as_deleted(self, extraction_started_at: Any) -> int:
        """Nothing to mark: every row in the table was just extracted."""
        return 0

    def extracted_id_count(self) -> int:
        """Distinct Ids loaded: the rows copied (an Id copied twice would have left this path)."""
        return self.copied
