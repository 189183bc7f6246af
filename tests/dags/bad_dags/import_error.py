"""A DAG file that cannot be imported."""

from airflow.sdk import this_name_does_not_exist  # noqa: F401
