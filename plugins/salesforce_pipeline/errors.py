"""Exceptions raised by the Salesforce side of the pipeline.

Every exception says whether trying again later can help (``retryable``). The hook has
already retried what it can within one call; task code turns a non-retryable error into
``AirflowFailException`` so Airflow does not spend its own retries on a problem that only a
person can fix (wrong credentials, an exhausted daily API allowance, a bad query).

Messages never contain a secret: they name connection fields by their form labels and
quote only what Salesforce itself answered.
"""

from __future__ import annotations


class SalesforcePipelineError(Exception):
    """Base class of every error the Salesforce hook raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SalesforceConfigError(SalesforcePipelineError):
    """The connection's fields are missing, conflicting or malformed; found before any network call."""

    retryable = False


class SalesforceLoginError(SalesforcePipelineError):
    """Salesforce refused the login (invalid credentials, unknown client, login not allowed)."""

    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class SalesforceDailyLimitExceeded(SalesforcePipelineError):
    """The org has used up its rolling 24-hour API request allowance (REQUEST_LIMIT_EXCEEDED).

    ``used`` and ``max`` are the figures Salesforce reported, or None when it reported none.
    Retrying only burns more of the allowance, so this is never retried.
    """

    retryable = False

    def __init__(self, used: int | None, max: int | None, message: str | None = None) -> None:
        if message is None:
            figures = f"{used} of {max}" if used is not None and max is not None else "all"
            message = (
                f"Salesforce daily API request limit exceeded: {figures} requests of the rolling "
                "24-hour allowance are used. Wait for usage to fall, or ask the Salesforce admin to "
                "raise the limit; retrying now would only fail again."
            )
        super().__init__(message)
        self.used = used
        self.max = max


class SalesforceTransientError(SalesforcePipelineError):
    """A temporary failure (503, dropped connection, timeout, concurrent limit) outlived the retries,
    or one that only a fresh start can get past: a query cursor Salesforce released
    (INVALID_QUERY_LOCATOR) cannot be fetched again, but the query can be run again."""

    retryable = True


class SalesforceCursorGone(SalesforceTransientError):
    """The query cursor is gone (released, expired, closed after its last page, or not a cursor
    path at all): the query must be run again; fetching the cursor again cannot work."""


class SalesforceApiError(SalesforcePipelineError):
    """Salesforce refused a request for a reason retrying cannot fix (e.g. 403, 404)."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SalesforceQueryError(SalesforceApiError):
    """The query was rejected (MALFORMED_QUERY, INVALID_FIELD...); the message is Salesforce's."""


class SalesforceBulkJobError(SalesforcePipelineError):
    """A Bulk API 2.0 query job ended Failed or Aborted; the message carries Salesforce's errorMessage.

    ``retryable`` is decided per job: a job Salesforce failed with an internal error or a timeout
    may well pass on a second try; a job it refused (an invalid query) will not.
    """

    retryable = False

    def __init__(
        self, message: str, *, job_id: str | None = None, state: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state
        self.retryable = retryable


class BulkJobBudgetExhausted(SalesforceBulkJobError):
    """A Bulk 2.0 job was still running when the run's share of the API allowance was spent on
    polling it; the job was aborted in Salesforce. Retrying would spend more: not retried."""


class BulkJobWaitExhausted(SalesforceBulkJobError):
    """A Bulk 2.0 job was still running after ``bulk_max_wait_seconds``; it was aborted in Salesforce."""
