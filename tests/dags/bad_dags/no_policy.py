"""A DAG that breaks the project's rules on purpose (owner, tags, retries, execution_timeout, doc_md)."""

from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="bad_no_policy", schedule=None, start_date=datetime(2026, 1, 1))
def bad_no_policy():
    @task
    def noop():
        return None

    noop()


bad_no_policy.__doc__ = None
bad_no_policy()
