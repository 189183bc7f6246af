"""Many customers' orgs, end to end: real Airflow (`dag.test()`), one emulator hosting every org
over HTTPS, one real Postgres. Each org has its own DAG, schema, audit, budget and failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.orgs import Orgs

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
TODAY = datetime(2026, 11, 30, tzinfo=UTC)
# Freshness is measured against the real clock: runs for the real today count as fresh.
REAL_TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
pytestmark = pytest.mark.emulator(accounts=20, contacts=60, seed=501, now=NOW)


@pytest.fixture
def orgs(sf_emulator, warehouse, airflow_db, monkeypatch):
    sf_emulator.org.set_clock(NOW)
    return Orgs(sf_emulator, warehouse, monkeypatch)


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def status_view(orgs: Orgs) -> dict[tuple[str, str], dict]:
    rows = orgs.query("SELECT * FROM salesforce_pipeline.org_status")
    return {(r["org"], r["sobject"]): r for r in rows}


def test_five_orgs_load_in_isolation_and_the_broken_ones_catch_up_after_their_fix(orgs, sf_emulator):
    healthy = {"acme": "client_credentials", "globex": "security_token"}
    for key, mode in healthy.items():
        orgs.add(key, mode)
    orgs.add("initech", "client_credentials")
    orgs.connect("initech", "client_credentials", consumer_secret="not-the-secret")  # a wrong secret
    umbrella = orgs.add("umbrella", "security_token")
    umbrella.set_api_usage(umbrella.api_usage[1])  # the day's allowance is spent
    # Bulk 2.0 for every load of this org alone (a per-org override), and its jobs fail.
    hooli = orgs.add("hooli", "client_credentials", bulk_threshold=0)
    hooli.inject("bulk_job_failed", message="InvalidBatch : Failed to process query", count=None)

    runs = {key: orgs.run(key, REAL_TODAY) for key in orgs.entries}

    for key in healthy:
        assert runs[key].state == "success", key
        assert orgs.mismatches(key, "Account") == []
        assert orgs.mismatches(key, "Contact") == []
    for key in ("initech", "umbrella", "hooli"):
        assert runs[key].state == "failed", key
        assert orgs.rows(key, "contact") == {}, f"{key}: nothing lands from a failed load"
    errors = {key: [a["error"] for a in orgs.audit(key) if a["status"] == "failed"] for key in orgs.entries}
    assert any("Check the Consumer Key and Consumer Secret" in e for e in errors["initech"]), errors[
        "initech"
    ]
    assert any("REQUEST_LIMIT_EXCEEDED" in e or "daily" in e.lower() for e in errors["umbrella"]), errors[
        "umbrella"
    ]
    assert any("Failed to process query" in e for e in errors["hooli"]), errors["hooli"]

    # One query answers "which customers are fresh or broken?"
    status = status_view(orgs)
    assert {status[(key, "Contact")]["status"] for key in healthy} == {"fresh"}
    assert {status[(key, "Contact")]["status"] for key in ("initech", "umbrella", "hooli")} == {"broken"}
    assert "Consumer Secret" in status[("initech", "Account")]["last_error"]
    assert status[("acme", "Contact")]["organization_id"] == sf_emulator.org_named("acme").org_id
    assert status[("acme", "Contact")]["rows_upserted"] == len(
        sf_emulator.org_named("acme").snapshot("Contact")
    )

    # The fixes: the right secret, a new day's allowance, Bulk jobs that work again.
    orgs.connect("initech", "client_credentials")
    umbrella.reset_api_usage()
    hooli.clear_faults()
    for key in ("initech", "umbrella", "hooli"):
        assert orgs.run(key, REAL_TODAY).state == "success", key
    for key in orgs.entries:
        assert orgs.mismatches(key, "Account") == [], key
        assert orgs.mismatches(key, "Contact") == [], key
    assert {row["status"] for row in status_view(orgs).values()} == {"fresh"}
    assert {a["method"] for a in orgs.audit("hooli") if a["status"] == "success"} == {"bulk2"}


def test_a_swapped_connection_is_refused_before_anything_is_written(orgs, sf_emulator):
    orgs.add("acme")
    orgs.add("globex")
    assert orgs.run("acme", TODAY).state == "success"
    before = orgs.rows("acme", "contact")
    acme_id, globex_id = sf_emulator.org_named("acme").org_id, sf_emulator.org_named("globex").org_id

    # Credentials pasted into the wrong connection: salesforce_acme now reaches globex's org.
    orgs.connect("acme", org_key="globex")
    sf_emulator.org_named("globex").update(
        "Contact", sf_emulator.org_named("globex").snapshot("Contact")[0]["Id"], {"Title": "Changed"}
    )
    run = orgs.run("acme", datetime(2026, 12, 1, tzinfo=UTC), full_refresh=True)
    assert run.state == "failed"
    assert orgs.rows("acme", "contact") == before, "nothing written to acme's tables"
    failures = [a["error"] for a in orgs.audit("acme") if a["status"] == "failed"]
    assert failures
    assert all(acme_id in e and globex_id in e and "'acme'" in e for e in failures), failures
    assert orgs.query("SELECT organization_id FROM salesforce_pipeline.orgs WHERE org_key = 'acme'") == [
        {"organization_id": acme_id}
    ]


def test_two_entries_that_reach_the_same_salesforce_org_are_refused(orgs, sf_emulator):
    orgs.add("acme")
    assert orgs.run("acme", TODAY).state == "success"
    # A second entry, with a connection of its own, that logs in to acme's org again.
    orgs.connect("acme_again", org_key="acme")
    orgs.register("acme_again")
    assert orgs.run("acme_again", TODAY).state == "failed"
    [error] = {a["error"] for a in orgs.audit("acme_again") if a["status"] == "failed"}
    assert "which org 'acme' already loads" in error
    assert sf_emulator.org_named("acme").org_id in error
    assert orgs.rows("acme_again", "account") == {}


def test_a_disabled_org_keeps_its_data_and_runs_nothing(orgs):
    orgs.add("acme")
    assert orgs.run("acme", TODAY).state == "success"
    loaded = orgs.rows("acme", "account")
    orgs.register("acme", enabled=False)
    dag = orgs.dag("acme")
    assert type(dag.timetable).__name__ == "NullTimetable", "a disabled org is never scheduled"
    run = orgs.run("acme", datetime(2026, 12, 1, tzinfo=UTC))
    assert set(task_states(run).values()) == {"skipped"}
    assert orgs.rows("acme", "account") == loaded


def test_every_log_line_and_asset_event_names_the_org(orgs, capfd):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    orgs.add("acme")
    run = orgs.run("acme", TODAY)
    assert run.state == "success"
    ours = [
        line
        for line in capfd.readouterr().out.splitlines()
        if "SUMMARY" in line or "Logged in to Salesforce" in line or "warehouse schema" in line
    ]
    assert ours
    assert all("org=acme" in line for line in ours), ours
    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
        extras = {(e.extra or {}).get("object"): e.extra for e in events}
    assert extras["Contact"]["org"] == "acme"
    assert extras["Contact"]["schema"] == "salesforce_acme"
    assert extras["Contact"]["upserted"] == len(orgs.rows("acme", "contact"))
    assert extras["Account"]["window"]
    assert extras["Account"]["mode"] == "full_refresh"


def test_a_backfill_of_an_older_day_does_not_make_an_org_look_stale(orgs):
    from datetime import timedelta

    orgs.add("acme")
    assert orgs.run("acme", REAL_TODAY).state == "success"
    assert orgs.run("acme", REAL_TODAY - timedelta(days=5)).state == "success"  # finishes last, older data
    row = status_view(orgs)[("acme", "Contact")]
    assert row["status"] == "fresh"
    assert row["loaded_through"] == REAL_TODAY


def test_each_org_gets_a_dag_with_its_pool_concurrency_and_assets(monkeypatch):
    import json

    from airflow.models import DagBag

    from tests.support.pipeline import REPO_ROOT

    registry = {
        "pool": "salesforce_extraction",
        "orgs": {"acme": {"max_active_loads": 1}, "globex": {"schema": "globex_crm"}, "Not A Key": {}},
    }
    monkeypatch.setenv("AIRFLOW_VAR_SALESFORCE_TO_POSTGRES", json.dumps(registry))
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert not bag.import_errors
    assert set(bag.dags) == {"salesforce_org_acme", "salesforce_org_globex"}, "no single-org DAG beside them"
    acme, globex = bag.dags["salesforce_org_acme"], bag.dags["salesforce_org_globex"]
    assert (acme.max_active_tasks, globex.max_active_tasks) == (1, 2)
    assert acme.is_paused_upon_creation is False, "a new org starts with its next run"
    assert "org:acme" in acme.tags
    for dag in (acme, globex):
        assert dag.max_active_runs == 1
        for task_id in ("sync_account", "sync_contact", "sweep_account", "sweep_contact"):
            task = dag.get_task(task_id)
            assert task.pool == "salesforce_extraction"
            assert task.queue == "salesforce"
            assert task.max_active_tis_per_dag == 1
    assert [o.name for o in globex.get_task("sync_contact").outlets] == ["warehouse.globex_crm.contact"]
    assert [o.name for o in acme.get_task("sync_account").outlets] == ["warehouse.salesforce_acme.account"]
