"""How every request reaches Salesforce: one home for TLS, timeouts, proxies, retries and refresh.

:class:`SalesforceTransport` is the ``requests.Session`` handed to simple-salesforce, and the one
the hook's own REST and Bulk 2.0 calls go through, so the same rules hold for all of them:

* TLS is always verified (with the connection's CA bundle when it names one), every request has
  a timeout, and the connection's ``proxies`` apply;
* an API call (a request carrying ``Authorization: Bearer``) always carries the current session
  token; a 401 ``INVALID_SESSION_ID`` triggers one fresh login and a resend of that very call;
* transient failures (429/5xx, dropped connections, the concurrent-request limit) are retried
  with jittered backoff, waiting at least what a ``Retry-After`` header asks for;
* API calls and logins are counted, and the org's daily usage is read from every response.

Logins are single sends here (:meth:`send_once`); their retry policy and their reading of
Salesforce's answer live with the login code, because a login fault says something else than
an API error does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_any
from tenacity.stop import stop_base

from salesforce_pipeline.auth import ClientSettings
from salesforce_pipeline.domain import host_of
from salesforce_pipeline.errors import (
    SalesforceApiError,
    SalesforceConfigError,
    SalesforceCursorGone,
    SalesforceDailyLimitExceeded,
    SalesforcePipelineError,
    SalesforceQueryError,
    SalesforceTransientError,
)
from salesforce_pipeline.hooks.headers import parse_usage, retry_after
from salesforce_pipeline.retry import Backoff

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

T = TypeVar("T")

# Statuses that say "not now" rather than "no": overloaded or restarting servers and gateways.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: The longest ``Retry-After`` honoured within a task; a longer one ends the retries at once
#: (Airflow's task retry comes back later) rather than holding a worker slot asleep.
MAX_RETRY_AFTER_SECONDS = 300.0


class Retryable(Exception):
    """A failure worth another try of the same request, with Salesforce's ``Retry-After`` if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class SalesforceTransport(requests.Session):
    """The session every Salesforce request is sent through (see the module docstring).

    :param settings: the connection's timeout, retry policy, CA bundle and proxies.
    :param relogin: logs in again and returns the new session token (called on an expired one).
    :param sleep: how to wait between retries (the hook's, so tests can replace it).
    :param sender: a caller's own ``requests.Session`` to send through (the provider hook's
        ``session`` argument); our rules still apply on top of it.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        relogin: Callable[[], str],
        sleep: Callable[[float], None],
        log: Logger,
        sender: requests.Session | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.token: str | None = None
        self.api_calls = 0
        self.logins = 0
        self.api_usage: tuple[int, int] | None = None
        self.secrets: set[str] = set()
        self._relogin = relogin
        self._sleep = sleep
        self._log = log
        self._sender = sender
        # Parallel slices share one transport: counting and logging in again happen under a lock,
        # so no call goes uncounted and one expired session costs one login, not one per thread.
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- one send
    def send_once(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP request under our TLS, timeout and proxy rules; no retry, no refresh.

        :raises Retryable: for a dropped connection or a timeout.
        :raises SalesforceConfigError: when the server's certificate does not verify.
        """
        settings = self.settings
        if settings.ca_bundle is not None:
            kwargs["verify"] = settings.ca_bundle
        elif kwargs.get("verify") is False:
            kwargs["verify"] = None  # verification is never turned off: back to requests' defaults
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = settings.timeout
        if settings.proxies and not kwargs.get("proxies"):
            kwargs["proxies"] = dict(settings.proxies)
        try:
            if self._sender is not None:
                return self._sender.request(method, url, **kwargs)
            return super().request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise SalesforceConfigError(
                f"TLS certificate verification failed for {host_of(url)}: {exc}. If Salesforce is "
                "reached through a proxy or private endpoint with its own CA, set the connection's "
                "extra ca_bundle to that CA's PEM file."
            ) from None
        except requests.exceptions.ProxyError as exc:
            raise Retryable(f"proxy error reaching {host_of(url)}: {type(exc).__name__}") from exc
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise Retryable(f"{type(exc).__name__} talking to {host_of(url)}") from exc

    # ----------------------------------------------------------------- retry policy
    def retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it succeeds, retrying :class:`Retryable` failures with backoff.

        :raises SalesforceTransientError: when the retries run out, or Salesforce asks to wait
            longer than :data:`MAX_RETRY_AFTER_SECONDS`.
        """
        settings = self.settings
        backoff = Backoff(max_retries=settings.max_retries, base_seconds=settings.retry_base_seconds)

        def wait(state: RetryCallState) -> float:
            asked = _failure(state).retry_after or 0.0
            return max(backoff.delay(state.attempt_number - 1), asked)

        def before_sleep(state: RetryCallState) -> None:
            delay = state.next_action.sleep if state.next_action else 0.0
            self._log.warning(
                "%s failed (%s); retry %d of %d in %.2f s",
                what,
                _failure(state).reason,
                state.attempt_number,
                backoff.max_retries,
                delay,
            )

        def give_up(state: RetryCallState) -> T:
            failure = _failure(state)
            if (failure.retry_after or 0.0) > MAX_RETRY_AFTER_SECONDS:
                raise SalesforceTransientError(
                    f"{what} failed ({failure.reason}) and Salesforce asked to wait "
                    f"{failure.retry_after:.0f} s before the next try, longer than the "
                    f"{MAX_RETRY_AFTER_SECONDS:.0f} s a task waits; the task can be retried later."
                )
            raise SalesforceTransientError(
                f"{what} failed {state.attempt_number} times in a row (last: {failure.reason}); gave "
                f"up after {backoff.max_retries} retries. Salesforce or the network is having "
                "trouble; the task can be retried later."
            )

        retrying = Retrying(
            retry=retry_if_exception_type(Retryable),
            stop=stop_any(stop_after_attempt(backoff.max_retries + 1), _AskedToWaitTooLong()),
            wait=wait,
            sleep=lambda seconds: self._sleep(seconds),
            before_sleep=before_sleep,
            retry_error_callback=give_up,
        )
        return retrying(attempt)

    # ----------------------------------------------------------------- API calls
    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """Send a request as simple-salesforce asks for one.

        An API call gets the current token, refresh and retries, and its final answer is handed
        back as it is (simple-salesforce raises its own errors for it); anything else is sent once.
        """
        method, url = _text(method), _text(url)
        if args:  # requests' positional order after url: params, data, headers...
            kwargs.update(zip(("params", "data", "headers"), args, strict=False))
        if not _is_api_call(kwargs.get("headers")):
            return self.send_once(method, url, **kwargs)
        what = f"{method} {_path_of(url)}"
        state = _CallState()

        def attempt() -> requests.Response:
            response = self._authorized_send(method, url, kwargs, state, what)
            retry = self.transient_failure(response)
            if retry is not None:
                raise retry
            return response

        return self.retrying(what, attempt)

    def call(
        self,
        method: str,
        url: str,
        read: Callable[[requests.Response], T],
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> T:
        """One API call of the hook's own: refresh, retries, and Salesforce's errors as ours.

        ``read`` turns the successful response into the result; it runs inside the retry loop so
        that a body cut short (invalid JSON, a CSV page missing records) is fetched again.
        """
        state = _CallState()
        kwargs["headers"] = {"Authorization": "Bearer", "Accept": "application/json", **(headers or {})}

        def attempt() -> T:
            response = self._authorized_send(method, url, kwargs, state, what)
            if response.status_code < 300:
                return read(response)
            raise self.classify(response, what)

        return self.retrying(what, attempt)

    def _authorized_send(
        self, method: str, url: str, kwargs: dict[str, Any], state: _CallState, what: str
    ) -> requests.Response:
        """Send with the current token; after a 401, log in once and send again."""
        while True:
            token = self.token
            if token is None:
                token = self._fresh_token(None)
            headers = dict(kwargs.get("headers") or {})
            headers["Authorization"] = f"Bearer {token}"
            with self._lock:
                self.api_calls += 1  # counted when sent: a request lost in transit may still count
            response = self.send_once(method, url, **{**kwargs, "headers": headers})
            self.note_usage(response)
            if response.status_code != 401:
                return response
            code, message = self.error_details(response)
            if state.refreshed:
                raise SalesforceApiError(
                    f"{what}: Salesforce rejected the session again right after a fresh login "
                    f"({code}: {message}).",
                    status=401,
                    code=code,
                )
            # Not counted as a retry: an expired session is normal for long extractions.
            state.refreshed = True
            self._log.info("Salesforce session expired during %s (%s); logging in again", what, code)
            self._fresh_token(token)

    def _fresh_token(self, expired: str | None) -> str:
        """Log in again, unless another thread already replaced the ``expired`` token."""
        with self._lock:
            if self.token is None or self.token == expired:
                self.token = self._relogin()
            return self.token

    # ----------------------------------------------------------------- reading answers
    def transient_failure(self, response: requests.Response) -> Retryable | None:
        """The :class:`Retryable` for an answer that says "not now", else None."""
        status = response.status_code
        if status in TRANSIENT_STATUSES:
            code, message = self.error_details(response)
            return Retryable(f"HTTP {status} {code}: {message}", retry_after=retry_after(response))
        if status == 403:
            code, message = self.error_details(response)
            if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in message.lower():
                return Retryable(f"concurrent request limit: {message}", retry_after=retry_after(response))
        return None

    def classify(self, response: requests.Response, what: str) -> Exception:
        """The exception (ours, or :class:`Retryable`) for an API call's error answer."""
        transient = self.transient_failure(response)
        if transient is not None:
            return transient
        status = response.status_code
        code, message = self.error_details(response)
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            return self._daily_limit_error(response, message)
        if status == 400 and code == "INVALID_QUERY_LOCATOR":
            # The cursor is gone (the user's 11th cursor released it, or it idled 15 minutes):
            # fetching it again cannot work, re-running the query can, so the task is retried.
            return SalesforceCursorGone(
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
        usage = parse_usage(response.headers.get("Sforce-Limit-Info"))
        if usage is None:
            usage = self._usage_from_limits(response.url) or self.api_usage
        used, maximum = usage if usage else (None, None)
        figures = f"{used} of {maximum} requests used" if usage else "usage figures unavailable"
        error = SalesforceDailyLimitExceeded(
            used,
            maximum,
            f"Salesforce daily API request limit exceeded ({figures}; Salesforce said: {message}). "
            "Not retrying: every retry would spend more of the allowance. Wait for the rolling 24-hour "
            "usage to fall or ask the Salesforce admin for a higher limit.",
        )
        self._log.error("%s", error.message)
        return error

    def _usage_from_limits(self, refused_url: str) -> tuple[int, int] | None:
        """One unretried look at /limits/ for the usage figures of a daily-limit refusal."""
        marker = "/services/data/"
        if marker not in refused_url:
            return None
        base, rest = refused_url.split(marker, 1)
        limits_url = f"{base}{marker}{rest.split('/', 1)[0]}/limits/"
        with self._lock:
            self.api_calls += 1
        try:
            response = self.send_once("GET", limits_url, headers={"Authorization": f"Bearer {self.token}"})
        except (Retryable, SalesforcePipelineError):
            return None
        if response.status_code != 200:
            return None
        try:
            daily = response.json()["DailyApiRequests"]
            return int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"])
        except (ValueError, KeyError, TypeError):
            return None

    def note_usage(self, response: requests.Response) -> None:
        """Remember the org's daily usage a response reports in ``Sforce-Limit-Info``."""
        usage = parse_usage(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self.api_usage = usage

    def error_details(self, response: requests.Response) -> tuple[str, str]:
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
        return str(code), self.scrub(str(message))

    def scrub(self, text: str) -> str:
        """Replace any secret this transport knows of in ``text`` (for values Salesforce echoes)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text


class _AskedToWaitTooLong(stop_base):
    """Stop when Salesforce's ``Retry-After`` asks for more than a task waits."""

    def __call__(self, retry_state: RetryCallState) -> bool:
        return (_failure(retry_state).retry_after or 0.0) > MAX_RETRY_AFTER_SECONDS


class _CallState:
    """What one call remembers across its retries: whether it already logged in again."""

    refreshed = False


def _failure(state: RetryCallState) -> Retryable:
    assert state.outcome is not None
    failure = state.outcome.exception()
    assert isinstance(failure, Retryable)
    return failure


def _is_api_call(headers: Mapping[str, Any] | None) -> bool:
    if not headers:
        return False
    return str(headers.get("Authorization", "")).startswith("Bearer")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _path_of(url: str) -> str:
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
