"""The one exception the launcher raises on purpose."""

from __future__ import annotations


class LocalAirflowError(RuntimeError):
    """Airflow did not come up or did not do what was asked; the message says why and where to look."""
