"""Server lifecycle, TLS, keep-alive, the CLI, and the pytest plugin fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from salesforce_emulator import Emulator


def test_starts_fast_and_stops(sf_emulator_factory) -> None:
    started = time.perf_counter()
    emu = sf_emulator_factory()
    assert time.perf_counter() - started < 0.3
    assert emu.base_url == f"https://127.0.0.1:{emu.port}"
    assert emu.instance == f"127.0.0.1:{emu.port}"
    url = emu.base_url
    assert requests.get(f"{url}/services/data/").status_code == 200
    emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/services/data/", timeout=2)


def test_context_manager_and_own_ca(tmp_path) -> None:
    with Emulator(accounts=2, contacts=3, seed=1, state_dir=tmp_path) as emu:
        assert os.path.exists(emu.ca_path)
        session = emu.requests_session()  # passes verify= per request
        assert session.get(f"{emu.base_url}/services/data/").status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{emu.base_url}/services/data/", verify=True)  # system roots only
        first_ca = Path(emu.ca_path).read_text()
    with Emulator(accounts=1, contacts=1, seed=1, state_dir=tmp_path) as emu2:
        assert Path(emu2.ca_path).read_text() == first_ca  # state_dir keeps the CA across restarts
    assert not emu.running


def test_fixture_sets_ca_bundle(sf_emulator: Emulator) -> None:
    assert os.environ["REQUESTS_CA_BUNDLE"] == sf_emulator.ca_bundle_path
    assert sf_emulator.org.count("Account", include_deleted=True) == 50
    assert sf_emulator.org.count("Contact", include_deleted=True) == 150


@pytest.mark.emulator(accounts=7, contacts=9, seed=99, daily_limit=123)
def test_marker_options(sf_emulator: Emulator) -> None:
    assert sf_emulator.org.count("Account", include_deleted=True) == 7
    assert sf_emulator.org.count("Contact", include_deleted=True) == 9
    assert sf_emulator.org.seed == 99
    assert sf_emulator.org.api_usage == (0, 123)


def test_keep_alive_reuses_connection(sf_emulator: Emulator) -> None:
    s = requests.Session()
    for _ in range(3):
        r = s.get(f"{sf_emulator.base_url}/services/data/")
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == len(r.content)
    assert len(sf_emulator._server.connections) == 1  # one TLS connection served all three


def test_login_urls_follow_host_header(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    body = requests.post(
        f"https://localhost:{sf_emulator.port}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(c.consumer_key, c.consumer_secret),
    ).json()
    assert body["instance_url"] == f"https://localhost:{sf_emulator.port}"


def test_method_not_allowed_and_unknown_paths(sf_emulator: Emulator) -> None:
    assert requests.get(f"{sf_emulator.base_url}/services/oauth2/token").status_code == 405
    assert requests.get(f"{sf_emulator.base_url}/nope").status_code == 404


def test_cli_ready_line_and_sigterm(tmp_path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "salesforce_emulator", "--host", "0.0.0.0", "--port", "0", "--accounts", "3",
         "--contacts", "5", "--seed", "2", "--hostname", "localhost", "--state-dir", str(tmp_path),
         "--hide-field", "Account.Tier__c", "--calculated-fields", "--org", "acme", "--page-latency-ms", "25",
         "--job-records-per-second", "5000", "--max-concurrent-requests", "25", "--max-cursors-per-user", "9"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        ready, url, ca = line.split(" ")
        assert ready == "READY"
        assert url.startswith("https://localhost:")
        assert ca == f"ca={tmp_path}/emulator-ca.pem"
        versions = requests.get(f"{url}/services/data/", verify=ca.removeprefix("ca=")).json()
        assert versions[-1]["version"] == "66.0"
        fields = requests.get(f"{url}/__admin/fields/Account", verify=ca.removeprefix("ca=")).json()["fields"]
        assert {f["name"]: f["hidden"] for f in fields if f["calculated"]} == {
            "Number_of_Contacts__c": False,
            "Tier_Score__c": False,
        }
        for org in ("default", "acme"):  # the latency model and limits apply to every org
            model = requests.get(f"{url}/__admin/latency?org={org}", verify=ca.removeprefix("ca=")).json()
            assert (model["page_latency_ms"], model["job_records_per_second"]) == (25, 5000)
            assert (model["max_concurrent_requests"], model["max_cursors_per_user"]) == (25, 9)
            assert (model["poll_latency_ms"], model["long_running_seconds"]) == (0, 20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""  # exactly one line
    finally:
        if proc.poll() is None:
            proc.kill()
