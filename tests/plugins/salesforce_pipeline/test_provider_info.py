"""Airflow sees our connection type, its form fields and our hook behind the Test button.

These read Airflow's own ProvidersManager (the project is installed editable, so its
``apache_airflow_provider`` entry point is live) and the service that feeds the UI's form.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook
from salesforce_pipeline.provider_info import CONN_TYPE, HOOK_CLASS_NAME, PACKAGE_NAME, get_provider_info

FORM_ORDER = [
    "auth_type",
    "security_token",
    "domain",
    "consumer_key",
    "consumer_secret",
    "version",
    "timeout",
    "max_retries",
    "retry_base_seconds",
    "ca_bundle",
    "proxies",
]
SECRET_FIELDS = {"security_token", "consumer_secret"}


@pytest.fixture(scope="module")
def providers_manager():
    from airflow.providers_manager import ProvidersManager

    return ProvidersManager()


def test_provider_info_matches_the_installed_distribution() -> None:
    """Airflow refuses (ValueError at discovery) a package-name that differs from the distribution."""
    from importlib.metadata import distribution

    from packaging.utils import canonicalize_name

    info = get_provider_info()
    assert canonicalize_name(distribution(PACKAGE_NAME).metadata["name"]) == info["package-name"]
    entry_points = [
        ep for ep in distribution(PACKAGE_NAME).entry_points if ep.group == "apache_airflow_provider"
    ]
    assert [ep.value for ep in entry_points] == ["salesforce_pipeline.provider_info:get_provider_info"]


def test_provider_info_validates_against_airflows_schema() -> None:
    import json
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_hook_class_attributes_match_the_metadata() -> None:
    (conn_type_info,) = get_provider_info()["connection-types"]
    assert conn_type_info["connection-type"] == SalesforcePipelineHook.conn_type == CONN_TYPE
    assert conn_type_info["hook-name"] == SalesforcePipelineHook.hook_name
    assert conn_type_info["hook-class-name"] == HOOK_CLASS_NAME
    assert SalesforcePipelineHook.conn_name_attr == "salesforce_conn_id"
    assert SalesforcePipelineHook.default_conn_name == "salesforce_default"


@pytest.mark.parametrize("runtime", ["api-server", "task-sdk"])
def test_providers_manager_lists_our_hook_as_testable(providers_manager, runtime: str) -> None:
    """The API server (Test button) still reads the core manager's ``hooks``; tasks the SDK's."""
    if runtime == "task-sdk":
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        hooks = ProvidersManagerTaskRuntime().hooks
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated for task code, still what the API server uses
            hooks = providers_manager.hooks
    hook_info = hooks[CONN_TYPE]
    assert hook_info is not None
    assert hook_info.hook_class_name == HOOK_CLASS_NAME
    assert hook_info.package_name == PACKAGE_NAME
    assert hook_info.hook_name == "Salesforce (Customerscore)"
    assert hook_info.connection_id_attribute_name == "salesforce_conn_id"
    assert hook_info.connection_testable is True
    # The provider's own type is untouched and still served by the provider's hook.
    assert hooks["salesforce"].hook_class_name.startswith("airflow.providers.salesforce")


def test_providers_manager_holds_our_declarative_fields(providers_manager) -> None:
    widgets = {
        key: info
        for key, info in providers_manager.connection_form_widgets.items()
        if info.package_name == PACKAGE_NAME
    }
    assert list(widgets) == [f"extra__{CONN_TYPE}__{name}" for name in FORM_ORDER]
    for name in FORM_ORDER:
        info = widgets[f"extra__{CONN_TYPE}__{name}"]
        assert info.hook_class_name == HOOK_CLASS_NAME
        assert info.field_name == name
        assert info.is_sensitive is (name in SECRET_FIELDS)
    auth_type = widgets[f"extra__{CONN_TYPE}__auth_type"].field
    assert auth_type["schema"]["title"] == "Authentication Type"
    assert auth_type["schema"]["enum"] == ["security_token", "client_credentials"]
    assert auth_type["schema"]["values_display"] == {
        "security_token": "Security Token with Username & Password",
        "client_credentials": "Connected App (OAuth 2.0 Client Credentials)",
    }

    behaviour = providers_manager.field_behaviours[CONN_TYPE]
    assert behaviour["hidden_fields"] == ["host", "schema", "port"]
    assert behaviour["relabeling"] == {"login": "Username", "password": "Password"}


def test_deprecated_form_methods_are_not_used_for_our_type() -> None:
    """ProvidersManager calls get_connection_form_widgets/get_ui_field_behaviour only when defined on
    the class itself *and* the metadata has no conn-fields; neither holds, so nothing conflicts."""
    assert "get_connection_form_widgets" not in SalesforcePipelineHook.__dict__
    assert "get_ui_field_behaviour" not in SalesforcePipelineHook.__dict__


def test_ui_receives_the_form(providers_manager) -> None:
    """What the connection form's API (/ui/connections/hook_meta) sends for our type."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == CONN_TYPE]
    assert meta.hook_name == "Salesforce (Customerscore)"
    assert meta.hook_class_name == HOOK_CLASS_NAME
    assert list(meta.extra_fields) == FORM_ORDER
    assert meta.extra_fields["security_token"]["schema"]["format"] == "password"
    assert meta.extra_fields["consumer_secret"]["schema"]["format"] == "password"
    assert meta.extra_fields["domain"]["schema"]["title"] == "Domain"
    assert "My Domain" in meta.extra_fields["domain"]["description"]
    standard = meta.standard_fields
    assert standard.login.title == "Username"
    assert standard.password.title == "Password"
    assert standard.host.hidden is True
    assert standard.port.hidden is True
    assert standard.url_schema.hidden is True


@pytest.mark.parametrize("module", ["airflow.models", "airflow.sdk"])
def test_connection_get_hook_returns_our_hook(module: str) -> None:
    connection_class = importlib.import_module(module).Connection
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hook = connection_class(conn_id="sf_ui", conn_type=CONN_TYPE).get_hook()
    assert isinstance(hook, SalesforcePipelineHook)
    assert hook.conn_id == "sf_ui"
