"""The PostgreSQL server a local Airflow keeps its metadata on, and databases made or dropped there."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterable, Iterator

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from tools import localpg
from tools.local_airflow.errors import LocalAirflowError


def admin_url() -> str:
    """WAREHOUSE_ADMIN_URL when set (`make` sets it), else the server tools/localpg.py provides."""
    given = os.environ.get("WAREHOUSE_ADMIN_URL", "").strip()
    if given:
        return given
    try:
        return localpg.ensure()
    except localpg.LocalPgError as exc:
        raise LocalAirflowError(f"no PostgreSQL server: {exc}") from exc


def with_database(url: str, database: str) -> str:
    """The same server and login, another database."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def server_host(url: str) -> str:
    """`host:port` of a URL, without its login."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]


def create_missing(url: str, names: Iterable[str]) -> list[str]:
    """Create each database that does not exist yet; returns the ones created."""
    created = []
    with _autocommit(url) as cur:
        for name in names:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                created.append(name)
    return created


def drop(url: str, names: Iterable[str]) -> None:
    """Drop the databases, even while sessions still hold them (WITH (FORCE))."""
    with _autocommit(url) as cur:
        for name in names:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def _autocommit(url: str) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor on an autocommit session: CREATE/DROP DATABASE cannot run in a transaction."""
    conn = psycopg2.connect(url, connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()
