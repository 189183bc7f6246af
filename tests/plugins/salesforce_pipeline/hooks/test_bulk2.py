"""Bulk API 2.0 jobs within limits, against the emulator over HTTPS: polls bounded by the run's
budget and by a wait, the job aborted in Salesforce past them, polls further apart as a job runs
on, a retried attempt resuming its job, and failed jobs told transient from final."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from salesforce_pipeline.errors import (
    BulkJobBudgetExhausted,
    BulkJobWaitExhausted,
    SalesforceBulkJobError,
    SalesforceTransientError,
)
from salesforce_pipeline.hooks.bulk2 import POLL_MAX_INTERVAL, job_failure_is_transient, poll_intervals
from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
from tests.plugins.salesforce_pipeline.hooks.test_salesforce import (  # noqa: F401 - fixtures, found by name
    Logs,
    csv_ids,
    logs_without_secrets,
    masked,
    ui_connection,
    use_connection,
)

SOQL = "SELECT Id, Name FROM Account"
FOREVER = 10**9  # status polls a job answers InProgress to


@pytest.fixture
def make_hook(sf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., SalesforcePipelineHook]:
    """A hook on a UI-built connection to the emulator, with quick retries and no real pauses."""

    def make() -> SalesforcePipelineHook:
        use_connection(
            monkeypatch,
            ui_connection(sf_emulator, "client_credentials", max_retries=3, retry_base_seconds=0.001),
        )
        hook = SalesforcePipelineHook()
        hook._sleep = lambda seconds: None
        return hook

    return make


def accounts(emulator: Any) -> list[str]:
    return sorted(emulator.org.all_ids("Account", include_deleted=False))


# ------------------------------------------------------------------ budget and wait
def test_a_job_that_never_finishes_is_aborted_after_max_polls(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    org = sf_emulator.org
    org.set_bulk_in_progress_polls(FOREVER)
    hook = make_hook()
    used_before = org.api_usage[0]
    with pytest.raises(BulkJobBudgetExhausted) as refused:
        list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0, max_polls=5))
    (job,) = org.bulk_jobs.all()
    assert job.polls == 5 == org.counters["bulk2_poll"]
    assert job.state == "Aborted"
    assert org.counters["bulk2_abort"] == 1
    assert hook.api_calls == 1 + 5 + 1 == org.api_usage[0] - used_before  # create, 5 polls, abort
    error = refused.value
    assert isinstance(error, SalesforceBulkJobError)
    assert error.retryable is False
    assert (error.job_id, error.state) == (job.id, "InProgress")
    for why in ("5 status polls", "API budget", "aborted in Salesforce", "api_budget_share"):
        assert why in str(error)


def test_a_job_that_outlasts_the_wait_is_aborted(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.set_bulk_in_progress_polls(FOREVER)
    hook = make_hook()
    hook._sleep = time.sleep  # real pauses: the wait is wall-clock time
    with pytest.raises(BulkJobWaitExhausted) as refused:
        list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0.05, max_wait=0.3))
    (job,) = sf_emulator.org.bulk_jobs.all()
    assert job.state == "Aborted"
    assert sf_emulator.org.counters["bulk2_abort"] == 1
    assert 2 <= job.polls <= 6  # 0.05 s, then longer pauses, the last one cut at the deadline
    assert refused.value.retryable is False
    for why in ("0.3 s allowed", "aborted in Salesforce", "bulk_max_wait_seconds"):
        assert why in str(refused.value)


def test_a_failed_abort_does_not_hide_why_the_job_was_given_up(
    make_hook: Callable[..., SalesforcePipelineHook],
    sf_emulator: Any,
    logs_without_secrets: Logs,  # noqa: F811
) -> None:
    sf_emulator.org.set_bulk_in_progress_polls(FOREVER)
    sf_emulator.org.inject("http_error", endpoint="bulk2_abort", status=400, error_code="INVALIDJOBSTATE")
    with pytest.raises(BulkJobBudgetExhausted, match="api_budget_share"):
        list(make_hook().bulk2_query_csv_pages(SOQL, poll_interval=0, max_polls=2))
    assert "could not be aborted" in logs_without_secrets.text
    assert sf_emulator.org.bulk_jobs.all()[0].state == "InProgress"


def test_max_polls_that_allows_the_job_to_finish_reads_it(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.set_bulk_in_progress_polls(2)
    pages = list(make_hook().bulk2_query_csv_pages(SOQL, poll_interval=0, max_polls=3))
    assert csv_ids(pages) == accounts(sf_emulator)
    assert sf_emulator.org.counters.get("bulk2_abort", 0) == 0


# ------------------------------------------------------------------ poll cadence
def test_polls_come_further_apart_up_to_a_cap(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.set_bulk_in_progress_polls(12)
    hook = make_hook()
    pauses: list[float] = []
    hook._sleep = pauses.append
    pages = list(hook.bulk2_query_csv_pages(SOQL, poll_interval=2.0))
    assert csv_ids(pages) == accounts(sf_emulator)
    assert len(pauses) == 13 == sf_emulator.org.counters["bulk2_poll"]  # a pause before every poll
    assert pauses[:3] == [2.0, 3.0, 4.5]
    assert all(later >= earlier for earlier, later in itertools.pairwise(pauses))
    assert max(pauses) == POLL_MAX_INTERVAL == pauses[-1]


def test_an_hour_long_job_costs_few_polls() -> None:
    elapsed, polls = 0.0, 0
    for pause in poll_intervals(2.0):
        elapsed += pause
        polls += 1
        if elapsed >= 3600:
            break
    assert polls < 140  # at a fixed 2 s it was 1,800
    assert next(poll_intervals(45.0)) == 45.0 == max(itertools.islice(poll_intervals(45.0), 10))
    # A short setting keeps a short cap: 16 times it.
    assert max(itertools.islice(poll_intervals(0.01), 40)) == pytest.approx(0.16)


# ------------------------------------------------------------------ resuming a retried attempt
def test_a_retry_resumes_a_job_still_running_instead_of_starting_another(
    make_hook: Callable[..., SalesforcePipelineHook],
    sf_emulator: Any,
    logs_without_secrets: Logs,  # noqa: F811
) -> None:
    org = sf_emulator.org
    org.set_bulk_in_progress_polls(3)
    created: list[str] = []
    # The first attempt loses its status polls (Salesforce unreachable) while the job runs on.
    org.inject("server_unavailable", endpoint="bulk2_poll", after=1, count=4)
    with pytest.raises(SalesforceTransientError):
        list(make_hook().bulk2_query_csv_pages(SOQL, poll_interval=0, on_job_created=created.append))
    (job_id,) = created
    assert org.bulk_jobs.get(job_id).state == "InProgress"

    pages = list(
        make_hook().bulk2_query_csv_pages(
            SOQL, poll_interval=0, resume_job_id=job_id, on_job_created=created.append
        )
    )

    assert created == [job_id], "no second job"
    assert [job.id for job in org.bulk_jobs.all()] == [job_id]
    assert org.counters["bulk2_create"] == 1
    assert csv_ids(pages) == accounts(sf_emulator)
    assert (
        f"Bulk 2.0 job {job_id} of an earlier attempt is InProgress: resuming it" in logs_without_secrets.text
    )


def test_a_retry_reads_a_completed_job_without_polling(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    org = sf_emulator.org
    created: list[str] = []
    org.inject("server_unavailable", endpoint="bulk2_results", count=4)
    with pytest.raises(SalesforceTransientError):
        list(make_hook().bulk2_query_csv_pages(SOQL, poll_interval=0, on_job_created=created.append))
    polls = org.counters["bulk2_poll"]
    pages = list(make_hook().bulk2_query_csv_pages(SOQL, poll_interval=0, resume_job_id=created[0]))
    assert csv_ids(pages) == accounts(sf_emulator)
    assert len(org.bulk_jobs.all()) == 1
    assert org.counters["bulk2_poll"] == polls + 1  # the one look that found it complete


@pytest.mark.parametrize("gone", ["aborted", "failed", "deleted", "queryAll"])
def test_a_job_that_cannot_be_resumed_is_replaced(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, gone: str
) -> None:
    org = sf_emulator.org
    hook = make_hook()
    created: list[str] = []
    if gone == "aborted":
        org.set_bulk_in_progress_polls(FOREVER)
        with pytest.raises(BulkJobBudgetExhausted):
            list(
                hook.bulk2_query_csv_pages(SOQL, poll_interval=0, max_polls=1, on_job_created=created.append)
            )
        org.set_bulk_in_progress_polls(1)
    elif gone == "failed":
        org.inject("bulk_job_failed", message="InternalServerError : Internal Server Error")
        with pytest.raises(SalesforceBulkJobError):
            list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0, on_job_created=created.append))
    elif gone == "deleted":
        list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0, on_job_created=created.append))
        org.bulk_jobs.delete(created[0])
    else:  # the earlier job read without deleted rows; this query wants them
        list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0, on_job_created=created.append))
    pages = list(
        hook.bulk2_query_csv_pages(
            SOQL,
            include_deleted=gone == "queryAll",
            poll_interval=0,
            resume_job_id=created[0],
            on_job_created=created.append,
        )
    )
    assert len(created) == 2, "a new job replaced the earlier one"
    assert created[1] != created[0]
    assert csv_ids(pages) == sorted(org.all_ids("Account", include_deleted=gone == "queryAll"))


def test_bulk2_job_info(make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any) -> None:
    hook = make_hook()
    created: list[str] = []
    list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0, on_job_created=created.append))
    info = hook.bulk2_job_info(created[0])
    assert info is not None
    assert (info["id"], info["state"], info["operation"]) == (created[0], "JobComplete", "query")
    assert hook.bulk2_job_info("750000000000000AAA") is None


def test_max_polls_must_be_positive(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    with pytest.raises(ValueError, match="max_polls"):
        list(make_hook().bulk2_query_csv_pages(SOQL, max_polls=0))
    assert sf_emulator.org.counters == {}


# ------------------------------------------------------------------ failed jobs
@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("InternalServerError : Internal Server Error", True),
        ("UNKNOWN_EXCEPTION: An unexpected error occurred. Please include this ErrorId: 1-2", True),
        ("Unknown : Exception with unknown cause occurred.", True),
        ("QUERY_TIMEOUT: Your query request was running for too long.", True),
        ("Retried more than fifteen times", True),
        ("InvalidBatch : Failed to process query", False),
        ("INVALID_FIELD: No such column 'Foo' on entity 'Account'", False),
        ("FUNCTIONALITY_NOT_ENABLED: Selecting compound data not supported in Bulk Query", False),
    ],
)
def test_a_failed_job_is_retried_only_when_salesforce_broke(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, message: str, transient: bool
) -> None:
    assert job_failure_is_transient(message) is transient
    sf_emulator.org.inject("bulk_job_failed", message=message)
    with pytest.raises(SalesforceBulkJobError) as failed:
        list(make_hook().bulk2_query_csv_pages(SOQL, poll_interval=0))
    error = failed.value
    assert error.retryable is transient
    assert error.state == "Failed"
    assert message in str(error)
    assert ("the task is retried" in str(error)) is transient
    assert SalesforceBulkJobError.retryable is False, "the class default stays final"
