"""A first load written and indexed beside the empty target, then swapped in under the lock.

A first load brings a table's whole history: a million rows to write and index. Done in the
target, all of that happens under the object's lock. Instead, while no lock is held, a LOGGED
table shaped exactly as the target (`LIKE ... EXCLUDING INDEXES`) is filled, one row per Id:
by the slices themselves as they are read (`create_successor`, see `slice_merge`), or from the
slices' stages in one pass (`build_successor`); then `build_indexes` builds the target's own
constraints and indexes on it from their definitions. Under the lock,
`swap_refusal` checks the target is still empty, still swappable and still shaped as the
successor, and `swap` drops the empty table and gives its name, its objects' names, its
comments and its privileges to the successor: catalog changes only, in the apply's transaction.

"Swappable" (`include/sql/swap_blockers.sql`): nothing is bound to the old table's OID (views,
foreign keys, triggers, policies, publications, functions over its row type) and nothing that
`LIKE` does not copy would be lost; the loader owns it. Otherwise the apply loads the table in
place, as it always did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from salesforce_pipeline.sql_files import read_sql

if TYPE_CHECKING:
    from salesforce_pipeline.load_target import LoadTarget

# Shape rows: (kind, name after the swap, definition, name now); see include/sql/table_shape.sql.
Shape = list[tuple[str, str, str, str]]


def blockers(target: LoadTarget) -> list[str]:
    """Why the target cannot be swapped for a successor (empty when it can)."""
    with target.conn.cursor() as cur:
        cur.execute(read_sql("swap_blockers.sql"), {"table": target.table.as_string(cur)})
        return [row[0] for row in cur.fetchall()]


def create_successor(target: LoadTarget, successor: Any) -> None:
    """Create ``successor``, empty, shaped as the target but without its indexes."""
    target.run("create_successor.sql", successor=successor)


def build_successor(target: LoadTarget, successor: Any, slices: Any) -> int:
    """Create and fill ``successor`` from the ``slices`` (a query over every stage), then build the
    target's constraints and indexes on it; returns the rows. The caller analyses and commits."""
    create_successor(target, successor)
    rows = target.run("fill_successor.sql", successor=successor, columns=target.column_list(), slices=slices)
    build_indexes(target, successor)
    return rows


def build_indexes(target: LoadTarget, successor: Any) -> None:
    """Build the target's constraints and indexes on the filled ``successor``, those it does not
    have yet, and set the target's storage options on it. In the caller's transaction."""
    with target.conn.cursor() as cur:
        cur.execute(read_sql("successor_build_statements.sql"), _names(cur, target, successor))
        for (statement,) in cur.fetchall():
            cur.execute(statement)


def swap_refusal(target: LoadTarget, successor: Any) -> str | None:
    """Why the successor cannot replace the target now, or None. Under the object's lock and the
    target's ACCESS EXCLUSIVE lock, with the target found empty."""
    found = blockers(target)
    if found:
        return "the table cannot be swapped: " + "; ".join(found)
    expected, built = _shape(target, target.table, successor), _shape(target, successor, successor)
    if _comparable(expected) != _comparable(built):
        differences = sorted(set(_comparable(expected)) ^ set(_comparable(built)))
        return f"the merged stage is not shaped as the table (differences: {differences[:4]})"
    return None


def swap(target: LoadTarget, successor: Any) -> None:
    """Replace the empty target by the successor, which takes its name, its objects' names, comments
    and privileges. In the caller's transaction; only after `swap_refusal` said None."""
    from psycopg2 import sql

    built = _shape(target, successor, successor)
    with target.conn.cursor() as cur:
        cur.execute(read_sql("successor_carry_over.sql"), _names(cur, target, successor))
        for (statement,) in cur.fetchall():
            cur.execute(statement)
    target.run("swap_in_successor.sql", successor=successor, new_name=sql.Identifier(target.spec.table))
    schema = target.schema
    for kind, original, _definition, now in built:
        if now == original:
            continue
        if kind == "constraint":
            target.run("rename_constraint.sql", now=sql.Identifier(now), original=sql.Identifier(original))
        elif kind == "index":
            target.run("rename_index.sql", now=sql.Identifier(schema, now), original=sql.Identifier(original))


def _names(cur: Any, target: LoadTarget, successor: Any) -> dict[str, str]:
    return {
        "table": target.table.as_string(cur),
        "successor": successor.as_string(cur),
        "prefix": successor.strings[-1],
    }


def _shape(target: LoadTarget, table: Any, successor: Any) -> Shape:
    with target.conn.cursor() as cur:
        cur.execute(
            read_sql("table_shape.sql"), {"table": table.as_string(cur), "prefix": successor.strings[-1]}
        )
        return [tuple(row) for row in cur.fetchall()]


def _comparable(shape: Shape) -> list[tuple[str, str, str]]:
    # The table's own name differs until the swap; everything else must be equal.
    return [(kind, name, definition) for kind, name, definition, _now in shape]
