"""The project's developer tools, importable as `tools.<module>` from the repository root.

`localpg` and `localredis` also run as plain scripts with the system Python (they use only the
standard library, because `make` calls them before the virtualenv exists); `local_airflow` runs
as `python -m tools.local_airflow` from the virtualenv.
"""
