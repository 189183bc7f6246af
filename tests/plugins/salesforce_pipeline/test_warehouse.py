"""The loader's sessions bound how long a stalled worker can hold a load: Postgres itself ends an
idle transaction after the configured time, and asks dead clients for keepalives."""

from __future__ import annotations

import time

import psycopg2
import pytest

from salesforce_pipeline.settings import PipelineSettings
from salesforce_pipeline.warehouse import Waits


def test_postgres_ends_a_transaction_left_idle_past_the_bound(warehouse):
    conn = psycopg2.connect(warehouse, options=Waits(idle_in_transaction=1.0).connect_options())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(42)")  # what a load holds
        time.sleep(2.5)
        with pytest.raises(psycopg2.OperationalError), conn.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        conn.close()
    other = psycopg2.connect(warehouse)
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(42)")
            assert cur.fetchone()[0], "the lock went with the session"
    finally:
        other.close()


def test_the_sessions_ask_for_keepalives_and_a_healthy_load_is_never_ended_while_it_waits():
    options = Waits.from_settings(PipelineSettings(bulk_max_wait_seconds=7200, object_lock_wait_seconds=600))
    assert options.idle_in_transaction > 7200, "a Bulk job's wait must fit inside the idle bound"
    text = options.connect_options()
    assert "-c tcp_keepalives_idle=30" in text
    assert "-c idle_in_transaction_session_timeout=7500000" in text


def test_the_server_applies_the_keepalive_settings(warehouse):
    conn = psycopg2.connect(warehouse, options=Waits().connect_options())
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW tcp_keepalives_idle")
            idle = cur.fetchone()[0]
    finally:
        conn.close()
    assert idle in ("30", "30s"), "the warehouse is reached over TCP, where keepalives apply"
