"""Many orgs at once: one emulator hosting several Salesforce orgs, a registry naming them, and
each org's DAG run with `dag.test()` against one test database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.extras

from tests.support.pipeline import REPO_ROOT, salesforce_connection_json
from tests.support.warehouse import mismatches, warehouse_rows


def org_mismatches(warehouse_url: str, emulator: Any, key: str, schema: str | None = None) -> list[str]:
    """Every difference between emulator org `key`'s Accounts and Contacts (deleted ones
    included) and that org's tables in the warehouse."""
    from salesforce_emulator.schema import SCHEMA, describe_sobject
    from salesforce_pipeline.objects import OBJECTS

    found = []
    for sobject, spec in OBJECTS.items():
        rows = warehouse_rows(warehouse_url, spec.table, schema or f"salesforce_{key}")
        describe = describe_sobject(SCHEMA[sobject], "62.0", frozenset())
        found += mismatches(sobject, emulator.org_named(key).snapshot(sobject), rows, describe)
    return found


@dataclass
class Orgs:
    """Orgs hosted by one emulator, registered in the settings Variable, loaded by their DAGs."""

    emulator: Any
    warehouse_url: str
    monkeypatch: Any
    settings: dict[str, Any] = field(default_factory=lambda: {"chunk_size": 50, "rest_batch_size": 200})
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    connection_extra: dict[str, Any] = field(
        default_factory=lambda: {"retry_base_seconds": 0.05, "max_retries": 2, "timeout": 10}
    )

    def __post_init__(self) -> None:
        self.monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_WAREHOUSE", self.warehouse_url)
        self._write_registry()

    def add(
        self, key: str, mode: str = "client_credentials", accounts: int = 20, contacts: int = 60, **entry
    ):
        """Host org `key` in the emulator, give it a connection and a registry entry."""
        org = self.emulator.add_org(key, accounts=accounts, contacts=contacts, now=self.emulator.org.now())
        self.connect(key, mode)
        self.register(key, **entry)
        return org

    def connect(
        self, key: str, mode: str = "client_credentials", org_key: str | None = None, **extra
    ) -> None:
        """(Re)define connection salesforce_<key>, logging in to emulator org `org_key` (default `key`)."""
        org = self.emulator.org_named(org_key or key)
        conn = salesforce_connection_json(
            self.emulator, mode, credentials=org.credentials, extra={**self.connection_extra, **extra}
        )
        self.monkeypatch.setenv(f"AIRFLOW_CONN_SALESFORCE_{key.upper()}", conn)

    def register(self, key: str, **entry: Any) -> None:
        self.entries[key] = {"salesforce_conn_id": f"salesforce_{key}", **entry}
        self._write_registry()

    def _write_registry(self) -> None:
        self.monkeypatch.setenv(
            "AIRFLOW_VAR_SALESFORCE_TO_POSTGRES", json.dumps({**self.settings, "orgs": self.entries})
        )

    def dag(self, key: str):
        from airflow.models import DagBag

        bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
        return bag.dags[f"salesforce_org_{key}"]

    def run(self, key: str, logical_date: datetime, **conf: Any):
        if logical_date.tzinfo is None:
            logical_date = logical_date.replace(tzinfo=UTC)
        return self.dag(key).test(logical_date=logical_date, run_conf=conf or None)

    def schema(self, key: str) -> str:
        return self.entries[key].get("schema", f"salesforce_{key}")

    def rows(self, key: str, table: str) -> dict[str, dict[str, Any]]:
        return warehouse_rows(self.warehouse_url, table, self.schema(key))

    def mismatches(self, key: str, sobject: str) -> list[str]:
        """Differences between emulator org `key`'s records and that org's table."""
        from salesforce_emulator.schema import SCHEMA, describe_sobject
        from salesforce_pipeline.objects import OBJECTS

        describe = describe_sobject(SCHEMA[sobject], "62.0", frozenset())
        truth = self.emulator.org_named(key).snapshot(sobject)
        return mismatches(sobject, truth, self.rows(key, OBJECTS[sobject].table), describe)

    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        conn = psycopg2.connect(self.warehouse_url)
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(sql, params)
                return [dict(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def audit(self, key: str) -> list[dict[str, Any]]:
        return self.query(f'SELECT * FROM "{self.schema(key)}".load_audit ORDER BY audit_id')
