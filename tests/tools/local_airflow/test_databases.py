"""tools/local_airflow/databases.py: URLs and the databases a local Airflow makes and drops."""

from __future__ import annotations

import secrets

import psycopg2

from tools.local_airflow.databases import create_missing, drop, server_host, with_database


def test_with_database_keeps_server_login_and_options():
    url = "postgresql://postgres:p%40ss@127.0.0.1:5433/postgres?sslmode=disable"
    assert with_database(url, "airflow_local") == (
        "postgresql://postgres:p%40ss@127.0.0.1:5433/airflow_local?sslmode=disable"
    )
    assert server_host(url) == "127.0.0.1:5433", "no login in what the summary prints"


def test_missing_databases_are_created_once_and_dropped_even_while_in_use(pg_admin_url):
    name = f"sfpipe_launcher_{secrets.token_hex(4)}"
    assert create_missing(pg_admin_url, [name]) == [name]
    assert create_missing(pg_admin_url, [name]) == [], "an existing database is kept"
    holder = psycopg2.connect(with_database(pg_admin_url, name))
    try:
        drop(pg_admin_url, [name])
    finally:
        holder.close()
    assert create_missing(pg_admin_url, [name]) == [name], "it was gone"
    drop(pg_admin_url, [name])
