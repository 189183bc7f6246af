"""The SQL in `include/sql/`: one file per statement, read once, identifiers filled by psycopg2.

Values always travel as query parameters; table and column names are filled in with psycopg2's
`sql.Identifier` composables, never by pasting strings.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any


def sql_dir() -> Path:
    """`include/sql/` beside `plugins/`: the same layout in the repo and in the Airflow image."""
    configured = os.environ.get("SALESFORCE_PIPELINE_SQL_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "include" / "sql"


@cache
def read_sql(name: str) -> str:
    """The text of ``include/sql/<name>``, with a clear error when it is missing."""
    path = sql_dir() / name
    try:
        return path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"SQL file {path} is missing; the include/ folder must sit beside plugins/ "
            "(or set SALESFORCE_PIPELINE_SQL_DIR)"
        ) from None


def sql_template(name: str, **identifiers: Any):
    """A statement from include/sql with `{placeholders}` filled by psycopg2.sql composables."""
    from psycopg2 import sql

    return sql.SQL(read_sql(name)).format(**identifiers)
