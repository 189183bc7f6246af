# The pipeline's Airflow image: the official Airflow 3.3.2 image plus this project's pinned runtime
# requirements and the project itself (installed so its `apache_airflow_provider` entry point,
# and with it our `customerscore_salesforce` connection type, is registered). No test or lint
# tool is installed: those are in requirements-dev.txt, which no stage installs.
# Build: docker compose build   (or: docker build -t customerscore/salesforce-airflow .)
#
# Stages: `runtime` (the pipeline), `emulator` (runtime + the Salesforce emulator, for docker
# compose's demo profile) and `airflow`, the last one and so the default: the production image.
FROM apache/airflow:3.3.2-python3.11 AS runtime

# The official image runs pip as the unprivileged `airflow` user (installs land in its user
# site, which the image puts on every user's path); stay that user rather than fight it.
USER airflow
WORKDIR /opt/airflow

# Requirements first and on their own, so editing the DAG or the plugins does not re-run this
# layer. The same requirements.txt + constraints.txt as `make install` installs (under the
# development tools): the image runs exactly the runtime package set the test suite ran.
# apache-airflow is pinned in requirements.txt, so pip can never up- or downgrade the image's Airflow.
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/project-requirements/
RUN pip install --no-cache-dir --disable-pip-version-check \
        -r /opt/airflow/project-requirements/requirements.txt \
        -c /opt/airflow/project-requirements/constraints.txt

# The project lives at /opt/airflow itself, where compose bind-mounts dags/, plugins/ and
# include/ over these copies. The editable install maps salesforce_pipeline to
# /opt/airflow/plugins/salesforce_pipeline, so a mounted plugins/ is the code that runs (no
# stale copy in site-packages), and the image still works without any mount.
COPY --chown=airflow:0 pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=airflow:0 plugins /opt/airflow/plugins
COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 include /opt/airflow/include
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps -e /opt/airflow

# Mount points of the named volumes (auth file, shared config, the emulator's CA). A new named
# volume takes the ownership of the directory it is mounted over, so creating them here,
# group 0 writable like the rest of the image, lets any AIRFLOW_UID write to them.
RUN mkdir -p -m 0775 /opt/airflow/auth /opt/airflow/config /opt/airflow/emulator-ca

ENV SALESFORCE_PIPELINE_SQL_DIR=/opt/airflow/include/sql

# The local Salesforce of the demo profile (`python -m salesforce_emulator`, PYTHONPATH
# /opt/airflow): what it needs beyond the runtime, and its code.
FROM runtime AS emulator
COPY --chown=airflow:0 requirements-emulator.txt /opt/airflow/project-requirements/
RUN pip install --no-cache-dir --disable-pip-version-check \
        -r /opt/airflow/project-requirements/requirements-emulator.txt \
        -c /opt/airflow/project-requirements/constraints.txt
COPY --chown=airflow:0 salesforce_emulator /opt/airflow/salesforce_emulator

# The production image: the runtime alone.
FROM runtime AS airflow
