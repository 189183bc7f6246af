"""Run the real DAG with `dag.test()` against the emulator and a test database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras

from tests.support.warehouse import mismatches, warehouse_rows

REPO_ROOT = Path(__file__).resolve().parents[2]


def salesforce_connection_json(
    emulator, mode: str = "client_credentials", credentials: Any = None, **overrides: Any
) -> str:
    """The Salesforce connection as the AIRFLOW_CONN_SALESFORCE_DEFAULT JSON a user would write
    (for the emulator's first org, or the org whose `credentials` are given)."""
    creds = credentials or emulator.credentials
    extra: dict[str, Any] = {"domain": emulator.base_url, "ca_bundle": str(emulator.ca_path)}
    conn: dict[str, Any] = {"conn_type": "customerscore_salesforce", "extra": extra}
    if mode == "client_credentials":
        extra.update(
            auth_type="client_credentials",
            consumer_key=creds.consumer_key,
            consumer_secret=creds.consumer_secret,
        )
    else:
        conn.update(login=creds.username, password=creds.password)
        extra.update(auth_type="security_token", security_token=creds.security_token)
    extra.update(overrides.pop("extra", {}))
    conn.update(overrides)
    return json.dumps(conn)


@dataclass
class Pipeline:
    """The DAG wired to one emulator and one test database, with settings a test can change."""

    emulator: Any
    warehouse_url: str
    monkeypatch: Any
    settings: dict[str, Any] = field(default_factory=dict)
    mode: str = "client_credentials"
    # Quick retries and a short timeout, so fault tests take seconds; production defaults are 1 s / 120 s.
    connection_extra: dict[str, Any] = field(
        default_factory=lambda: {"retry_base_seconds": 0.05, "max_retries": 4, "timeout": 10}
    )

    def __post_init__(self) -> None:
        self.configure()

    def configure(self, connection_extra: dict[str, Any] | None = None, **settings: Any) -> None:
        self.settings.update(settings)
        self.connection_extra.update(connection_extra or {})
        self.monkeypatch.setenv(
            "AIRFLOW_CONN_SALESFORCE_DEFAULT",
            salesforce_connection_json(self.emulator, self.mode, extra=self.connection_extra),
        )
        self.monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_WAREHOUSE", self.warehouse_url)
        self.monkeypatch.setenv("AIRFLOW_VAR_SALESFORCE_TO_POSTGRES", json.dumps(self.settings))

    @property
    def dag(self):
        from airflow.models import DagBag

        bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
        return bag.dags["salesforce_to_postgres"]

    def run(self, logical_date: datetime, **conf: Any):
        """One run of the DAG for `logical_date`; returns the DagRun (its state says how it ended)."""
        if logical_date.tzinfo is None:
            logical_date = logical_date.replace(tzinfo=UTC)
        return self.dag.test(logical_date=logical_date, run_conf=conf or None)

    def rows(self, table: str) -> dict[str, dict[str, Any]]:
        return warehouse_rows(self.warehouse_url, table)

    def mismatches(self, sobject: str, describe: Any = None, **kwargs: Any) -> list[str]:
        """Differences between the emulator's records (deleted ones included) and the table
        (typed by `describe`: the object's standard describe unless a test's fields need the org's)."""
        from salesforce_emulator.schema import SCHEMA, describe_sobject
        from salesforce_pipeline.objects import OBJECTS

        describe = describe or describe_sobject(SCHEMA[sobject], "62.0", frozenset())
        return mismatches(
            sobject,
            self.emulator.org.snapshot(sobject),
            self.rows(OBJECTS[sobject].table),
            describe,
            **kwargs,
        )

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        conn = psycopg2.connect(self.warehouse_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def execute(self, sql: str, params: Any = None) -> None:
        """Change the warehouse behind the pipeline's back, as a user or a test would."""
        conn = psycopg2.connect(self.warehouse_url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
            conn.commit()
        finally:
            conn.close()

    def audit(self) -> list[dict[str, Any]]:
        conn = psycopg2.connect(self.warehouse_url)
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute("SELECT * FROM salesforce.load_audit ORDER BY audit_id")
                return [dict(r) for r in cur.fetchall()]
        finally:
            conn.close()
