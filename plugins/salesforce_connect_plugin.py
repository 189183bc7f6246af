"""Airflow plugin: the Connect Salesforce pages (salesforce_pipeline/connect/), served by the
api-server at /salesforce and linked from the UI's navigation."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from salesforce_pipeline.connect.app import create_app


class SalesforceConnectPlugin(AirflowPlugin):
    name = "salesforce_connect"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": "/salesforce", "name": "Connect Salesforce"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Salesforce orgs",
            "href": "/salesforce/",
            "destination": "nav",
            "url_route": "salesforce-orgs",
        }
    ]
