"""Airflow plugin: the Connect Salesforce pages (salesforce_pipeline/connect/), served by the
api-server at /salesforce and linked from the UI's navigation, and the api-server-side fix for
the connection form's Test button on Airflow 3.3.1-3.3.2."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from salesforce_pipeline.connect.app import create_app
from salesforce_pipeline.connect.test_button import PortlessConnectionTestFix


class SalesforceConnectPlugin(AirflowPlugin):
    """Mounts the Connect Salesforce page at /salesforce in the api-server and links it in the menu."""

    name = "salesforce_connect"
    fastapi_apps: list[dict[str, Any]] = [
        {"app": create_app(), "url_prefix": "/salesforce", "name": "Connect Salesforce"}
    ]
    # The Test button of Airflow 3.3.1-3.3.2 fails for every connection without a port (see the module).
    fastapi_root_middlewares: list[dict[str, Any]] = [
        {"middleware": PortlessConnectionTestFix, "name": "Connection test without a port"}
    ]
    external_views: list[dict[str, Any]] = [
        {
            "name": "Salesforce orgs",
            "href": "/salesforce/",
            "destination": "nav",
            "url_route": "salesforce-orgs",
        }
    ]
