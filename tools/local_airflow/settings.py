"""The environment every component of a local Airflow shares, and the CeleryExecutor's settings.

The caller's own Airflow settings are dropped (a test session points AIRFLOW_HOME and the
database at its SQLite; a developer's shell may export connections): an instance is exactly
what these settings and the caller's `extra` say.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from base64 import urlsafe_b64encode
from collections.abc import Mapping

from tools.local_airflow.layout import ROOT, Home, airflow_executable, venv_bin

ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"
# The queues every Celery worker here serves: Airflow's default one, and the one the pipeline's
# extraction tasks run on (setting `queue`). docker-compose.celery.yaml has the same shape
# (tests/deploy/test_compose.py compares them).
CELERY_QUEUES = "default,salesforce"
_CALLERS_SETTINGS = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")


def sqlalchemy_url(url: str, driver: str = "postgresql+psycopg2") -> str:
    """A postgresql:// URL with SQLAlchemy's driver name instead of the scheme."""
    scheme, _, rest = url.partition("://")
    return f"{driver}://{rest}" if scheme.startswith("postgres") else url


def shared_secrets(home: Home) -> dict[str, str]:
    """Keys every component must share (tokens the scheduler signs are checked by the API;
    connections are encrypted with the fernet key), kept in the home across restarts."""
    if home.secrets_file.exists():
        return json.loads(home.secrets_file.read_text())
    values = {
        "fernet_key": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
    }
    home.secrets_file.touch(mode=0o600)
    home.secrets_file.write_text(json.dumps(values))
    return values


def airflow_environment(
    home: Home,
    metadata_url: str,
    api_port: int,
    *,
    url_host: str = "127.0.0.1",
    connections: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The LocalExecutor on `metadata_url`, the API on `api_port` (its links name `url_host`),
    the DAGs and plugins of this checkout, `connections` as AIRFLOW_CONN_* variables, then `extra`."""
    keys = shared_secrets(home)
    base_url = f"http://{url_host}:{api_port}"
    settings = {
        "AIRFLOW_HOME": str(home.path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home.passwords_file),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(metadata_url),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home.logs),
        **{f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in (connections or {}).items()},
        **(extra or {}),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CALLERS_SETTINGS)}
    env.update(settings)
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_admin_password(home: Home) -> None:
    """ADMIN_PASSWORD where the simple auth manager reads it, so it does not generate one of its own."""
    home.passwords_file.write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))


def celery_environment(broker_url: str, metadata_url: str) -> dict[str, str]:
    """The CeleryExecutor settings: Redis as the broker, Airflow's metadata database as the
    result backend, two task slots per worker."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url(metadata_url, "postgresql"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    }


def celery_worker_argv(name: str) -> list[str]:
    """A worker of its own Celery hostname serving both queues. It serves no logs: every worker
    here shares the log folder, which the api-server reads (two log servers on one machine would
    fight over the port)."""
    return [
        airflow_executable(),
        "celery",
        "worker",
        "--queues",
        CELERY_QUEUES,
        "--celery-hostname",
        f"{name}@%h",
        "--skip-serve-logs",
    ]


def celery_worker_environment(env: Mapping[str, str], name: str) -> dict[str, str]:
    """Each worker tells Airflow its own name (worker_identity.py): every worker here runs on
    one machine, whose hostname would be the same for all of them."""
    return {
        **env,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tools.local_airflow.worker_identity.hostname",
        "LOCAL_AIRFLOW_WORKER_NAME": name,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    }


def write_env_script(home: Home, env: Mapping[str, str]) -> None:
    """`source <home>/env.sh`: the `airflow` CLI in a shell then talks to this instance."""
    lines = [f"# source {home.env_script}: the `airflow` CLI then talks to the local instance"]
    for key in sorted(env):
        if key.startswith(("AIRFLOW", "SALESFORCE_PIPELINE")):
            lines.append(f"export {key}={shlex.quote(env[key])}")
    lines.append(f'export PATH={shlex.quote(str(venv_bin()))}:"$PATH"')
    home.env_script.touch(mode=0o600)
    home.env_script.write_text("\n".join(lines) + "\n")
