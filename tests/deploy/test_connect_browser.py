"""The Connect Salesforce page as a new user walks it, in headless Chromium against a running
Airflow and the emulator: both authentication types, a wrong secret refused with its field named
and nothing saved, the right one saved with its Organization Id and its first load run to
success; then rotate a secret, switch a type, disable and enable. Every page the browser saw, and
every log, is scanned for the secrets typed. Screenshots: test-artifacts/connect/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from salesforce_emulator import ConnectedApp
from salesforce_emulator.server import Emulator
from tests.deploy.airflow_server import loader_database, running_airflow
from tests.deploy.test_browser import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, playwright_api  # noqa: F401
from tests.deploy.test_connect_page import connect_environment, failed_task_logs
from tools.local_airflow.layout import ROOT as REPO_ROOT
from tools.local_airflow.server import AirflowServer

pytestmark = [pytest.mark.browser, pytest.mark.airflow_server]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "connect"
NOW = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def emulator(sf_emulator_ca) -> Iterator[Emulator]:
    emu = Emulator(ca=sf_emulator_ca, accounts=12, contacts=36, seed=95, now=NOW).start()
    emu.add_org("globex", accounts=9, contacts=27, now=NOW)
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def airflow(playwright_api, tmp_path_factory, pg_admin_url, emulator) -> Iterator[AirflowServer]:  # noqa: F811
    home = tmp_path_factory.mktemp("airflow-connect-browser")
    with loader_database(pg_admin_url) as warehouse_url:
        connections = {"postgres_warehouse": warehouse_url}
        with running_airflow(home, pg_admin_url, connections, connect_environment(home, emulator)) as server:
            yield server


class Walk:
    """The browser, numbered screenshots, and every page's HTML for the secret scan."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base, self.count, self.seen = page, base, 0, []

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(ARTIFACTS / f"{self.count:02d}-{name}.png"), full_page=True)
        self.seen.append(self.page.content())

    def choose(self, title: str) -> None:
        self.page.get_by_label(title, exact=False).check()
        self.page.locator("#choose").click()

    def fill(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self.page.locator(f"#{name}").fill(value)

    def connect(self) -> None:
        self.page.locator("#connect").click()
        self.page.wait_for_load_state()


@pytest.fixture
def walk(playwright_api, airflow) -> Iterator[Walk]:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    browser = playwright_api.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield Walk(page, airflow.base_url)
    finally:
        page.screenshot(path=str(ARTIFACTS / "zz-last-screen.png"), full_page=True)
        context.close()
        browser.close()


def wait_for_first_load(airflow: AirflowServer, dag: str, timeout: float = 240) -> list[dict]:
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        response = airflow.request("GET", f"/api/v2/dags/{dag}/dagRuns")
        runs = response.json()["dag_runs"] if response.ok else []
        if runs and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(2)
    assert [r["state"] for r in runs] == ["success"], failed_task_logs(airflow, dag, runs)
    return runs


def saved(airflow: AirflowServer, conn_id: str) -> bool:
    return airflow.request("GET", f"/api/v2/connections/{conn_id}").ok


def test_a_new_user_connects_both_authentication_types_and_manages_them(walk, airflow, emulator):
    page = walk.page
    acme, globex = emulator.org, emulator.org_named("globex")
    page.goto(f"{airflow.base_url}/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Dags").first.wait_for()
    page.get_by_role("link", name="Salesforce orgs").first.wait_for()  # the page is in the navigation
    walk.shot("airflow-navigation")

    page.goto(f"{airflow.base_url}/salesforce/")
    page.get_by_text("No org yet").wait_for()
    walk.shot("orgs-empty")

    # Connected App: only that type's fields, a wrong secret refused with the field named.
    page.get_by_role("button", name="Connect Salesforce").click()
    walk.choose("Connected App (OAuth 2.0 Client Credentials)")
    for shown in ("domain", "consumer_key", "consumer_secret"):
        assert page.locator(f"#{shown}").is_visible()
    for hidden in ("login", "password", "security_token"):
        assert page.locator(f"#{hidden}").count() == 0, f"{hidden} belongs to the other type"
    page.get_by_text("Enable Client Credentials Flow").first.wait_for()
    walk.shot("connected-app-fields")
    walk.fill(
        {
            "org_key": "acme",
            "domain": emulator.base_url,
            "consumer_key": acme.credentials.consumer_key,
            "consumer_secret": "not-the-secret",
        }
    )
    walk.connect()
    problem = page.locator("#problem-consumer_secret")
    problem.wait_for()
    assert "Consumer Secret" in problem.inner_text()
    assert page.locator("#consumer_key").input_value() == acme.credentials.consumer_key, "typed values kept"
    assert page.locator("#consumer_secret").input_value() == "", "a secret is never sent back"
    walk.shot("connected-app-wrong-secret")
    assert not saved(airflow, "salesforce_acme")

    walk.fill({"consumer_secret": acme.credentials.consumer_secret})
    walk.connect()
    page.locator("#connected").wait_for()
    assert page.locator("#organization-id").inner_text() == acme.org_id
    # The calls left today, not the calls used (the org has most of its allowance left).
    assert int(page.locator("#api-calls-left").inner_text()) > acme.api_usage[1] // 2
    walk.shot("connected-app-connected")

    # Security Token: its own fields and help; a wrong token refused, then the right one.
    page.goto(f"{airflow.base_url}/salesforce/connect")
    walk.choose("Security Token with Username & Password")
    page.get_by_text("Reset My Security Token").first.wait_for()
    assert page.locator("#consumer_key").count() == 0
    walk.shot("security-token-fields")
    creds = globex.credentials
    walk.fill(
        {
            "org_key": "globex",
            "login": creds.username,
            "password": creds.password,
            "security_token": "wrongToken",
            "domain": emulator.base_url,
        }
    )
    walk.connect()
    page.locator("#problems").wait_for()
    assert "Security Token" in page.locator("#problems").inner_text()
    walk.shot("security-token-refused")
    assert not saved(airflow, "salesforce_globex")
    walk.fill({"password": creds.password, "security_token": creds.security_token})
    walk.connect()
    page.locator("#connected").wait_for()
    assert page.locator("#organization-id").inner_text() == globex.org_id
    walk.shot("security-token-connected")

    # Each org's first load, started by Connect, runs to success; the orgs page shows them.
    wait_for_first_load(airflow, "salesforce_org_acme")
    wait_for_first_load(airflow, "salesforce_org_globex")
    page.goto(f"{airflow.base_url}/salesforce/")
    for org in (acme, globex):
        page.locator(".organization-id").filter(has_text=org.org_id).wait_for()
    assert page.locator(".status-fresh").count() + page.locator(".status-stale").count() == 4
    walk.shot("orgs-loaded")

    # Rotate acme's secret: a new Connected App secret; the old one is never shown again.
    rotated = ConnectedApp(
        "3MVG9rotatedConsumerKey", "rotated-consumer-secret", run_as=acme.credentials.username
    )
    acme.add_connected_app(rotated)
    page.goto(f"{airflow.base_url}/salesforce/orgs/acme")
    page.locator("#edit").click()
    assert page.locator("#consumer_secret").input_value() == ""
    walk.fill({"consumer_key": rotated.consumer_key, "consumer_secret": rotated.consumer_secret})
    walk.shot("rotate-secret")
    walk.connect()
    page.locator("#connected").wait_for()
    walk.shot("rotated")
    extra = json.loads(airflow.api("GET", "/api/v2/connections/salesforce_acme")["extra"])
    assert extra["consumer_key"] == rotated.consumer_key

    # Switch globex to a Connected App.
    page.goto(f"{airflow.base_url}/salesforce/orgs/globex/edit")
    walk.choose("Connected App (OAuth 2.0 Client Credentials)")
    walk.fill(
        {
            "domain": emulator.base_url,
            "consumer_key": creds.consumer_key,
            "consumer_secret": creds.consumer_secret,
        }
    )
    walk.connect()
    page.locator("#connected").wait_for()
    page.goto(f"{airflow.base_url}/salesforce/orgs/globex")
    assert "Connected App" in page.locator("#auth-type").inner_text()
    walk.shot("switched-type")

    # Disable acme (its data stays), then enable it again.
    page.goto(f"{airflow.base_url}/salesforce/orgs/acme")
    page.locator("#toggle-enabled").click()
    page.get_by_role("heading", name="Org acme (disabled)").wait_for()
    walk.shot("disabled")
    registry = json.loads(airflow.api("GET", "/api/v2/variables/salesforce_to_postgres")["value"])
    assert registry["orgs"]["acme"]["enabled"] is False
    page.locator("#toggle-enabled").click()
    page.get_by_role("heading", name="Org acme", exact=True).wait_for()
    walk.shot("enabled-again")

    # Who did what, never a secret; and no secret in any page or log the walk produced.
    events = airflow.api("GET", "/api/v2/eventLogs", params={"limit": 100})["event_logs"]
    ours = [e for e in events if e["event"].startswith("salesforce_connect.")]
    assert [e["event"] for e in sorted(ours, key=lambda e: e["event_log_id"])] == [
        "salesforce_connect.connect",
        "salesforce_connect.connect",
        "salesforce_connect.edit",
        "salesforce_connect.edit",
        "salesforce_connect.disable",
        "salesforce_connect.enable",
    ]
    assert {e["owner"] for e in ours} == {"admin"}
    secrets = [
        acme.credentials.consumer_secret,
        rotated.consumer_secret,
        creds.password,
        creds.security_token,
        creds.consumer_secret,
        "not-the-secret",
        "wrongToken",
    ]
    logs = "\n".join(p.read_text(errors="replace") for p in airflow.logs.rglob("*") if p.is_file())
    haystacks = {"pages": "\n".join(walk.seen), "audit log": json.dumps(ours), "logs": logs}
    leaks = [(where, s[:4]) for where, text in haystacks.items() for s in secrets if s in text]
    assert leaks == [], f"secrets found: {leaks}"
