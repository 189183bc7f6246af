"""The pipeline's Salesforce hook: explicit auth modes, sessions that survive, honest retries.

:class:`SalesforcePipelineHook` keeps the provider ``SalesforceHook``'s shape (class-attribute
connection contract, nothing connects until first use, ``get_conn()`` returns a cached
``simple_salesforce.Salesforce``) and changes what the provider leaves to chance:

* the authentication mode is resolved explicitly (:mod:`salesforce_pipeline.auth`) and a bad
  connection fails before any network call;
* the hook logs in itself, at a base URL of its choosing (:mod:`salesforce_pipeline.domain`),
  because simple-salesforce only logs in at ``https://{domain}.salesforce.com``;
* REST and Bulk API 2.0 calls are issued by the hook through the client's ``requests`` session,
  so an expired session triggers one fresh login and a retry of that very call (mid-pagination
  included), transient failures are retried with backoff, and permanent ones (bad credentials,
  the daily API limit, a bad query) fail at once with a clear message;
* secrets never reach a log line, and runtime tokens are registered with Airflow's masker.
"""

from __future__ import annotations

import base64
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from html import escape
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from simple_salesforce import Salesforce

from salesforce_pipeline.auth import (
    SECURITY_TOKEN,
    ClientCredentialsAuth,
    ClientSettings,
    SalesforceAuth,
    SecurityTokenAuth,
    resolve_auth,
    resolve_settings,
)
from salesforce_pipeline.domain import host_of, instance_from_url
from salesforce_pipeline.errors import (
    SalesforceApiError,
    SalesforceConfigError,
    SalesforceDailyLimitExceeded,
    SalesforceLoginError,
    SalesforcePipelineError,
    SalesforceQueryError,
    SalesforceTransientError,
)
from salesforce_pipeline.hooks.bulk2 import Bulk2QueryMixin
from salesforce_pipeline.hooks.pages import (
    PageDecoder,
    _page_reader,
    _read_json,
    _Retryable,
    records_page,
)
from salesforce_pipeline.provider_info import CONN_TYPE, HOOK_NAME
from salesforce_pipeline.retry import Backoff

if TYPE_CHECKING:
    from airflow.sdk import Connection

T = TypeVar("T")
P = TypeVar("P", covariant=True)


#: API version of the SOAP login call. Salesforce removed SOAP login() from 65.0 and retires it
#: for 31.0-64.0 in Summer '27; data calls use the connection's own (newer) version.
SOAP_LOGIN_API_VERSION = "59.0"
CLIENT_ID = "simple-salesforce"  # what simple-salesforce names itself in the SOAP CallOptions

# Same envelope simple-salesforce 1.12.10 sends (login.SalesforceLogin, security-token branch),
# which only exists inline there, so it cannot be imported.
_SOAP_LOGIN_ENVELOPE = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope
        xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header>
        <urn:CallOptions>
            <urn:client>{client_id}</urn:client>
            <urn:defaultNamespace>sf</urn:defaultNamespace>
        </urn:CallOptions>
    </env:Header>
    <env:Body>
        <n1:login xmlns:n1="urn:partner.soap.sforce.com">
            <n1:username>{username}</n1:username>
            <n1:password>{password}{security_token}</n1:password>
        </n1:login>
    </env:Body>
</env:Envelope>"""

SOAP_RETIREMENT_WARNING = (
    "Logging in to Salesforce with SOAP login() (Security Token with Username & Password). "
    "Salesforce retires SOAP login in Summer '27 (already removed from API 65.0, off by default in "
    "orgs created from Winter '26): switch this connection to Connected App OAuth 2.0 Client "
    "Credentials, see docs/connect-salesforce.md."
)

# Statuses that say "not now" rather than "no": overloaded or restarting servers and gateways.
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# SOAP faults that are worth another try; every other fault (INVALID_LOGIN...) is final.
_TRANSIENT_SOAP_FAULTS = frozenset({"SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
_SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class LoginResult:
    """What a successful login returned (the session id is never shown by ``repr``)."""

    session_id: str = field(repr=False)
    instance_url: str
    org_id: str | None = None
    user_id: str | None = None

    @property
    def instance(self) -> str:
        """``host[:port]`` of the instance, as ``simple_salesforce.Salesforce(instance=)`` takes it."""
        return instance_from_url(self.instance_url)


def _mask_secret(value: str) -> None:
    """Register a runtime secret with Airflow's secrets masker so task logs redact it."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # older Task SDKs kept it elsewhere; without a masker, rely on never logging it
        try:
            from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
        except ImportError:
            return
    mask_secret(value)


