"""The pipeline's Salesforce hook: explicit auth modes, sessions that survive, honest retries.

:class:`SalesforcePipelineHook` keeps the provider ``SalesforceHook``'s contract (constructor
arguments, ``conn``/``get_conn()`` returning a cached ``simple_salesforce.Salesforce``, and the
query, describe and export methods) and changes what the provider leaves to chance:

* the authentication mode is resolved explicitly (:mod:`salesforce_pipeline.auth`) and a bad
  connection fails before any network call;
* the hook logs in itself (:mod:`.login`), at a base URL of its choosing
  (:mod:`salesforce_pipeline.domain`), because simple-salesforce only logs in at
  ``https://{domain}.salesforce.com``;
* every request, simple-salesforce's included, goes through one transport (:mod:`.transport`):
  an expired session triggers one fresh login and a resend of that very call, transient failures
  are retried with backoff (honouring ``Retry-After``), and permanent ones fail at once;
* secrets never reach a log line, and runtime tokens are registered with Airflow's masker.

The differences that remain from the provider's hook are listed, with their reasons, in
docs/hook.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from simple_salesforce import Salesforce

from salesforce_pipeline.auth import (
    SECURITY_TOKEN,
    ClientSettings,
    SalesforceAuth,
    SecurityTokenAuth,
    direct_session_instance_url,
    resolve_auth,
    resolve_settings,
)
from salesforce_pipeline.domain import host_of
from salesforce_pipeline.errors import SalesforceConfigError, SalesforceLoginError, SalesforcePipelineError
from salesforce_pipeline.hooks.bulk2 import Bulk2QueryMixin
from salesforce_pipeline.hooks.login import SOAP_RETIREMENT_WARNING, LoginResult, log_in
from salesforce_pipeline.hooks.rest import RestQueryMixin
from salesforce_pipeline.hooks.transport import SalesforceTransport
from salesforce_pipeline.provider_info import CONN_TYPE, HOOK_NAME

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["LoginResult", "SalesforcePipelineHook"]


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


class SalesforcePipelineHook(RestQueryMixin, Bulk2QueryMixin, SalesforceHook):
    """Salesforce hook with explicit auth modes, session refresh, bounded retries and API accounting.

    Works with connections of our type ``customerscore_salesforce`` and of the provider's
    ``salesforce`` type alike. Counters: ``api_calls`` counts the API requests sent (every attempt,
    logins excluded), ``logins`` the login requests sent, and ``api_usage`` holds the org's
    ``(used, max)`` daily API requests from the latest ``Sforce-Limit-Info`` header.

    :param salesforce_conn_id: the Airflow connection to read.
    :param session_id: an access token to use instead of logging in (the provider's direct
        session access); the connection then needs an Instance URL. When it expires, the hook logs
        in with the connection's credentials if it has any.
    :param session: a ``requests.Session`` to send everything through (our TLS, timeout, proxy,
        retry and refresh rules still apply).
    """

    conn_name_attr = "salesforce_conn_id"
    default_conn_name = "salesforce_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self,
        salesforce_conn_id: str = default_conn_name,
        session_id: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(salesforce_conn_id=salesforce_conn_id, session_id=session_id, session=session)
        self._login_result: LoginResult | None = None
        self._describe_cache: dict[str, dict] = {}
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
        self.http.secrets.update(s for s in auth.secrets() if s)
        return auth

    @cached_property
    def settings(self) -> ClientSettings:
        """API version, timeout, retry policy, CA bundle and proxies from the connection's extras."""
        return resolve_settings(self.connection)

    @property
    def auth_mode(self) -> str:
        """``"security_token"`` or ``"client_credentials"``."""
        return self.auth.mode

    @cached_property
    def http(self) -> SalesforceTransport:
        """The transport every request to Salesforce goes through (see :mod:`.transport`)."""
        return SalesforceTransport(
            self.settings,
            relogin=self._relogin,
            sleep=lambda seconds: self._sleep(seconds),
            log=self.log,
            sender=self.session,
        )

    @property
    def api_calls(self) -> int:
        """API requests sent by this hook (every attempt; logins excluded)."""
        return self.http.api_calls

    @property
    def logins(self) -> int:
        """Login requests sent by this hook."""
        return self.http.logins

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """The org's ``(used, max)`` daily API requests as last reported, or None."""
        return self.http.api_usage

    # ----------------------------------------------------------------- client
    @cached_property
    def conn(self) -> Salesforce:
        """A logged-in ``simple_salesforce.Salesforce`` client (cached; logs in on first use)."""
        if self.session_id:
            result = LoginResult(
                session_id=self.session_id, instance_url=direct_session_instance_url(self.connection)
            )
            self._accept(result)
        else:
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
        # https://{instance}/..., port kept, which is what a proxy or the emulator needs. Its
        # requests go through our transport, which keeps their token current.
        return Salesforce(
            session_id=result.session_id,
            instance=result.instance,
            version=self.settings.version,
            session=self.http,
        )

    # ----------------------------------------------------------------- login
    def _login(self) -> LoginResult:
        auth = self.auth
        if isinstance(auth, SecurityTokenAuth) and self.logins == 0:
            self.log.warning(SOAP_RETIREMENT_WARNING)  # once per hook: seen, and not noise on re-logins
        result = log_in(self.http, auth)
        self._accept(result)
        self.log.info(
            "Logged in to Salesforce (%s) at %s: org %s, instance %s",
            auth.title,
            host_of(auth.domain),
            result.org_id or "unknown",
            result.instance,
        )
        return result

    def _accept(self, result: LoginResult) -> None:
        """Make ``result`` the session every request uses, and keep its token out of every log."""
        self._login_result = result
        self.http.token = result.session_id
        self.http.secrets.add(result.session_id)
        _mask_secret(result.session_id)

    def _relogin(self) -> str:
        """Log in again after an expired session; return the new token (the transport's callback)."""
        try:
            resolve_auth(self.connection)
        except SalesforceConfigError as exc:
            raise SalesforceLoginError(
                "The Salesforce session expired and the hook cannot log in again: it was given a "
                f"session_id and the connection has no usable credentials ({exc})",
                code="INVALID_SESSION_ID",
            ) from None
        had_client = "conn" in self.__dict__
        result = self._login()
        if had_client:
            client = self.conn
            if result.instance == client.sf_instance:
                client.session_id = result.session_id
                client.headers["Authorization"] = f"Bearer {result.session_id}"
            else:
                self.log.info("Salesforce moved the org to instance %s", result.instance)
                self.__dict__["conn"] = self._build_client(result)
        return result.session_id

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

    def _scrub(self, text: str) -> str:
        try:
            return self.http.scrub(text)
        except SalesforcePipelineError:  # the settings themselves are what failed
            return text
