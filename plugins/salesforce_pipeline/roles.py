"""The least-privilege loader role (include/sql/loader_role.sql), for administrators and tests.

python -m salesforce_pipeline.roles --admin-url postgresql://admin@host/db --role sf_loader
(the role's password is read from SALESFORCE_LOADER_PASSWORD)
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from salesforce_pipeline.sql_files import read_sql, sql_template

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection


def create_loader_role(admin: PgConnection, role: str, password: str) -> None:
    """Create (or reset) `role` so it can only create and write in schema salesforce."""
    from psycopg2 import sql

    with admin.cursor() as cur:
        cur.execute("SELECT current_database()")
        (database,) = cur.fetchone()
        cur.execute(
            sql_template("loader_role.sql", role=sql.Identifier(role), database=sql.Identifier(database)),
            {"role_name": role, "password": password},
        )
    admin.commit()


def drop_loader_role(admin: PgConnection, role: str) -> None:
    """Drop the loader role (and what it owns) made by this module."""
    from psycopg2 import sql

    with admin.cursor() as cur:
        cur.execute(sql.SQL(read_sql("drop_loader_role.sql")).format(role=sql.Identifier(role)))
    admin.commit()


def main(argv: list[str]) -> int:
    """Command line: create or drop the least-privilege loader role."""
    import psycopg2

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-url", required=True, help="a superuser (or database owner) connection URL")
    parser.add_argument("--role", default="salesforce_loader")
    args = parser.parse_args(argv)
    password = os.environ.get("SALESFORCE_LOADER_PASSWORD")
    if not password:
        print("Set SALESFORCE_LOADER_PASSWORD to the password the loader role should have.", file=sys.stderr)
        return 2
    conn = psycopg2.connect(args.admin_url)
    try:
        create_loader_role(conn, args.role, password)
    finally:
        conn.close()
    print(f"role {args.role} can now create and write in schema salesforce only")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
