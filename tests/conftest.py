"""Shared test foundations: an isolated Airflow home, a private database, the emulator fixtures.

Airflow reads its configuration from the environment when it is first imported, so the
environment is set here at import time, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# One throwaway Airflow home per test session: tests never read a user's airflow.cfg,
# connections or metadata database.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="sfpipe-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
# Retries keep their count but not their two-minute wait, so fault tests finish in seconds.
os.environ["SALESFORCE_PIPELINE_RETRY_DELAY_SECONDS"] = "0.2"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# The connections the DAG reads are supplied per test; drop any the caller's shell exported,
# except the warehouse one, which names the server tests may use (never its database).
for _name in list(os.environ):
    if _name.startswith("AIRFLOW_CONN_") and _name != "AIRFLOW_CONN_POSTGRES_WAREHOUSE":
        del os.environ[_name]

pytest_plugins = ["salesforce_emulator.pytest_plugin"]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of a PostgreSQL server with rights to create databases.

    `make test` exports WAREHOUSE_ADMIN_URL; run directly, pytest asks tools/localpg.py, which
    uses AIRFLOW_CONN_POSTGRES_WAREHOUSE when given or starts the private cluster.
    """
    url = os.environ.get("WAREHOUSE_ADMIN_URL")
    if url:
        return url
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "localpg.py"), "ensure"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.exit(f"no PostgreSQL server for the tests:\n{result.stderr}", returncode=3)
    return result.stdout.strip().splitlines()[-1]


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def test_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database of our own on that server, dropped at the end of the session.

    Tests never touch a database they did not create, so a user's data is safe even when
    AIRFLOW_CONN_POSTGRES_WAREHOUSE points at a real server.
    """
    import psycopg2

    name = f"sfpipe_test_{secrets.token_hex(4)}"
    admin = psycopg2.connect(pg_admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    try:
        yield _with_database(pg_admin_url, name)
    finally:
        # A new connection: a test may have restarted the server since.
        admin = psycopg2.connect(pg_admin_url)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def loader_role(test_database_url: str) -> Iterator[tuple[str, str]]:
    """A throwaway least-privilege loader role (include/sql/loader_role.sql): (name, password)."""
    import psycopg2

    from salesforce_pipeline.roles import drop_loader_role

    role, password = f"sfpipe_loader_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    yield role, password
    admin = psycopg2.connect(test_database_url)
    try:
        drop_loader_role(admin, role)
    finally:
        admin.close()


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault matrix's table (tests/reliability), printed once the suite is done."""
    from tests.support.fault_matrix import FAULT_MATRIX

    if not FAULT_MATRIX:
        return
    write = terminalreporter.write_line
    write("")
    write("Fault matrix: every row of salesforce.account and salesforce.contact compared with the emulator")
    write(f"  {'fault':<58} {'runs':>4} {'retries':>7} {'rows compared':>13} {'mismatches':>10}")
    for row in FAULT_MATRIX:
        write(
            f"  {row['fault']:<58} {row['runs']:>4} {row['retries']:>7} {row['rows']:>13} {row['mismatches']:>10}"
        )


@pytest.fixture
def warehouse(test_database_url: str, loader_role: tuple[str, str]) -> str:
    """The test database with no schema of the pipeline's (the orgs', salesforce_pipeline); returns
    the *loader role's* URL.

    The pipeline runs as the least-privilege role in every test, so a grant it lacks fails here
    first rather than in a customer's warehouse.
    """
    import urllib.parse

    import psycopg2

    from salesforce_pipeline.roles import create_loader_role

    admin = psycopg2.connect(test_database_url)
    with admin.cursor() as cur:
        cur.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema') "
            "AND nspname NOT LIKE 'pg\\_%'"
        )
        for (schema,) in cur.fetchall():
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
    admin.commit()
    role, password = loader_role
    create_loader_role(admin, role, password)
    admin.close()
    parts = urllib.parse.urlsplit(test_database_url)
    host = parts.netloc.rpartition("@")[2]
    return f"postgresql://{role}:{urllib.parse.quote(password, safe='')}@{host}{parts.path}"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database (SQLite in the session's Airflow home), migrated once."""
    from airflow.utils import db

    db.resetdb(skip_init=False)
    return _AIRFLOW_HOME


@pytest.fixture
def pipeline(sf_emulator, warehouse, airflow_db, monkeypatch, caplog, capfd):
    """The real DAG wired to this test's emulator and warehouse (see tests/support/pipeline.py).

    When the test ends, everything the runs left behind is scanned for the secrets they used;
    a hit fails the test.
    """
    from tests.support.pipeline import Pipeline
    from tests.support.secret_scan import SecretRecorder, scan

    recorder = SecretRecorder(sf_emulator, monkeypatch)
    yield Pipeline(sf_emulator, warehouse, monkeypatch, settings={"chunk_size": 50, "rest_batch_size": 200})
    out, err = capfd.readouterr()
    hits = scan(recorder, captured="\n".join([caplog.text, out, err]), warehouse_url=warehouse)
    # Print what was captured again, so a failing test still shows its logs.
    print(out)
    assert not hits, f"secrets found in what the runs left behind: {hits}"
