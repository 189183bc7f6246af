"""What Salesforce's response headers say: how long to wait (``Retry-After``) and how much of
the org's daily allowance is used (``Sforce-Limit-Info``)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import requests
from simple_salesforce import Salesforce


def retry_after(response: requests.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def parse_usage(header: str | None) -> tuple[int, int] | None:
    """``(used, max)`` from a ``Sforce-Limit-Info`` header, via simple-salesforce's parser."""
    if not header:
        return None
    usage = Salesforce.parse_api_usage(header).get("api-usage")
    return (usage.used, usage.total) if usage is not None else None
