"""Failure alerts a team can point at its channel: always a log line, optionally a webhook or email.

Configure with environment variables (or Airflow Variables of the same lower-case name):

* `SALESFORCE_PIPELINE_ALERT_WEBHOOK`: a URL that receives a JSON POST (Slack/Teams-style
  incoming webhooks accept `{"text": ...}`, which is what we send, plus structured fields);
* `SALESFORCE_PIPELINE_ALERT_EMAIL`: comma-separated addresses, sent through Airflow's SMTP
  settings (`[smtp]` / `AIRFLOW__SMTP__*`).

The message carries the DAG, task, run, the run's URL in the UI and the error, passed through
Airflow's secrets masker so no registered secret can leave in an alert.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from typing import Any

log = logging.getLogger(__name__)


def _setting(name: str) -> str | None:
    value = os.environ.get(name)
    if value:
        return value
    try:
        from airflow.sdk import Variable

        return Variable.get(name.lower(), default=None)
    except Exception:
        # No Variable backend reachable (e.g. outside a task): alerts fall back to the log line.
        return None


def _redact(text: str) -> str:
    try:
        from airflow.sdk.log import redact

        return str(redact(text))
    except Exception:
        return text


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The Airflow UI address of a DAG run."""
    return (
        f"{base_url.rstrip('/')}/dags/{urllib.parse.quote(dag_id)}/runs/{urllib.parse.quote(run_id, safe='')}"
    )


def build_alert(context: dict[str, Any]) -> dict[str, str]:
    """The alert's fields from a task's failure context (pure: easy to test)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = str(context.get("run_id", "?"))
    base_url = os.environ.get("AIRFLOW__API__BASE_URL") or "http://localhost:8080"
    error = _redact(str(context.get("exception") or "unknown error"))[:1500]
    url = run_url(base_url, dag_id, run_id)
    return {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "url": url,
        "error": error,
        "text": f"Airflow task {dag_id}.{task_id} failed in run {run_id}: {error} ({url})",
    }


def notify_failure(context: dict[str, Any]) -> None:
    """`on_failure_callback`: log the alert, then send it where the team configured."""
    alert = build_alert(context)
    log.error("ALERT %s", alert["text"])
    webhook = _setting("SALESFORCE_PIPELINE_ALERT_WEBHOOK")
    if webhook:
        _post_webhook(webhook, alert)
    recipients = _setting("SALESFORCE_PIPELINE_ALERT_EMAIL")
    if recipients:
        _send_email(recipients, alert)


def _post_webhook(url: str, alert: dict[str, str]) -> None:
    import requests

    try:
        response = requests.post(
            url, data=json.dumps(alert), headers={"Content-Type": "application/json"}, timeout=10
        )
        response.raise_for_status()
    except Exception as exc:
        # An alert that cannot be delivered must not hide the failure it reports.
        log.warning("could not deliver the failure alert to the webhook: %s", type(exc).__name__)


def _send_email(recipients: str, alert: dict[str, str]) -> None:
    try:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook() as smtp:
            smtp.send_email_smtp(
                to=[r.strip() for r in recipients.split(",") if r.strip()],
                subject=f"[Airflow] {alert['dag_id']}.{alert['task_id']} failed",
                html_content=f"<p>{alert['text']}</p>",
            )
    except Exception as exc:
        log.warning("could not send the failure alert by email: %s", type(exc).__name__)
