"""Scan everything a task run leaves behind for the secrets it used; any hit fails the test.

Looked at: captured log records and stdout/stderr (task logs in dag.test runs go there), task
log files under AIRFLOW_HOME, XComs and rendered templates in Airflow's metadata database, and
the error texts the pipeline stored in its audit table. Looked for: the password, security
token and consumer secret of the connection, and every session id / access token the emulator
issued during the test.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import psycopg2


class SecretRecorder:
    """Remembers every session token the emulator hands out (expired ones included)."""

    def __init__(self, emulator, monkeypatch) -> None:
        self.tokens: list[str] = []
        org = emulator.org
        original = org.create_session

        def recording(*args, **kwargs):
            token = original(*args, **kwargs)
            self.tokens.append(token)
            return token

        monkeypatch.setattr(org, "create_session", recording)
        creds = emulator.credentials
        self.static = [creds.password, creds.security_token, creds.consumer_secret]

    def secrets(self) -> list[str]:
        return [s for s in [*self.static, *self.tokens] if s and len(s) >= 6]


def _metadata_texts() -> Iterable[tuple[str, str]]:
    home = Path(os.environ["AIRFLOW_HOME"])
    database = home / "airflow.db"
    if database.exists():
        conn = sqlite3.connect(database)
        try:
            for table, column in (("xcom", "value"), ("rendered_task_instance_fields", "rendered_fields")):
                try:
                    for (value,) in conn.execute(f"SELECT {column} FROM {table}"):  # fixed names, not input
                        yield f"metadata {table}", value if isinstance(value, str) else repr(value)
                except sqlite3.OperationalError:
                    continue
        finally:
            conn.close()
    for path in home.rglob("*.log"):
        yield f"log file {path.relative_to(home)}", path.read_text(errors="replace")


def _warehouse_texts(warehouse_url: str) -> Iterable[tuple[str, str]]:
    try:
        conn = psycopg2.connect(warehouse_url)
    except psycopg2.Error:
        return
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('salesforce.load_audit')")
            if cur.fetchone()[0]:
                cur.execute("SELECT coalesce(error, '') FROM salesforce.load_audit")
                for (error,) in cur.fetchall():
                    yield "salesforce.load_audit.error", error
    finally:
        conn.close()


def find_secrets(secrets: list[str], texts: Iterable[tuple[str, str]]) -> list[str]:
    """'where: which secret' for every secret found; the secret itself is never printed."""
    hits = []
    for where, text in texts:
        for index, secret in enumerate(secrets):
            if secret in text:
                hits.append(f"{where}: secret #{index} ({len(secret)} characters)")
    return hits


def scan(recorder: SecretRecorder, *, captured: str, warehouse_url: str | None) -> list[str]:
    texts: list[tuple[str, str]] = [("captured logs and output", captured)]
    texts += list(_metadata_texts())
    if warehouse_url:
        texts += list(_warehouse_texts(warehouse_url))
    return find_secrets(recorder.secrets(), texts)