class _PipelineSession(requests.Session):
    """A ``requests.Session`` that applies our CA bundle and timeout to *every* request.

    ``requests`` lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` win over ``Session.verify``, so a
    CA bundle only takes effect when passed per request; doing it here covers the calls
    simple-salesforce makes on its own through ``get_conn()`` too. Verification is never disabled:
    a caller's ``verify=False`` is overridden.
    """

    def __init__(self, ca_bundle: str | None, timeout: float) -> None:
        super().__init__()
        self._ca_bundle = ca_bundle
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send a request with our CA bundle (if any) and a timeout."""
        if self._ca_bundle is not None:
            kwargs["verify"] = self._ca_bundle
        elif kwargs.get("verify") is False:
            kwargs["verify"] = None  # back to requests' defaults (environment, then certifi)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(method, url, *args, **kwargs)


class SalesforcePipelineHook(Bulk2QueryMixin, SalesforceHook):
    """Salesforce hook with explicit auth modes, session refresh, bounded retries and API accounting.

    Works with connections of our type ``customerscore_salesforce`` and of the provider's
    ``salesforce`` type alike. Counters: ``api_calls`` counts the API requests sent (every attempt,
    logins excluded), ``logins`` the login requests sent, and ``api_usage`` holds the org's
    ``(used, max)`` daily API requests from the latest ``Sforce-Limit-Info`` header.

    :param salesforce_conn_id: the Airflow connection to read.
    :param session: an optional ``requests.Session`` to send everything through.
    """

    conn_name_attr = "salesforce_conn_id"
    default_conn_name = "salesforce_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self, salesforce_conn_id: str = default_conn_name, session: requests.Session | None = None
    ) -> None:
        super().__init__(salesforce_conn_id=salesforce_conn_id, session=session)
        self.api_calls = 0
        self.logins = 0
        self.api_usage: tuple[int, int] | None = None
        self._login_result: LoginResult | None = None
        self._describe_cache: dict[str, dict] = {}
        self._secrets: set[str] = set()
        self._sleep: Callable[[float], None] = time.sleep

    # ----------------------------------------------------------------- connection & configuration
    @cached_property
    def connection(self) -> Connection:
        """The Airflow connection, read once."""
        return self.get_connection(self.conn_id)

    @cached_property
    def auth(self) -> SalesforceAuth:
        """The connection's resolved authentication mode (no network call)."""
        auth = resolve_auth(self.connection)
        self._secrets.update(s for s in auth.secrets() if s)
        return auth

    @cached_property
    def settings(self) -> ClientSettings:
        """API version, timeout, retry policy and CA bundle from the connection's extras."""
        return resolve_settings(self.connection)

    @property
    def auth_mode(self) -> str:
        """``"security_token"`` or ``"client_credentials"``."""
        return self.auth.mode

    @cached_property
    def http(self) -> requests.Session:
        """The ``requests`` session used for logins, REST and Bulk 2.0 calls."""
        if self.session is not None:
            return self.session
        settings = self.settings
        return _PipelineSession(ca_bundle=settings.ca_bundle, timeout=settings.timeout)

    # ----------------------------------------------------------------- client
    @cached_property
    def conn(self) -> Salesforce:  # type: ignore[override]
        """A logged-in ``simple_salesforce.Salesforce`` client (cached; logs in on first use)."""
        result = self._login()
        return self._build_client(result)

    def get_conn(self) -> Salesforce:
        """Return the logged-in ``simple_salesforce.Salesforce`` client (cached)."""
        return self.conn

    @classmethod
    def for_connection(cls, connection: Connection) -> SalesforcePipelineHook:
        """A hook for a connection that is not saved anywhere (the Connect page's login check)."""
        hook = cls(salesforce_conn_id=connection.conn_id)
        hook.__dict__["connection"] = connection  # what the cached property would have read
        return hook

    @property
    def login_result(self) -> LoginResult:
        """What the login returned (logs in if needed)."""
        self.get_conn()
        assert self._login_result is not None
        return self._login_result

    @property
    def organization_id(self) -> str | None:
        """The Organization Id of the Salesforce org this connection reaches (logs in if needed)."""
        return self.login_result.org_id

    def _build_client(self, result: LoginResult) -> Salesforce:
        # Direct-session mode: simple-salesforce does no login of its own and builds every URL as
        # https://{instance}/..., port kept, which is what a proxy or the emulator needs.
        return Salesforce(
            session_id=result.session_id,
            instance=result.instance,
            version=self.settings.version,
            session=self.http,
        )

    def _refresh_session(self) -> None:
        """Log in again after an expired session and point the cached client at the new one."""
        result = self._login()
        client = self.conn
        if result.instance == client.sf_instance:
            client.session_id = result.session_id
            client.headers["Authorization"] = f"Bearer {result.session_id}"
        else:
            self.log.info("Salesforce moved the org to instance %s", result.instance)
            self.__dict__["conn"] = self._build_client(result)

    # ----------------------------------------------------------------- login
    def _login(self) -> LoginResult:
        auth = self.auth
        if isinstance(auth, SecurityTokenAuth):
            if self.logins == 0:  # once per hook is enough to be seen, and not noise on re-logins
                self.log.warning(SOAP_RETIREMENT_WARNING)
            result = self._retrying("Salesforce login", lambda: self._soap_login(auth))
        else:
            result = self._retrying("Salesforce login", lambda: self._client_credentials_login(auth))
        self._login_result = result
        self._secrets.add(result.session_id)
        _mask_secret(result.session_id)
        self.log.info(
            "Logged in to Salesforce (%s) at %s: org %s, instance %s",
            auth.title,
            host_of(auth.domain),
            result.org_id or "unknown",
            result.instance,
        )
        return result

    def _soap_login(self, auth: SecurityTokenAuth) -> LoginResult:
        url = f"{auth.domain}/services/Soap/u/{SOAP_LOGIN_API_VERSION}"
        body = _SOAP_LOGIN_ENVELOPE.format(
            client_id=CLIENT_ID,
            username=escape(auth.username),
            password=escape(auth.password),
            security_token=escape(auth.security_token),
        )
        headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
        self.logins += 1
        response = self._send("POST", url, data=body.encode("utf-8"), headers=headers)
        values = _xml_values(response.content)
        if response.status_code == 200 and values.get("sessionId") and values.get("serverUrl"):
            server_url = values["serverUrl"]
            # As simple-salesforce does: the API host of an old "-api" serverUrl is the instance.
            parts = urlsplit(server_url)
            instance_url = f"https://{parts.netloc.replace('-api', '')}"
            return LoginResult(
                session_id=values["sessionId"],
                instance_url=instance_url,
                org_id=values.get("organizationId"),
                user_id=values.get("userId"),
            )
        code = values.get("exceptionCode") or values.get("faultcode")
        message = values.get("exceptionMessage") or values.get("faultstring") or ""
        if response.status_code in _TRANSIENT_STATUSES and (
            code is None or code.split(":")[-1] in _TRANSIENT_SOAP_FAULTS
        ):
            raise _Retryable(f"HTTP {response.status_code} {code or ''} {self._scrub(message)}".strip())
        if response.status_code == 200:
            if not values:  # an unreadable (cut short) answer is worth another try
                raise _Retryable("unreadable SOAP login answer")
            code, message = "UNEXPECTED_RESPONSE", "the login answer has no sessionId or serverUrl"
        code = (code or f"HTTP_{response.status_code}").split(":")[-1]
        hint = (
            " Check Username, Password and Security Token: a password change or reset issues a new "
            "security token, and orgs created from Winter '26 have SOAP login() off unless an admin "
            "turns it on."
            if code in ("INVALID_LOGIN", "LOGIN_MUST_USE_SECURITY_TOKEN", "API_DISABLED_FOR_ORG")
            else ""
        )
        raise SalesforceLoginError(
            f"Salesforce refused the Security Token login of user {auth.username!r} at "
            f"{host_of(auth.domain)}: {code}: {_sentence(self._scrub(message))}{hint}",
            code=code,
        )

    def _client_credentials_login(self, auth: ClientCredentialsAuth) -> LoginResult:
        url = f"{auth.domain}/services/oauth2/token"
        basic = base64.b64encode(f"{auth.consumer_key}:{auth.consumer_secret}".encode()).decode()
        self.logins += 1
        response = self._send(
            "POST",
            url,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if response.status_code == 200 and payload.get("access_token") and payload.get("instance_url"):
            org_id, user_id = _ids_from_identity_url(payload.get("id"))
            return LoginResult(
                session_id=payload["access_token"],
                instance_url=payload["instance_url"],
                org_id=org_id,
                user_id=user_id,
            )
        if response.status_code in _TRANSIENT_STATUSES:
            raise _Retryable(f"HTTP {response.status_code} {self._scrub(response.text[:200])}")
        code = str(payload.get("error") or f"HTTP_{response.status_code}")
        message = str(payload.get("error_description") or response.text[:300])
        hints = {
            "invalid_client_id": " Check the Consumer Key.",
            "invalid_client": " Check the Consumer Key and Consumer Secret.",
            "invalid_grant": (
                " Check that the Connected App has 'Enable Client Credentials Flow' on and a Run As "
                "user, and that Domain is the org's My Domain."
            ),
            "unsupported_grant_type": " Enable the client credentials flow on the Connected App.",
        }
        raise SalesforceLoginError(
            f"Salesforce refused the Connected App (OAuth 2.0 client credentials) login at "
            f"{host_of(auth.domain)}: {code}: {_sentence(self._scrub(message))}{hints.get(code, '')}",
            code=code,
        )

    # ----------------------------------------------------------------- HTTP plumbing
    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP request; transport failures become :class:`_Retryable` or a config error."""
        settings = self.settings
        kwargs.setdefault("timeout", settings.timeout)
        if settings.ca_bundle is not None:
            kwargs["verify"] = settings.ca_bundle
        try:
            return self.http.request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise SalesforceConfigError(
                f"TLS certificate verification failed for {host_of(url)}: {exc}. If Salesforce is "
                "reached through a proxy or private endpoint with its own CA, set the connection's "
                "extra ca_bundle to that CA's PEM file."
            ) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise _Retryable(f"{type(exc).__name__} talking to {host_of(url)}") from exc

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it succeeds, retrying :class:`_Retryable` failures with backoff."""
        settings = self.settings
        backoff = Backoff(max_retries=settings.max_retries, base_seconds=settings.retry_base_seconds)
        retry = 0
        while True:
            try:
                return attempt()
            except _Retryable as failure:
                reason = failure.reason
            if retry >= backoff.max_retries:
                raise SalesforceTransientError(
                    f"{what} failed {retry + 1} times in a row (last: {reason}); gave up after "
                    f"{backoff.max_retries} retries. Salesforce or the network is having trouble; "
                    "the task can be retried later."
                )
            delay = backoff.delay(retry)
            retry += 1
            self.log.warning(
                "%s failed (%s); retry %d of %d in %.2f s", what, reason, retry, backoff.max_retries, delay
            )
            self._sleep(delay)

    def _api_call(
        self,
        method: str,
        url: str,
        read: Callable[[requests.Response], T],
        *,
        what: str,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> T:
        """Send one API request with session refresh (once) and retries of transient failures.

        ``read`` turns the successful response into the result; it runs inside the retry loop so
        that a body cut short (invalid JSON, a CSV page missing records) is fetched again.
        """
        refreshed = False

        def attempt() -> T:
            nonlocal refreshed
            while True:
                client = self.get_conn()
                self.api_calls += 1  # counted when sent: a request lost in transit may still count
                response = self._send(method, url, headers={**client.headers, **(headers or {})}, **kwargs)
                self._note_usage(response)
                if response.status_code < 300:
                    return read(response)
                code, message = self._error_details(response)
                if response.status_code == 401:
                    if refreshed:
                        raise SalesforceApiError(
                            f"{what}: Salesforce rejected the session again right after a fresh login "
                            f"({code}: {message}).",
                            status=401,
                            code=code,
                        )
                    # Not counted as a retry: an expired session is normal for long extractions.
                    refreshed = True
                    self.log.info("Salesforce session expired during %s (%s); logging in again", what, code)
                    self._refresh_session()
                    continue
                raise self._classify(response, code, message, what)

        return self._retrying(what, attempt)

    def _classify(self, response: requests.Response, code: str, message: str, what: str) -> Exception:
        status = response.status_code
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            if "concurrent" in message.lower():
                return _Retryable(f"concurrent request limit: {message}")
            return self._daily_limit_error(response, message)
        if status in _TRANSIENT_STATUSES:
            return _Retryable(f"HTTP {status} {code}: {message}")
        if status == 400 and code == "INVALID_QUERY_LOCATOR":
            # The cursor is gone (the user's 11th cursor released it, or it idled 15 minutes):
            # fetching it again cannot work, re-running the query can, so the task is retried.
            return SalesforceTransientError(
                f"{what}: Salesforce released the query's cursor ({code}: {message}). This happens when "
                "another client of the same user opens more than 10 query cursors at once, or a page "
                "waits more than 15 minutes; the task is retried and runs the query again."
            )
        if status == 400:
            return SalesforceQueryError(
                f"{what}: Salesforce rejected the request: {code}: {message}", status=status, code=code
            )
        return SalesforceApiError(f"{what}: HTTP {status} {code}: {message}", status=status, code=code)

    def _daily_limit_error(self, response: requests.Response, message: str) -> SalesforceDailyLimitExceeded:
        usage = _parse_usage(response.headers.get("Sforce-Limit-Info"))
        if usage is None:
            usage = self._usage_from_limits() or self.api_usage
        used, maximum = usage if usage else (None, None)
        figures = f"{used} of {maximum} requests used" if usage else "usage figures unavailable"
        error = SalesforceDailyLimitExceeded(
            used,
            maximum,
            f"Salesforce daily API request limit exceeded ({figures}; Salesforce said: {message}). "
            "Not retrying: every retry would spend more of the allowance. Wait for the rolling 24-hour "
            "usage to fall or ask the Salesforce admin for a higher limit.",
        )
        self.log.error("%s", error.message)
        return error

    def _usage_from_limits(self) -> tuple[int, int] | None:
        """One unretried look at /limits/ for the usage figures of a daily-limit refusal."""
        client = self.get_conn()
        self.api_calls += 1
        try:
            response = self._send("GET", f"{client.base_url}limits/", headers=dict(client.headers))
        except (_Retryable, SalesforcePipelineError):
            return None
        if response.status_code != 200:
            return None
        try:
            daily = response.json()["DailyApiRequests"]
            return int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"])
        except (ValueError, KeyError, TypeError):
            return None

    def _note_usage(self, response: requests.Response) -> None:
        usage = _parse_usage(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.api_usage = usage

    def _error_details(self, response: requests.Response) -> tuple[str, str]:
        """``(errorCode, message)`` of a Salesforce error body (list, dict or text), secrets scrubbed."""
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if isinstance(body, list) and body and isinstance(body[0], dict):
            body = body[0]
        if isinstance(body, dict):
            code = body.get("errorCode") or body.get("error") or f"HTTP_{response.status_code}"
            message = body.get("message") or body.get("error_description") or ""
        else:
            code, message = f"HTTP_{response.status_code}", response.text[:300].strip()
        return str(code), self._scrub(str(message))

    def _scrub(self, text: str) -> str:
        """Replace any secret this hook knows of in ``text`` (belt and braces for echoed values)."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _instance_url(self, path: str) -> str:
        return f"https://{self.get_conn().sf_instance}{path}"

    # ----------------------------------------------------------------- REST
    def describe_object(self, obj: str) -> dict:
        """Return ``/sobjects/{obj}/describe`` (cached per hook).

        :raises ValueError: when ``obj`` is not an sObject API name.
        """
        if not _SOBJECT_NAME.match(obj):
            raise ValueError(f"not an sObject API name: {obj!r}")
        if obj not in self._describe_cache:
            url = f"{self.get_conn().base_url}sobjects/{obj}/describe/"
            self._describe_cache[obj] = self._api_call("GET", url, _read_json, what=f"describe {obj}")
        return self._describe_cache[obj]

    def count(self, soql: str, *, include_deleted: bool = False) -> int:
        """Return the ``totalSize`` of a query, normally ``SELECT COUNT() FROM ...``.

        :param include_deleted: use queryAll, which also counts deleted and archived rows.
        """
        resource = "queryAll/" if include_deleted else "query/"
        payload = self._api_call(
            "GET", f"{self.get_conn().base_url}{resource}", _read_json, what="count query", params={"q": soql}
        )
        return int(payload["totalSize"])

    def query_pages(
        self,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
        decoder: PageDecoder[P] | None = None,
    ) -> Iterator[P]:
        """Yield the records of a SOQL query one REST page at a time.

        Follows ``nextRecordsUrl`` to the end; each page call refreshes an expired session and
        retries transient failures on its own, so a long extraction survives both.

        :param include_deleted: use queryAll (deleted and archived rows included).
        :param batch_size: ``Sforce-Query-Options: batchSize`` hint; Salesforce honours 200..2000
            and may return other page sizes.
        :param decoder: turns a page's body (bytes) into ``(page, done, nextRecordsUrl)``, raising
            ValueError for a body that is not a query result (it is fetched again). By default a
            page is the list of record dicts, as simple-salesforce returns them.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        decode: PageDecoder[Any] = decoder or records_page
        read = _page_reader(decode)
        resource = "queryAll/" if include_deleted else "query/"
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        page, done, next_url = self._api_call(
            "GET",
            f"{self.get_conn().base_url}{resource}",
            read,
            what="query",
            headers=headers,
            params={"q": soql},
        )
        pages = records = 0
        while True:
            pages += 1
            records += len(page)
            self.log.debug("Query page %d: %d records", pages, len(page))
            yield page
            if done or not next_url:
                break
            page, done, next_url = self._api_call(
                "GET",
                self._instance_url(next_url),
                read,
                what=f"query page {pages + 1}",
                headers=headers,
            )
        self.log.info("Query returned %d records in %d pages", records, pages)

    def daily_api_limit(self) -> tuple[int, int]:
        """Return ``(remaining, max)`` daily API requests from ``/limits/``."""
        payload = self._api_call("GET", f"{self.get_conn().base_url}limits/", _read_json, what="limits")
        daily = payload["DailyApiRequests"]
        remaining, maximum = int(daily["Remaining"]), int(daily["Max"])
        if self.api_usage is None:
            self.api_usage = (maximum - remaining, maximum)
        return remaining, maximum

    # ----------------------------------------------------------------- accounting & UI test
    def log_api_usage(self) -> None:
        """Log this hook's API calls and logins and the org's daily usage as last reported."""
        if self.api_usage is not None:
            used, maximum = self.api_usage
            self.log.info(
                "Salesforce API: %d calls and %d logins by this hook; org daily usage %d of %d (%d left)",
                self.api_calls,
                self.logins,
                used,
                maximum,
                maximum - used,
            )
        else:
            self.log.info(
                "Salesforce API: %d calls and %d logins by this hook; org daily usage not reported",
                self.api_calls,
                self.logins,
            )

    def test_connection(self) -> tuple[bool, str]:
        """Log in, read ``/limits/`` and report the mode, org, instance and remaining daily calls.

        Used by the connection form's Test button; never raises and never shows a secret.
        """
        try:
            auth = self.auth
            self.get_conn()
            remaining, maximum = self.daily_api_limit()
        except SalesforcePipelineError as exc:
            return False, self._scrub(str(exc))
        except Exception as exc:  # the Test button needs a reason, not a traceback
            return False, self._scrub(f"Unexpected {type(exc).__name__}: {exc}")
        result = self._login_result
        message = (
            f"Connected to Salesforce org {(result and result.org_id) or 'unknown'} on instance "
            f"{result.instance if result else 'unknown'} using {auth.title} (API v{self.settings.version}); "
            f"{remaining} of {maximum} daily API requests remaining."
        )
        if auth.mode == SECURITY_TOKEN:
            message += (
                " Note: Salesforce retires this login method (SOAP login) in Summer '27; "
                "move to Connected App OAuth 2.0 Client Credentials."
            )
        return True, message


def _sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (Salesforce's messages sometimes have one)."""
    return text.strip().rstrip(".") + "."


def _parse_usage(header: str | None) -> tuple[int, int] | None:
    """``(used, max)`` from a ``Sforce-Limit-Info`` header, via simple-salesforce's parser."""
    if not header:
        return None
    usage = Salesforce.parse_api_usage(header).get("api-usage")
    return (usage.used, usage.total) if usage is not None else None


def _xml_values(content: bytes) -> dict[str, str]:
    """Text of the first element of each local name in a SOAP document (namespaces ignored)."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        return {}
    values: dict[str, str] = {}
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name not in values and element.text and element.text.strip():
            values[name] = element.text.strip()
    return values


def _ids_from_identity_url(url: Any) -> tuple[str | None, str | None]:
    """Org and user ids from an OAuth identity URL ``https://host/id/{org}/{user}``."""
    if not isinstance(url, str):
        return None, None
    parts = urlsplit(url).path.strip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "id":
        return parts[-2], parts[-1]
    return None, None
