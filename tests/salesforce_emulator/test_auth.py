"""Both login flows over HTTPS, driven through simple-salesforce's own login code."""

from __future__ import annotations

import base64

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin, token_login
from simple_salesforce.util import getUniqueElementValueFromXmlString

from salesforce_emulator import ConnectedApp, Emulator, UserLogin


def soap_login(
    emu: Emulator, version: str = "59.0", password: str | None = None, token: str | None = None
) -> tuple[str, str]:
    creds = emu.credentials
    # scratch_url is simple-salesforce's own way to send the SOAP login() elsewhere than
    # https://{domain}.salesforce.com; the request bytes are exactly those it sends there.
    return SalesforceLogin(
        username=creds.username,
        password=password if password is not None else creds.password,
        security_token=token if token is not None else creds.security_token,
        sf_version=version,
        scratch_url=emu.base_url,
    )


def test_soap_login_success(sf_emulator: Emulator) -> None:
    session_id, instance = soap_login(sf_emulator)
    assert instance == sf_emulator.instance
    assert session_id.startswith(sf_emulator.org.org_id[:15] + "!")
    sf = Salesforce(session_id=session_id, instance=instance)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == sf_emulator.org.count("Account")
    assert sf_emulator.org.logins == {"soap": 1, "oauth": 0}


