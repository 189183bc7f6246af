"""The operator's path through the Airflow UI, driven in headless Chromium with Playwright.

Against a real running Airflow (tools/local_airflow, through tests/deploy/airflow_server.py) and the emulator: log in, add a
connection of our type through the form for each authentication type and test it (and one with
a wrong secret, which must fail clearly), open the DAG's trigger form and see its params, start a
backfill from the Backfill dialog, wait for its runs, and find the SUMMARY line in a task's log
page. Screenshots of every step are kept in test-artifacts/browser/ (git-ignored).

The browser is Debian's chromium (`tools/install_browser.sh`); Playwright's own browser builds
cannot be downloaded here. Without it the test is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from salesforce_emulator.server import Emulator
from salesforce_pipeline.provider_info import HOOK_NAME, get_provider_info
from tests.deploy.airflow_server import DAG_ID, DeployedPipeline, deployed_pipeline, wait_for_runs
from tools.local_airflow.layout import ROOT as REPO_ROOT
from tools.local_airflow.settings import ADMIN_PASSWORD, ADMIN_USER

pytestmark = [pytest.mark.browser, pytest.mark.airflow_server]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Nothing but our own servers may be contacted: no updates, sync or background fetches.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
# A React app on 2 busy cores: generous for waits on the UI, never for the test as a whole.
UI_TIMEOUT_MS = 30_000

NOW = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)
DAYS = [datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)]


def _unavailable(reason: str) -> None:
    # Under CI a missing browser is a broken setup (.ci/run installs it), never a silent skip.
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser test: tools/install_browser.sh installs it)")
    pytest.skip(f"{reason}; run tools/install_browser.sh")


@pytest.fixture(scope="module")
def playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (requirements-dev.txt pins it)")
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="module")
def emulator(sf_emulator_ca) -> Iterator[Emulator]:
    # Module-scoped like the Airflow that points at it (sf_emulator_factory is per test).
    emu = Emulator(ca=sf_emulator_ca, accounts=30, contacts=90, seed=91, now=NOW).start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def deployed(playwright_api, tmp_path_factory, pg_admin_url, emulator) -> Iterator[DeployedPipeline]:
    # The DAG's own connection uses the Security Token mode here (test_airflow_server.py runs
    # the Connected App one), so both modes run in a real Airflow.
    home = tmp_path_factory.mktemp("airflow-home")
    with deployed_pipeline(home, pg_admin_url, emulator, mode="security_token") as pipeline:
        yield pipeline


@pytest.fixture
def page(playwright_api, deployed):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    browser = playwright_api.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        # The last screen is the evidence when a step failed (and harmless when none did).
        page.screenshot(path=str(ARTIFACTS / "zz-last-screen.png"), full_page=True)
        context.close()
        browser.close()


class Steps:
    """Numbered screenshots, so the artifacts read as the walkthrough in order."""

    def __init__(self, page) -> None:
        self.page = page
        self.count = 0

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(ARTIFACTS / f"{self.count:02d}-{name}.png"), full_page=True)


# --- the connection form --------------------------------------------------------------------

_FIELDS = get_provider_info()["connection-types"][0]["conn-fields"]
_BEHAVIOUR = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
STANDARD_LABELS = _BEHAVIOUR["relabeling"]  # login -> Username, password -> Password


def _label(key: str) -> str:
    return STANDARD_LABELS.get(key) or _FIELDS[key]["label"]


def _section(key: str) -> str:
    """The form's accordion section a field sits in (only one is open at a time)."""
    if key in STANDARD_LABELS:
        return "Standard Fields"
    return _FIELDS[key]["schema"].get("section", "Extra Fields")


def _auth_choice(mode: str) -> str:
    return _FIELDS["auth_type"]["schema"]["values_display"][mode]


def connection_values(emulator: Emulator, mode: str, **wrong: str) -> dict[str, str]:
    creds = emulator.credentials
    if mode == "client_credentials":
        values = {"consumer_key": creds.consumer_key, "consumer_secret": creds.consumer_secret}
    else:
        values = {"login": creds.username, "password": creds.password, "security_token": creds.security_token}
    # The Domain field takes the emulator's base URL; the CA Bundle Path makes the hook trust its CA.
    values |= {"domain": emulator.base_url, "ca_bundle": str(emulator.ca_path)}
    return values | wrong


def open_section(dialog, name: str) -> None:
    trigger = dialog.get_by_role("button", name=name, exact=True)
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()


def form_input(page, dialog, key: str):
    # The extras' <label for=...> does not point at their <input> in Airflow 3.3's form, so
    # get_by_label cannot find them: take the field group that shows the label instead.
    group = dialog.get_by_role("group").filter(has=page.get_by_text(_label(key), exact=True))
    return group.last.locator("input")


def add_connection(page, steps: Steps, conn_id: str, mode: str, values: dict[str, str]) -> None:
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Connection ID").fill(conn_id)
    dialog.get_by_role("combobox", name="Connection Type").fill(HOOK_NAME)
    page.get_by_role("option", name=HOOK_NAME, exact=True).click()
    open_section(dialog, "Extra Fields")
    dialog.get_by_role("combobox", name=_label("auth_type")).click()
    page.get_by_role("option", name=_auth_choice(mode), exact=True).click()
    for key, value in values.items():
        open_section(dialog, _section(key))
        form_input(page, dialog, key).fill(value)
    # What the form will store, as the operator can check it before saving.
    open_section(dialog, "Extra Fields JSON")
    steps.shot(f"connection-{conn_id}-filled")
    dialog.get_by_role("button", name="Save").click()
    page.get_by_role("row").filter(has_text=conn_id).wait_for()


