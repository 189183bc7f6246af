"""One emulator, many orgs: each login reaches its own org (Organization Id, records, allowance,
faults), through the unmodified simple-salesforce client and the admin API."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.login import SalesforceLogin

from salesforce_emulator import Emulator


def _login(emulator: Emulator, creds, flow: str) -> Salesforce:
    session = emulator.requests_session()
    if flow == "soap":
        session_id, instance = SalesforceLogin(
            username=creds.username,
            password=creds.password,
            security_token=creds.security_token,
            session=session,
            scratch_url=emulator.base_url,
        )
    else:
        response = session.post(
            f"{emulator.base_url}/services/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(creds.consumer_key, creds.consumer_secret),
        )
        response.raise_for_status()
        session_id, instance = response.json()["access_token"], emulator.instance
    return Salesforce(session_id=session_id, instance=instance, session=session)


@pytest.mark.parametrize("flow", ["soap", "oauth"])
def test_each_login_reaches_its_own_org(sf_emulator: Emulator, flow: str) -> None:
    acme = sf_emulator.add_org("acme", accounts=7, contacts=21)
    globex = sf_emulator.add_org("globex", accounts=4, contacts=12)
    assert len({sf_emulator.org.org_id, acme.org_id, globex.org_id}) == 3
    for org in (acme, globex, sf_emulator.org):
        sf = _login(sf_emulator, org.credentials, flow)
        assert sf.session_id.startswith(org.org_id[:15]), "a session id starts with its org's Id"
        ids = {r["Id"] for r in sf.query_all("SELECT Id FROM Account")["records"]}
        assert ids == {r["Id"] for r in org.snapshot("Account") if not r["IsDeleted"]}
    assert len(acme.snapshot("Account")) == 7
    assert len(globex.snapshot("Account")) == 4


def test_allowance_faults_and_counters_are_per_org(sf_emulator: Emulator) -> None:
    acme = sf_emulator.add_org("acme", accounts=5, contacts=10)
    globex = sf_emulator.add_org("globex", accounts=5, contacts=10)
    acme.set_api_usage(acme.api_usage[1])  # acme's day is spent
    globex.inject("server_unavailable", count=1)
    with pytest.raises(SalesforceError, match="REQUEST_LIMIT_EXCEEDED"):
        _login(sf_emulator, acme.credentials, "oauth").query("SELECT Id FROM Account")
    sf = _login(sf_emulator, globex.credentials, "oauth")
    with pytest.raises(SalesforceError):
        sf.query("SELECT Id FROM Account")  # its own fault, once
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == globex.count("Account")
    assert sf_emulator.org.api_usage[0] == 0, "the first org was never touched"
    assert not any(sf_emulator.org.logins.values())


def test_a_session_of_one_org_never_reads_another(sf_emulator: Emulator) -> None:
    acme = sf_emulator.add_org("acme", accounts=5, contacts=10)
    sf = _login(sf_emulator, acme.credentials, "oauth")
    globex_contact = sf_emulator.org.snapshot("Contact")[0]["Id"]
    with pytest.raises(SalesforceError):
        sf.Contact.get(globex_contact)
    acme.expire_sessions()
    with pytest.raises(SalesforceError, match="INVALID_SESSION_ID"):
        sf.query("SELECT Id FROM Account")


def test_the_admin_api_adds_lists_and_selects_orgs(sf_emulator: Emulator) -> None:
    base = f"{sf_emulator.base_url}/__admin"
    created = requests.post(f"{base}/orgs", json={"key": "initech", "accounts": 3, "contacts": 6})
    assert created.status_code == 201
    initech = created.json()
    assert initech["org_id"].startswith("00D")
    assert initech["credentials"]["username"] == "integration@initech.example"
    listed = requests.get(f"{base}/orgs").json()
    assert set(listed) == {"default", "initech"}
    assert requests.get(f"{base}/state", params={"org": "initech"}).json()["org_id"] == initech["org_id"]
    accounts = requests.get(f"{base}/records/Account", params={"org": "initech"}).json()
    assert len(accounts) == 3
    assert requests.get(f"{base}/state", params={"org": "nope"}).status_code == 404
    assert requests.post(f"{base}/orgs", json={"key": "initech"}).status_code == 400
