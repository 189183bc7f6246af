"""Dependencies: everything the code imports is pinned directly, in the file of the place that
imports it; nothing is pinned that nothing uses; the production image installs no development tool.

requirements.txt            the runtime: what dags/ and plugins/ import, and the CeleryExecutor
requirements-emulator.txt   what the Salesforce emulator adds (its docker compose image)
requirements-dev.txt        both, plus what tests/, tools/ and bench/ import, and the lint tools
constraints.txt             every distribution of the development venv, pinned (`make lock`)
"""

from __future__ import annotations

from tests.support.dockerfile import stage_chain, stages
from tests.support.requirements import (
    CONSTRAINTS,
    DEV,
    EMULATOR,
    ROOT,
    RUNTIME,
    distribution_of,
    imported_modules,
    pins,
)

RUNTIME_TREES = ("dags", "plugins")
DEV_TREES = ("tests", "tools", "bench", "salesforce_emulator")
# The emulator's pytest fixtures run in the test suite, never in the emulator's image.
EMULATOR_TEST_ONLY = ("salesforce_emulator/pytest_plugin.py",)
# Pinned although no code imports them, each with what uses it instead.
RUNTIME_WITHOUT_IMPORT = {
    "apache-airflow": "fixes Airflow's version (the Dockerfile's base image is checked against it) and "
    "brings the core, the task SDK and the standard providers at that version",
    "apache-airflow-providers-postgres": "registers the `postgres` connection type of postgres_warehouse: "
    "its form and Test button in the UI, `airflow connections test` (test below)",
    "apache-airflow-providers-celery": "the CeleryExecutor, which Airflow loads by name "
    "(docker-compose.celery.yaml, make airflow EXECUTOR=celery)",
    "redis": "the transport Celery loads for a redis:// broker URL",
}
DEV_WITHOUT_IMPORT = {
    "pytest-timeout": "a pytest plugin: the `timeout` option in pyproject.toml",
    "ruff": "a command: make lint, make format",
    "mypy": "a command: the type check of plugins/",
}


def unpinned(modules: dict[str, set[str]], pinned: set[str]) -> list[str]:
    """One line per distribution that is imported but not pinned: where it is imported."""
    missing: dict[str, list[str]] = {}
    for module, files in sorted(modules.items()):
        distribution = distribution_of(module)
        if distribution not in pinned:
            missing.setdefault(distribution or "not installed", []).append(f"{module} ({min(files)})")
    return [
        f"{distribution}: {', '.join(uses[:2])}" + (f" and {len(uses) - 2} more" if len(uses) > 2 else "")
        for distribution, uses in sorted(missing.items())
    ]


def imported_distributions(trees: tuple[str, ...]) -> set[str | None]:
    return {distribution_of(module) for module in imported_modules(trees)}


def test_every_pin_is_exact_pinned_once_and_agrees_with_constraints():
    locked = pins(CONSTRAINTS)
    seen: dict[str, str] = {}
    for path in (RUNTIME, EMULATOR, DEV):
        for name, pin in pins(path, follow=False).items():
            assert name not in seen, f"{pin.name} is pinned in {seen[name]} and {path.name}"
            seen[name] = path.name
            assert name in locked, f"{pin.name} ({path.name}) is not in constraints.txt: run make lock"
            assert locked[name].version == pin.version, (
                f"{path.name} pins {pin.name}=={pin.version}, constraints.txt {locked[name].version}"
            )
    assert set(pins(DEV)) == set(pins(RUNTIME)) | set(pins(EMULATOR)) | set(pins(DEV, follow=False)), (
        "requirements-dev.txt includes requirements.txt and requirements-emulator.txt (-r)"
    )


def test_what_dags_and_plugins_import_is_pinned_in_the_runtime_requirements():
    problems = unpinned(imported_modules(RUNTIME_TREES), set(pins(RUNTIME)))
    assert not problems, "imported by the pipeline, not pinned in requirements.txt:\n" + "\n".join(problems)


def test_what_the_emulator_imports_is_pinned_for_its_image():
    modules = imported_modules(["salesforce_emulator"], skip=EMULATOR_TEST_ONLY)
    problems = unpinned(modules, set(pins(RUNTIME)) | set(pins(EMULATOR)))
    assert not problems, (
        "imported by the emulator, pinned in neither requirements.txt nor requirements-emulator.txt:\n"
        + "\n".join(problems)
    )


def test_what_tests_tools_and_benchmarks_import_is_pinned():
    problems = unpinned(imported_modules(DEV_TREES), set(pins(DEV)))
    assert not problems, "imported, pinned in no requirements file:\n" + "\n".join(problems)


def test_every_pin_is_imported_or_says_what_uses_it():
    everywhere = imported_distributions(RUNTIME_TREES + DEV_TREES)
    allowed = RUNTIME_WITHOUT_IMPORT | DEV_WITHOUT_IMPORT
    unused = sorted(pin.name for name, pin in pins(DEV).items() if name not in everywhere | set(allowed))
    assert not unused, f"pinned, imported nowhere: {unused} (drop them, or say in this test what uses them)"
    stale = sorted(set(allowed) - set(pins(DEV)))
    assert not stale, f"allowed here but pinned nowhere: {stale}"


def test_the_runtime_requirements_hold_only_what_runs_in_airflow():
    pipeline = imported_distributions(RUNTIME_TREES)
    extra = sorted(
        f"{pin.name} ({pin.source.name})"
        for name, pin in pins(RUNTIME).items()
        if name not in pipeline and name not in RUNTIME_WITHOUT_IMPORT
    )
    assert not extra, f"requirements.txt pins what the pipeline never imports: {extra}"


def test_the_images_install_no_development_tool():
    dev_only = set(pins(DEV, follow=False))
    all_stages = stages(ROOT / "Dockerfile")
    production = all_stages[-1]  # what `docker build .` builds
    for stage in all_stages:
        label = stage.name or stage.base
        for command in stage.pip_installs():
            named = {token.split("==")[0].lower() for token in command.split() if "==" in token}
            assert not named & dev_only, f"stage {label} installs {named & dev_only} directly"
        for file_name in stage.requirement_files():
            assert file_name != DEV.name, f"stage {label} installs {DEV.name}"
            tools = set(pins(ROOT / file_name)) & dev_only
            assert not tools, f"stage {label} installs {file_name}, which pins {sorted(tools)}"
    production_files = {f for s in stage_chain(all_stages, production) for f in s.requirement_files()}
    assert production_files == {RUNTIME.name}, f"the production image installs {production_files}"


def test_the_warehouse_connection_type_is_testable(test_database_url, monkeypatch):
    """What apache-airflow-providers-postgres is pinned for: without it, Airflow knows no hook for
    the `postgres` type, and the UI's Test button and `airflow connections test` cannot test it."""
    from airflow.models.connection import Connection

    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_WAREHOUSE", test_database_url)
    connection = Connection(conn_id="postgres_warehouse", uri=test_database_url)
    assert connection.conn_type == "postgres"
    assert connection.test_connection() == (True, "Connection successfully tested")
