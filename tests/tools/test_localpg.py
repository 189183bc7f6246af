"""tools/localpg.py: a given server is used as it is; otherwise a private cluster; clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import localpg

SCRIPT = Path(localpg.__file__)


def test_a_given_warehouse_connection_is_used_and_nothing_is_started(pg_admin_url, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "AIRFLOW_CONN_POSTGRES_WAREHOUSE": pg_admin_url,
        "LOCALPG_DIR": str(tmp_path / "pg"),
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "ensure"], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == pg_admin_url.replace("postgres://", "postgresql://", 1)
    assert "using the server given in AIRFLOW_CONN_POSTGRES_WAREHOUSE" in result.stderr
    assert not (tmp_path / "pg").exists(), "no private cluster when a server is given"


def test_connection_json_is_accepted_too(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_POSTGRES_WAREHOUSE",
        json.dumps(
            {
                "conn_type": "postgres",
                "login": "loader",
                "password": "p@ss",
                "host": "db",
                "port": 6543,
                "schema": "dw",
            }
        ),
    )
    assert localpg.connection_from_env() == "postgresql://loader:p%40ss@db:6543/dw"


def test_without_postgres_binaries_the_error_says_how_to_install_them(monkeypatch):
    monkeypatch.setattr(localpg.shutil, "which", lambda name: None)
    monkeypatch.setattr(localpg.glob, "glob", lambda pattern: [])
    with pytest.raises(
        localpg.LocalPgError, match=r"apt-get install postgresql.*\n.*AIRFLOW_CONN_POSTGRES_WAREHOUSE"
    ):
        localpg.find_binaries()


def test_the_private_cluster_answers_on_loopback_at_a_non_default_port(pg_admin_url):
    port_file = SCRIPT.parents[1] / ".local" / "postgres" / "port"
    if os.environ.get("AIRFLOW_CONN_POSTGRES_WAREHOUSE") or not port_file.exists():
        pytest.skip("the tests use a server given in AIRFLOW_CONN_POSTGRES_WAREHOUSE")
    assert "@127.0.0.1:" in pg_admin_url
    assert int(port_file.read_text()) != 5432
