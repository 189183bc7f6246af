"""One local Airflow, for `make airflow`, `make demo`, the deploy tests and the many-orgs bench.

    python -m tools.local_airflow start|stop|status [--executor local|celery] [--workers N] ...
    python -m tools.local_airflow.demo

Every component (api-server, scheduler, dag-processor, triggerer, and Celery workers when asked)
is its own process group with its pid recorded under the Airflow home, so a later `stop` ends
exactly what `start` began. The modules, one job each:

* `layout`: where an instance keeps its files, the virtualenv's `airflow`, free ports;
* `processes`: starting, recording and stopping process groups (task processes included);
* `settings`: the environment every component shares, the CeleryExecutor's settings;
* `databases`: the PostgreSQL server, databases made or dropped on it;
* `server`: a running Airflow: its REST API, its CLI, its readiness and its logs;
* `launch`: migrating, starting the components and workers, waiting until they serve;
* `emulator`: the Salesforce emulator as a process of its own (for `make airflow`);
* `onboarding`: the demo's orgs, added as an operator would with the `airflow` CLI;
* `cli`: `start`, `stop` and `status` of the instance under `.local/airflow`;
* `demo`: `make demo`, the pipeline end to end on that instance.
"""