def press_test(page, steps: Steps, conn_id: str) -> tuple[str, str]:
    """Press the row's Test button; returns the toast's (title, text)."""
    with page.expect_response("**/api/v2/connections/test") as answer:
        page.get_by_role("row").filter(has_text=conn_id).get_by_role("button", name="Test Connection").click()
    assert answer.value.status == 200, f"test of {conn_id}: HTTP {answer.value.status} {answer.value.text()}"
    toast = page.locator("[data-scope=toast][data-part=root]").filter(has_text=re.compile("Test Connection"))
    toast.last.wait_for()
    text = toast.last.inner_text()
    steps.shot(f"connection-{conn_id}-tested")
    page.keyboard.press("Escape")
    title = "success" if "Test Connection Successful" in text else "failed"
    return title, text


# --- the test -------------------------------------------------------------------------------


def test_operator_path_through_the_ui(page, deployed: DeployedPipeline):
    airflow, emulator = deployed.airflow, deployed.emulator
    steps = Steps(page)

    page.goto(f"{airflow.base_url}/")
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Dags").first.wait_for()
    steps.shot("logged-in")

    # Admin → Connections → add, one connection per authentication type, then Test each.
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Connections").click()
    page.get_by_role("button", name="Add Connection").wait_for()
    for mode in ("client_credentials", "security_token"):
        conn_id = f"sf_ui_{mode}"
        add_connection(page, steps, conn_id, mode, connection_values(emulator, mode))
        stored = airflow.api("GET", f"/api/v2/connections/{conn_id}")
        extra = json.loads(stored["extra"])
        assert (stored["conn_type"], extra["auth_type"], extra["domain"], extra["ca_bundle"]) == (
            "customerscore_salesforce",
            mode,
            emulator.base_url,
            str(emulator.ca_path),
        )
        outcome, text = press_test(page, steps, conn_id)
        assert outcome == "success", text
        assert "Connected to Salesforce org" in text, text

    wrong = "sf_ui_wrong_secret"
    add_connection(
        page,
        steps,
        wrong,
        "client_credentials",
        connection_values(emulator, "client_credentials", consumer_secret="not-the-secret"),
    )
    outcome, text = press_test(page, steps, wrong)
    assert outcome == "failed", text
    assert "invalid_client" in text, text
    assert "Consumer Secret" in text, text
    assert "not-the-secret" not in text

    # The DAG: its trigger form shows the params; the Backfill side starts a date range.
    page.goto(f"{airflow.base_url}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    # Each param is a form field titled by its Param title and named after its key.
    params = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/details")["params"]
    for key in ("full_refresh", "objects", "extraction_method"):
        title = params[key]["schema"]["title"]
        dialog.locator("label").filter(has_text=re.compile(rf"^{re.escape(title)}\b")).first.wait_for()
        assert dialog.locator(f"[name=element_{key}]").count() == 1, f"no form field for param {key}"
    steps.shot("trigger-form-params")
    dialog.get_by_text("Backfill", exact=True).click()
    pick_datetime(page, dialog, "From", DAYS[0])
    pick_datetime(page, dialog, "To", DAYS[-1])
    dialog.get_by_text(f"{len(DAYS)} runs will be triggered.").wait_for()
    unpause = dialog.get_by_role("checkbox", name=re.compile("Unpause"))
    if not unpause.is_checked():
        unpause.check()
    steps.shot("backfill-dialog")
    dialog.get_by_role("button", name="Run Backfill").click()
    page.get_by_text("Backfill generated").wait_for()
    steps.shot("backfill-started")

    runs = wait_for_runs(airflow, DAG_ID, DAYS, timeout=120)
    assert deployed.mismatches("Account") == []
    assert deployed.mismatches("Contact") == []

    # A task's log page in the UI shows the SUMMARY line.
    first = runs[0]["dag_run_id"]
    page.goto(f"{airflow.base_url}/dags/{DAG_ID}/runs/{first}/tasks/sync_account")
    summary = page.get_by_text(re.compile(r"SUMMARY Account: mode=full_refresh .*extracted=\d+"))
    summary.first.wait_for()
    steps.shot("task-log-summary")
    assert emulator.credentials.password not in page.inner_text("body")


def pick_datetime(page, dialog, label: str, moment: datetime) -> None:
    """Fill one of the Backfill dialog's date-time pickers (a popover with date and time inputs)."""
    dialog.get_by_role("group").filter(has=page.get_by_text(label, exact=True)).get_by_test_id(
        "datetime-input"
    ).click()
    popover = page.locator("[data-scope=popover][data-part=content]").filter(visible=True)
    popover.get_by_placeholder("YYYY/MM/DD").fill(moment.strftime("%Y/%m/%d"))
    popover.get_by_placeholder("HH:mm").fill(moment.strftime("%H:%M"))
    popover.get_by_placeholder("HH:mm").press("Enter")
    page.keyboard.press("Escape")
    popover.wait_for(state="hidden")
    dialog.get_by_text(moment.strftime("%b %d, %Y %H:%M")).wait_for()
