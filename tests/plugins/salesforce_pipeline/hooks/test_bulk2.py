"""Bulk API 2.0 jobs within limits: polls bounded by the run's budget and by a wait, aborted in
Salesforce past them, resumed by a retried attempt, and failures told transient from final."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from salesforce_pipeline.errors import (
    BulkJobBudgetExhausted,
    BulkJobWaitExhausted,
    SalesforceBulkJobError,
    SalesforceTransientError,
)
from salesforce_pipeline.hooks.bulk2 import POLL_CAP_FACTOR, job_failure_is_transient, poll_intervals
from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
from tests.plugins.salesforce_pipeline.hooks.test_salesforce import csv_ids, ui_connection, use_connection

SOQL = "SELECT Id, Name FROM Account"


@pytest.fixture
def make_hook(sf_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., SalesforcePipelineHook]:
    """A hook on a UI-built connection to the emulator, with quick retries."""

    def make() -> SalesforcePipelineHook:
        use_connection(
            monkeypatch,
            ui_connection(sf_emulator, "client_credentials", max_retries=3, retry_base_seconds=0.001),
        )
        return SalesforcePipelineHook()

    return make


def jobs(org) -> list:
    return list(org.bulk_jobs.all())


def test_a_job_that_never_finishes_is_aborted_after_max_polls(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.bulk_in_progress_polls = 10**6
    hook = make_hook()
    hook._sleep = lambda seconds: None
    with pytest.raises(BulkJobBudgetExhausted) as refused:
        list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0, max_polls=5))
    (job,) = jobs(sf_emulator.org)
    assert job.polls == 5
    assert job.state == "Aborted"
    assert refused.value.retryable is False
    assert "aborted in Salesforce" in str(refused.value)
    assert "api_budget_share" in str(refused.value)
    assert hook.api_calls == 1 + 5 + 1  # create, five polls, the abort


def test_a_job_that_outlasts_the_wait_is_aborted(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.bulk_in_progress_polls = 10**6
    hook = make_hook()
    with pytest.raises(BulkJobWaitExhausted) as refused:
        list(hook.bulk2_query_csv_pages(SOQL, poll_interval=0.05, max_wait=0.3))
    (job,) = jobs(sf_emulator.org)
    assert job.state == "Aborted"
    assert refused.value.retryable is False
    assert "bulk_max_wait_seconds" in str(refused.value)


def test_polls_come_further_apart_up_to_a_cap() -> None:
    pauses = poll_intervals(2.0)
    first = [next(pauses) for _ in range(30)]
    assert first[0] == 2.0
    assert all(b >= a for a, b in itertools.pairwise(first))
    assert max(first) == 2.0 * POLL_CAP_FACTOR
    assert sum(first[:20]) < 3600 / 2  # an hour-long job costs well under 1,800 polls


def test_a_retry_resumes_a_running_job_instead_of_starting_another(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    created: list[str] = []
    first = make_hook()
    sf_emulator.org.inject("server_unavailable", endpoint="bulk2_results", count=4)
    with pytest.raises(SalesforceTransientError):
        list(first.bulk2_query_pages(SOQL, poll_interval=0, on_job_created=created.append))
    (job_id,) = created
    second = make_hook()
    pages = list(
        second.bulk2_query_pages(SOQL, poll_interval=0, resume_job_id=job_id, on_job_created=created.append)
    )
    assert created == [job_id], "no second job"
    assert len(jobs(sf_emulator.org)) == 1
    assert csv_ids(pages) == sorted(sf_emulator.org.all_ids("Account", include_deleted=False))


def test_an_aborted_job_is_not_resumed(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.bulk_in_progress_polls = 10**6
    hook = make_hook()
    created: list[str] = []
    with pytest.raises(BulkJobBudgetExhausted):
        list(hook.bulk2_query_pages(SOQL, poll_interval=0, max_polls=1, on_job_created=created.append))
    sf_emulator.org.bulk_in_progress_polls = 1
    list(
        hook.bulk2_query_pages(SOQL, poll_interval=0, resume_job_id=created[0], on_job_created=created.append)
    )
    assert len(created) == 2, "a new job replaced the aborted one"


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("InternalServerError : Internal Server Error", True),
        ("UNKNOWN_EXCEPTION: An unexpected error occurred", True),
        ("Query timed out", True),
        ("InvalidBatch : Failed to process query", False),
        ("INVALID_FIELD: No such column 'Foo' on entity 'Account'", False),
    ],
)
def test_a_failed_job_is_retried_only_when_salesforce_broke(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any, message: str, transient: bool
) -> None:
    assert job_failure_is_transient(message) is transient
    sf_emulator.org.inject("bulk_job_failed", message=message)
    with pytest.raises(SalesforceBulkJobError) as failed:
        list(make_hook().bulk2_query_pages(SOQL, poll_interval=0))
    assert failed.value.retryable is transient


@pytest.mark.emulator(accounts=10, contacts=500)
def test_a_released_query_cursor_is_transient(
    make_hook: Callable[..., SalesforcePipelineHook], sf_emulator: Any
) -> None:
    sf_emulator.org.inject(
        "http_error",
        status=400,
        error_code="INVALID_QUERY_LOCATOR",
        message="invalid query locator",
        endpoint="query_more",
    )
    hook = make_hook()
    with pytest.raises(SalesforceTransientError) as failed:
        list(hook.query_pages("SELECT Id FROM Contact", batch_size=200))
    assert failed.value.retryable is True
    assert "10 query cursors" in str(failed.value)
