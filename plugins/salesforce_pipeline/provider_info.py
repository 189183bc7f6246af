"""Provider metadata that gives Airflow our own Salesforce connection type.

Airflow builds connection forms, and picks the hook behind the Test button, only from provider
metadata (entry point ``apache_airflow_provider``, declared in ``pyproject.toml``). A hook in
``plugins/`` alone gets neither, so the project registers itself as a small provider.

The form is declarative (``conn-fields`` / ``ui-field-behaviour``, read by ``ProvidersManager``
without importing the hook, Airflow >= 3.2): each extra is ``{"label", "schema", "description"}``;
the UI shows ``label`` as the title, masks ``"format": "password"`` fields (and
``ProvidersManager`` marks them sensitive), and renders an ``enum`` as a drop-down whose
entries are named by ``values_display``. Fields appear in the order given here, so the form
reads like the customer's setup guide: the authentication type, then that type's fields.
Username and Password are Airflow's standard Login and Password fields, relabelled, so the
password is stored encrypted and masked like any connection password.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "customerscore-salesforce-pipeline"  # must equal the distribution name in pyproject.toml
CONN_TYPE = "customerscore_salesforce"
HOOK_NAME = "Salesforce (Customerscore)"
HOOK_CLASS_NAME = "salesforce_pipeline.hooks.salesforce.SalesforcePipelineHook"

_TEXT = {"type": ["string", "null"]}
_SECRET = {"type": ["string", "null"], "format": "password"}
_ADVANCED = "Advanced"


def _conn_fields() -> dict[str, dict[str, Any]]:
    return {
        "auth_type": {
            "label": "Authentication Type",
            "schema": {
                "type": ["string", "null"],
                "enum": ["security_token", "client_credentials"],
                "values_display": {
                    "security_token": "Security Token with Username & Password",
                    "client_credentials": "Connected App (OAuth 2.0 Client Credentials)",
                },
            },
            "description": (
                "Security Token: fill Username, Password and Security Token (Domain optional). "
                "Connected App: fill Domain, Consumer Key and Consumer Secret. Left empty, the type "
                "is inferred from the fields you fill."
            ),
        },
        "security_token": {
            "label": "Security Token",
            "schema": dict(_SECRET),
            "description": (
                "Security Token mode: the integration user's security token "
                "(Settings > Reset My Security Token). Salesforce retires this login in Summer '27."
            ),
        },
        "domain": {
            "label": "Domain",
            "schema": dict(_TEXT),
            "description": (
                "Connected App mode: your My Domain, e.g. acme.my (sandbox: acme--uat.sandbox.my), "
                "never login or test. Security Token mode: login (default), test for a sandbox, or "
                "your My Domain. A full https://host[:port] URL also works (proxy, private connectivity)."
            ),
        },
        "consumer_key": {
            "label": "Consumer Key",
            "schema": dict(_TEXT),
            "description": "Connected App mode: the Connected App's Consumer Key.",
        },
        "consumer_secret": {
            "label": "Consumer Secret",
            "schema": dict(_SECRET),
            "description": "Connected App mode: the Connected App's Consumer Secret.",
        },
        "version": {
            "label": "API Version",
            "schema": {**_TEXT, "section": _ADVANCED},
            "description": "Salesforce REST/Bulk API version for data calls, e.g. 62.0 (the default).",
        },
        "timeout": {
            "label": "Request Timeout (seconds)",
            "schema": {"type": ["number", "null"], "minimum": 1, "section": _ADVANCED},
            "description": "Seconds to wait for each HTTP response; default 120.",
        },
        "max_retries": {
            "label": "Max Retries",
            "schema": {"type": ["integer", "null"], "minimum": 0, "section": _ADVANCED},
            "description": (
                "Retries of a call that failed transiently (503, dropped connection, timeout, "
                "concurrent-request limit); default 5. Invalid credentials and the daily API limit "
                "are never retried."
            ),
        },
        "retry_base_seconds": {
            "label": "Retry Base Delay (seconds)",
            "schema": {"type": ["number", "null"], "minimum": 0, "section": _ADVANCED},
            "description": "First backoff delay; doubled on each retry, with jitter; default 1.",
        },
        "ca_bundle": {
            "label": "CA Bundle Path",
            "schema": {**_TEXT, "section": _ADVANCED},
            "description": (
                "Optional path to a PEM file of CA certificates, for a TLS-inspecting proxy or private "
                "endpoint. Certificates are always verified."
            ),
        },
        "proxies": {
            "label": "Proxies",
            "schema": {**_TEXT, "section": _ADVANCED},
            "description": (
                'Optional JSON object of proxy URLs by scheme, e.g. {"https": "http://proxy:3128"}; '
                "used for logins and every API call."
            ),
        },
    }


def _ui_field_behaviour() -> dict[str, Any]:
    # The Airflow 3 UI applies placeholders to the standard fields only; extras carry descriptions.
    return {
        "hidden-fields": ["host", "schema", "port"],
        "relabeling": {"login": "Username", "password": "Password"},
        "placeholders": {
            "login": "Security Token mode: integration.user@acme.com",
            "password": "Security Token mode: the integration user's password",
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Customerscore Salesforce pipeline",
        "description": "Salesforce connection type and hook of the Customerscore Salesforce pipeline.",
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": HOOK_NAME,
                "conn-fields": _conn_fields(),
                "ui-field-behaviour": _ui_field_behaviour(),
            }
        ],
    }
