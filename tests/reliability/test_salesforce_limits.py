"""Salesforce's transient failures are retried, its limits are respected, through the real DAG.

A released query cursor and a Bulk job failed by an internal error pass on their own: the slice is
read again on its own, within the same task attempt, and the run ends with every row right. A Bulk job that never finishes is aborted in
Salesforce once the run's share of the API allowance is spent, and a retried attempt picks up
the job its predecessor started instead of starting another.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from salesforce_pipeline.slice_runner import SLICE_ATTEMPTS

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 30, tzinfo=UTC)
# 300 contacts in REST pages of 200: every extraction has a `query_more` page.
pytestmark = pytest.mark.emulator(accounts=40, contacts=300, seed=1515, now=NOW)


@pytest.fixture(autouse=True)
def frozen_clock(sf_emulator):
    sf_emulator.org.set_clock(NOW)


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def contact_jobs(org) -> list:
    return [job for job in org.bulk_jobs.all() if job.object == "Contact"]


def test_a_released_query_cursor_is_retried_and_the_run_completes(pipeline, sf_emulator):
    # What Salesforce answers when the user's 11th cursor released ours, or ours idled 15 minutes.
    sf_emulator.org.inject(
        "http_error",
        status=400,
        error_code="INVALID_QUERY_LOCATOR",
        message="invalid query locator",
        endpoint="query_more",
        count=1,
    )
    dag_run = pipeline.run(DAY, objects=["Contact"])
    assert dag_run.state == "success", states(dag_run)
    # The slice was read again from its start, alone: no task retry was needed.
    assert dag_run.get_task_instance("sync_contact").try_number == 1
    assert pipeline.mismatches("Contact") == []
    (row,) = pipeline.audit()
    assert row["status"] == "success"
    assert row["extracted"] == 300, row


def test_a_bulk_job_failed_by_an_internal_error_is_retried(pipeline, sf_emulator):
    sf_emulator.org.inject("bulk_job_failed", message="InternalServerError : Internal Server Error", count=1)
    dag_run = pipeline.run(DAY, objects=["Contact"], extraction_method="bulk2")
    assert dag_run.state == "success", states(dag_run)
    assert dag_run.get_task_instance("sync_contact").try_number == 1  # the slice was retried alone
    failed, done = contact_jobs(sf_emulator.org)
    assert (failed.state, done.state) == ("Failed", "JobComplete")
    assert pipeline.mismatches("Contact") == []


def test_a_bulk_job_that_never_finishes_is_aborted_within_the_runs_budget(pipeline, sf_emulator):
    org = sf_emulator.org
    org.bulk_in_progress_polls = 10**6  # the job stays InProgress for good
    org.set_daily_limit(200)
    org.set_api_usage(100)  # 100 left: a run may use 50 of them (api_budget_share 0.5)
    pipeline.configure(bulk_poll_seconds=0.01)

    dag_run = pipeline.run(DAY, objects=["Contact"], extraction_method="bulk2")

    assert states(dag_run)["sync_contact"] == "failed"
    assert dag_run.get_task_instance("sync_contact").try_number == 1, "retrying would spend more"
    (job,) = contact_jobs(org)
    assert job.state == "Aborted", "the job is not left running in Salesforce"
    (row,) = pipeline.audit()
    assert row["status"] == "failed"
    assert row["api_calls"] <= 50, row
    assert "aborted" in row["error"].lower(), row["error"]
    assert "budget" in row["error"].lower(), row["error"]
    assert pipeline.query("SELECT count(*) FROM salesforce.contact") == [(0,)]


def test_a_retried_attempt_resumes_the_bulk_job_its_predecessor_started(pipeline, sf_emulator):
    org = sf_emulator.org
    # The job completes, then every try of its first results page fails, each time the slice is
    # read again too: the attempt gives up (transient) and Airflow retries the task, which must
    # read that same job's results.
    org.inject("server_unavailable", endpoint="bulk2_results", count=5 * SLICE_ATTEMPTS)
    dag_run = pipeline.run(DAY, objects=["Contact"], extraction_method="bulk2")
    assert dag_run.state == "success", states(dag_run)
    assert dag_run.get_task_instance("sync_contact").try_number == 2
    (job,) = contact_jobs(org)  # the retry resumed the job instead of creating another
    assert pipeline.mismatches("Contact") == []
    first, second = pipeline.audit()
    assert (first["status"], first["bulk_job_id"]) == ("failed", job.id)
    assert second["status"] == "success"