def test_soap_login_response_parsed_by_simple_salesforce(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    body = f"""<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
    <env:Body><n1:login xmlns:n1="urn:partner.soap.sforce.com">
        <n1:username>{c.username}</n1:username><n1:password>{c.password}{c.security_token}</n1:password>
    </n1:login></env:Body></env:Envelope>"""
    resp = requests.post(
        f"{sf_emulator.base_url}/services/Soap/u/59.0",
        body,
        headers={"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"},
    )
    assert resp.status_code == 200
    server_url = getUniqueElementValueFromXmlString(resp.content, "serverUrl")
    assert server_url == f"{sf_emulator.base_url}/services/Soap/u/59.0/{sf_emulator.org.org_id[:15]}"
    assert getUniqueElementValueFromXmlString(resp.content, "userId") == sf_emulator.org.integration_user_id
    assert getUniqueElementValueFromXmlString(resp.content, "organizationId") == sf_emulator.org.org_id
    assert getUniqueElementValueFromXmlString(resp.content, "sessionId")


@pytest.mark.parametrize(
    ("password", "token"),
    [("wrong", None), (None, "wrongToken"), (None, "")],
)
def test_soap_login_invalid(sf_emulator: Emulator, password: str | None, token: str | None) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        soap_login(sf_emulator, password=password, token=token)
    assert info.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token; or user locked out." in info.value.auth_message
    assert sf_emulator.org.login_failures["soap"] == 1


def test_soap_fault_wire_format(sf_emulator: Emulator) -> None:
    body = "<env:Envelope xmlns:env='http://schemas.xmlsoap.org/soap/envelope/' xmlns:n1='urn:partner.soap.sforce.com'><env:Body><n1:login><n1:username>x</n1:username><n1:password>y</n1:password></n1:login></env:Body></env:Envelope>"
    resp = requests.post(
        f"{sf_emulator.base_url}/services/Soap/u/59.0", body, headers={"SOAPAction": "login"}
    )
    assert resp.status_code == 500
    assert b'xmlns:sf="urn:fault.partner.soap.sforce.com"' in resp.content
    assert getUniqueElementValueFromXmlString(resp.content, "faultcode") == "sf:INVALID_LOGIN"
    assert getUniqueElementValueFromXmlString(resp.content, "sf:exceptionCode") == "INVALID_LOGIN"


@pytest.mark.parametrize("version", ["65.0", "66.0", "30.0"])
def test_soap_login_unsupported_versions(sf_emulator: Emulator, version: str) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        soap_login(sf_emulator, version=version)
    assert info.value.code == "UNSUPPORTED_API_VERSION"


def test_soap_login_64_is_last_supported(sf_emulator: Emulator) -> None:
    session_id, _ = soap_login(sf_emulator, version="64.0")
    assert session_id


def test_trusted_ip_user_without_token(sf_emulator_factory) -> None:
    emu = sf_emulator_factory(users=[UserLogin("ip@example.com", "pw", "tok", require_token=False)])
    sid, _ = SalesforceLogin(
        username="ip@example.com", password="pw", security_token="", scratch_url=emu.base_url
    )
    assert sid


def _oauth(emu: Emulator, key: str, secret: str) -> tuple[str, str]:
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    # token_login is the code path SalesforceLogin uses for client credentials (its URL is
    # hard-coded to salesforce.com, so we call the function it delegates to).
    return token_login(
        f"{emu.base_url}/services/oauth2/token",
        {"grant_type": "client_credentials"},
        "acme.my",
        key,
        {"Authorization": f"Basic {basic}"},
        None,
        None,
    )


def test_oauth_client_credentials(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    token, instance = _oauth(sf_emulator, c.consumer_key, c.consumer_secret)
    assert instance == sf_emulator.instance
    sf = Salesforce(instance_url=f"https://{instance}", session_id=token)
    assert sf.query("SELECT Id FROM Contact LIMIT 1")["records"]
    assert sf_emulator.org.logins == {"soap": 0, "oauth": 1}


def test_oauth_response_fields(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    resp = requests.post(
        f"{sf_emulator.base_url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": c.consumer_key,
            "client_secret": c.consumer_secret,
        },
    )
    body = resp.json()
    assert resp.status_code == 200
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sf_emulator.base_url
    assert body["issued_at"].isdigit()
    assert len(body["issued_at"]) == 13
    assert body["id"].endswith(f"/id/{sf_emulator.org.org_id}/{sf_emulator.org.integration_user_id}")


@pytest.mark.parametrize(
    ("key", "secret"), [("3MVG9demoConsumerKey", "nope"), ("unknown", "demo-consumer-secret")]
)
def test_oauth_invalid_client(sf_emulator: Emulator, key: str, secret: str) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        _oauth(sf_emulator, key, secret)
    assert info.value.code == "invalid_client"
    assert info.value.auth_message == "invalid client credentials"
    resp = requests.post(
        f"{sf_emulator.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(key, secret),
    )
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}


def test_oauth_other_failures(sf_emulator_factory) -> None:
    emu = sf_emulator_factory(connected_apps=[ConnectedApp("key", "secret", run_as=None)])
    resp = requests.post(
        f"{emu.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=("key", "secret"),
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"
    resp = requests.post(
        f"{emu.base_url}/services/oauth2/token", data={"grant_type": "magic"}, auth=("key", "secret")
    )
    assert resp.json()["error"] == "unsupported_grant_type"


def test_oauth_password_grant(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    data = {
        "grant_type": "password",
        "client_id": c.consumer_key,
        "client_secret": c.consumer_secret,
        "username": c.username,
        "password": c.password + c.security_token,
    }
    token, _ = token_login(
        f"{sf_emulator.base_url}/services/oauth2/token", data, "login", c.consumer_key, None, None, None
    )
    assert token
    data["password"] = "bad"
    with pytest.raises(SalesforceAuthenticationFailed, match="authentication failure"):
        token_login(
            f"{sf_emulator.base_url}/services/oauth2/token", data, "login", c.consumer_key, None, None, None
        )


def test_logins_do_not_count_as_api_calls(sf_emulator: Emulator) -> None:
    sf_emulator.login("oauth")
    sf_emulator.login("soap")
    assert sf_emulator.org.api_usage[0] == 0
    assert sf_emulator.org.counters == {"login_oauth": 1, "login_soap": 1}


def test_demo_defaults(sf_emulator: Emulator) -> None:
    c = sf_emulator.credentials
    assert (c.username, c.password, c.security_token) == (
        "demo@customerscore.example",
        "demo-password",
        "demoSecurityToken123",
    )
    assert (c.consumer_key, c.consumer_secret) == ("3MVG9demoConsumerKey", "demo-consumer-secret")
