"""tools/local_airflow/settings.py: what every component of a local Airflow is started with."""

from __future__ import annotations

import os
import stat

from tools.local_airflow.layout import ROOT, Home, venv_bin
from tools.local_airflow.settings import (
    ADMIN_USER,
    CELERY_QUEUES,
    airflow_environment,
    celery_environment,
    celery_worker_argv,
    celery_worker_environment,
    write_env_script,
)
from tools.local_airflow.worker_identity import hostname

METADATA = "postgresql://airflow:pw@127.0.0.1:5432/airflow_local"


def test_the_callers_airflow_settings_are_dropped_and_the_instances_are_set(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", "from-the-shell")
    monkeypatch.setenv("AIRFLOW_VAR_SALESFORCE_TO_POSTGRES", "{}")
    home = Home(tmp_path)
    home.prepare()

    env = airflow_environment(
        home,
        METADATA,
        8099,
        url_host="localhost",
        connections={"postgres_warehouse": "postgresql://w@h/db"},
        extra={"AIRFLOW__CORE__PARALLELISM": "3"},
    )

    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert "AIRFLOW_CONN_SALESFORCE_DEFAULT" not in env
    assert "AIRFLOW_VAR_SALESFORCE_TO_POSTGRES" not in env
    assert env["AIRFLOW_CONN_POSTGRES_WAREHOUSE"] == "postgresql://w@h/db"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "3"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:pw@")
    assert env["AIRFLOW__API__BASE_URL"] == "http://localhost:8099"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:8099/execution/"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1", "the API listens on loopback only"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].startswith(f"{ADMIN_USER}:")
    assert env["PATH"].split(os.pathsep)[0] == str(venv_bin())


def test_the_keys_every_component_shares_are_kept_across_restarts_and_private(tmp_path):
    home = Home(tmp_path)
    home.prepare()
    first = airflow_environment(home, METADATA, 8099)
    again = airflow_environment(home, METADATA, 8100)
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert first[key] == again[key]
    assert stat.S_IMODE(home.secrets_file.stat().st_mode) == 0o600
    other = Home(tmp_path / "other")
    other.prepare()
    assert (
        airflow_environment(other, METADATA, 8099)["AIRFLOW__CORE__FERNET_KEY"]
        != first["AIRFLOW__CORE__FERNET_KEY"]
    )


def test_celery_uses_the_metadata_database_as_result_backend_whatever_the_url_form():
    for url in (METADATA, METADATA.replace("postgresql://", "postgresql+psycopg2://")):
        env = celery_environment("redis://:secret@127.0.0.1:6390/0", url)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+{METADATA}"
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:secret@127.0.0.1:6390/0"


def test_each_worker_serves_both_queues_under_its_own_name(monkeypatch):
    argv = celery_worker_argv("worker2")
    assert argv[argv.index("--queues") + 1] == CELERY_QUEUES == "default,salesforce"
    assert argv[argv.index("--celery-hostname") + 1] == "worker2@%h"
    assert "--skip-serve-logs" in argv

    env = celery_worker_environment({"PYTHONPATH": "/elsewhere"}, "worker2")
    module, _, function = env["AIRFLOW__CORE__HOSTNAME_CALLABLE"].rpartition(".")
    assert (module, function) == ("tools.local_airflow.worker_identity", "hostname")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]
    monkeypatch.setenv("LOCAL_AIRFLOW_WORKER_NAME", env["LOCAL_AIRFLOW_WORKER_NAME"])
    assert hostname().startswith("worker2.")


def test_the_env_script_exports_airflow_settings_only_and_is_private(tmp_path):
    home = Home(tmp_path)
    home.prepare()
    write_env_script(home, {"AIRFLOW_HOME": "/h", "AIRFLOW__CORE__FERNET_KEY": "k k", "HOME": "/root"})
    text = home.env_script.read_text()
    assert "export AIRFLOW_HOME=/h" in text
    assert "export AIRFLOW__CORE__FERNET_KEY='k k'" in text
    assert "HOME=/root" not in text
    assert stat.S_IMODE(home.env_script.stat().st_mode) == 0o600
