"""DAG integrity: every DAG file imports, keeps the project's rules, and parses without I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dags.dag_policy import check_dag_folder

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_project_dags_keep_every_rule():
    assert check_dag_folder(REPO_ROOT / "dags") == []


def test_the_pipeline_dag_is_there_with_its_tasks():
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    dag = bag.dags["salesforce_to_postgres"]
    assert {t.task_id for t in dag.tasks} == {
        "prepare_warehouse",
        "sync_account",
        "sync_contact",
        "sweep_account",
        "sweep_contact",
    }
    assert all(t.execution_timeout is not None for t in dag.tasks)
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert set(dag.params.keys()) >= {"full_refresh", "objects", "extraction_method"}


@pytest.fixture(scope="module")
def bad_dag_problems() -> list[str]:
    return check_dag_folder(Path(__file__).parent / "bad_dags")


@pytest.mark.parametrize(
    "expected",
    [
        "import error in import_error.py",
        "parsing opened a connection: socket connect to ('127.0.0.1', 9)",
        "bad_no_policy: every task needs an owner",
        "bad_no_policy: has no tags",
        "bad_no_policy: tasks with retries < 2",
        "bad_no_policy: has no doc_md",
        "bad_no_policy: tasks without an execution_timeout",
    ],
)
def test_the_policy_catches_each_broken_rule(bad_dag_problems, expected):
    assert any(problem.startswith(expected) for problem in bad_dag_problems), bad_dag_problems
