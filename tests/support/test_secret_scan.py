"""The secret scan must be able to fail: a planted secret is found wherever it is left."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from tests.support.secret_scan import SecretRecorder, find_secrets, scan


def test_find_secrets_names_where_without_printing_the_secret():
    hits = find_secrets(["s3cr3t-value"], [("log", "user=x password=s3cr3t-value"), ("xcom", "clean")])
    assert hits == ["log: secret #0 (12 characters)"]
    assert "s3cr3t-value" not in hits[0]


def test_a_secret_in_a_task_log_is_caught(pipeline, sf_emulator, monkeypatch, caplog):
    recorder = SecretRecorder(sf_emulator, monkeypatch)
    assert pipeline.run(datetime(2026, 11, 30, tzinfo=UTC)).state == "success"
    assert recorder.tokens, "the run's session tokens are recorded so they can be searched for"
    assert scan(recorder, captured=caplog.text, warehouse_url=pipeline.warehouse_url) == []

    logging.getLogger("careless.task").warning("connecting with %s", sf_emulator.credentials.consumer_secret)
    hits = scan(recorder, captured=caplog.text, warehouse_url=pipeline.warehouse_url)
    length = len(sf_emulator.credentials.consumer_secret)
    assert hits == [f"captured logs and output: secret #2 ({length} characters)"]
    caplog.clear()  # so the fixture's own scan of this test passes
