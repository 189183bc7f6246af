"""The emulator's responses against Salesforce's documented example bodies (shapes, not values)."""

from __future__ import annotations

import json
import re
import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest
import requests

from salesforce_emulator import Emulator

FIXTURES = Path(__file__).parent / "fixtures"
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def shape(value: Any) -> Any:
    """Types and keys, recursively; lists by their first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, str) and DATETIME.match(value):
        return "datetime"
    return type(value).__name__


def tags(xml_bytes: bytes) -> list[str]:
    return [n.tagName for n in xml.dom.minidom.parseString(xml_bytes).getElementsByTagName("*")]


@pytest.fixture
def api(sf_emulator: Emulator) -> tuple[requests.Session, str]:
    session_id, _ = sf_emulator.login()
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {session_id}"
    return s, f"{sf_emulator.base_url}/services/data/v59.0"


@pytest.mark.emulator(contacts=2400)
def test_query_page(api: tuple[requests.Session, str]) -> None:
    s, base = api
    body = s.get(
        f"{base}/query/",
        params={"q": "SELECT Name, Account.Name, CreatedDate FROM Contact WHERE AccountId != null"},
    ).json()
    documented = load("query_response.json")
    assert set(body) == set(documented)
    assert shape(body["records"][0]) == shape(documented["records"][0])
    assert re.match(r"^/services/data/v59\.0/query/01g[0-9A-Za-z]{15}-2000$", body["nextRecordsUrl"])
    count = s.get(f"{base}/query/", params={"q": "SELECT COUNT() FROM Contact"}).json()
    assert shape(count) == shape(load("count_response.json"))


def test_errors(sf_emulator: Emulator, api: tuple[requests.Session, str]) -> None:
    s, base = api
    malformed = s.get(f"{base}/query/", params={"q": "SELECT Id FROM Account WHERE"})
    assert malformed.status_code == 400
    assert malformed.json() == load("error_malformed_query.json")
    expired = requests.get(f"{base}/limits/", headers={"Authorization": "Bearer nope"})
    assert expired.status_code == 401
    assert expired.json() == load("error_invalid_session.json")


def test_oauth(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    url = f"{sf_emulator.base_url}/services/oauth2/token"
    ok = requests.post(
        url, data={"grant_type": "client_credentials"}, auth=(c.consumer_key, c.consumer_secret)
    ).json()
    assert shape(ok) == shape(load("oauth_client_credentials.json"))
    assert re.match(r"^00D[0-9A-Za-z]{12}!", ok["access_token"])
    bad = requests.post(url, data={"grant_type": "client_credentials"}, auth=(c.consumer_key, "x"))
    assert bad.status_code == 400
    assert bad.json() == load("oauth_error.json")


def test_soap(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    envelope = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/">'
        '<env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com"><n1:username>{u}</n1:username>'
        "<n1:password>{p}</n1:password></n1:login></env:Body></env:Envelope>"
    )
    url = f"{sf_emulator.base_url}/services/Soap/u/59.0"
    ok = requests.post(
        url, envelope.format(u=c.username, p=c.password + c.security_token), headers={"SOAPAction": "login"}
    )
    documented = (FIXTURES / "soap_login_response.xml").read_bytes()
    assert set(tags(documented)) <= set(tags(ok.content))
    assert tags(ok.content)[:4] == tags(documented)[:4]
    bad = requests.post(url, envelope.format(u=c.username, p="x"), headers={"SOAPAction": "login"})
    assert bad.status_code == 500
    assert bad.content == (FIXTURES / "soap_login_fault.xml").read_bytes().strip()


def test_limits_and_versions(api: tuple[requests.Session, str], sf_emulator: Emulator) -> None:
    s, base = api
    limits = s.get(f"{base}/limits/").json()
    documented = load("limits.json")
    assert set(documented) <= set(limits)
    assert all(set(limits[k]) == {"Max", "Remaining"} for k in limits)
    versions = requests.get(f"{sf_emulator.base_url}/services/data/").json()
    assert shape(versions) == shape(load("versions.json"))


def test_bulk2(api: tuple[requests.Session, str]) -> None:
    s, base = api
    created = s.post(
        f"{base}/jobs/query", json={"operation": "query", "query": "SELECT Id, Name FROM Account"}
    ).json()
    documented = load("bulk2_create_job.json")
    assert list(created) == list(documented)
    assert shape(created) == shape(documented)
    early = s.get(f"{base}/jobs/query/{created['id']}/results")
    documented_error = load("bulk2_job_not_complete.json")[0]
    assert early.status_code == 412
    assert early.json()[0]["errorCode"] == documented_error["errorCode"]
    # Right after creation the job is UploadComplete (the documented example was polled later).
    assert (
        early.json()[0]["message"].split("Current status:")[0]
        == documented_error["message"].split("Current status:")[0]
    )
    while (info := s.get(f"{base}/jobs/query/{created['id']}").json())["state"] != "JobComplete":
        pass
    documented_info = load("bulk2_job_info.json")
    assert set(documented_info) <= set(info)
    assert {k: shape(info[k]) for k in documented_info} == shape(documented_info)
    page = s.get(f"{base}/jobs/query/{created['id']}/results", params={"maxRecords": 3})
    example = (FIXTURES / "bulk2_results.csv").read_text()
    assert page.text.splitlines()[0] == example.splitlines()[0]
    assert all(re.match(r'^"[0-9A-Za-z]{18}","', line) for line in page.text.splitlines()[1:])
    assert page.text.endswith("\n")
    assert "\r" not in page.text


def test_describe_field(api: tuple[requests.Session, str]) -> None:
    s, base = api
    fields = {f["name"]: f for f in s.get(f"{base}/sobjects/Account/describe").json()["fields"]}
    documented = load("describe_field_name.json")
    assert set(fields["Name"]) == set(documented)
    assert {
        k: fields["Name"][k] for k in ("type", "length", "soapType", "nameField", "nillable", "byteLength")
    } == {k: documented[k] for k in ("type", "length", "soapType", "nameField", "nillable", "byteLength")}
