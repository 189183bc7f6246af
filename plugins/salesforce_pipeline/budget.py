"""The org's daily API allowance: what a run may spend of it, and how it spends it.

Each run estimates its calls from Salesforce's `COUNT()` before extracting anything and refuses
to start when the estimate is over its share of what is left today. A Bulk 2.0 job's status
polls come out of the same budget: a job that keeps running is aborted when the run's share is
spent, never polled until the org's allowance is gone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from salesforce_pipeline import extract
from salesforce_pipeline.errors import SalesforcePipelineError

if TYPE_CHECKING:
    from salesforce_pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

METHODS = ("auto", "rest", "bulk2")
# Calls a run makes after extracting: the reconciliation's count (and a recount when the figures
# differ) and the live count for drift. Kept back from what a Bulk job may spend on polls.
AFTER_LOAD_CALLS = 3


class ApiBudgetExceeded(SalesforcePipelineError):
    """The extraction would spend more of the org's remaining daily API allowance than allowed."""

    retryable = False


def choose_method(requested: str, count: int, settings: PipelineSettings) -> str:
    """REST or Bulk 2.0 for ``count`` records: the requested one, or by ``bulk_threshold`` for auto."""
    if requested not in METHODS:
        raise ValueError(f"extraction method must be one of {METHODS}, got {requested!r}")
    if requested != "auto":
        return requested
    return "bulk2" if count > settings.bulk_threshold else "rest"


def check_budget(hook, spec, count, method, settings) -> int:
    """Refuse a run that would spend too much of the org's allowance; returns the calls it may use."""
    estimate = extract.estimate_api_calls(
        count, method, rest_batch_size=settings.rest_batch_size, bulk_page_size=settings.bulk_page_size
    )
    usage = hook.api_usage
    if usage is None:
        remaining, maximum = hook.daily_api_limit()
        used = maximum - remaining
    else:
        used, maximum = usage
        remaining = maximum - used
    allowed = int(remaining * settings.api_budget_share)
    log.info(
        "%s: estimated %d API calls for %d records by %s; org has used %d of %d today, this run may use %d",
        spec.name,
        estimate,
        count,
        method,
        used,
        maximum,
        allowed,
    )
    if estimate > allowed:
        raise ApiBudgetExceeded(
            f"{spec.name}: extracting {count} records by {method} needs about {estimate} API calls, "
            f"more than the {allowed} allowed ({settings.api_budget_share:.0%} of the {remaining} "
            f"remaining of {maximum} daily calls). Nothing was extracted or loaded. Raise api_budget_share in Variable "
            f"'salesforce_to_postgres', use Bulk 2.0, or run when more of the allowance is left."
        )
    return allowed


def bulk_polls_per_slice(hook, slices, allowed, settings, calls_before) -> int:
    """Status polls each slice's Bulk 2.0 job may spend.

    The budget check allowed ``allowed`` calls for the whole run; what is spent already, every
    slice's job creation, results pages and abort, and the counts after the load come first, and
    what is left is shared among the slices still to read.
    """
    todo = [s for s in slices if not s.done]
    pages = sum(extract.bulk_page_calls(s.plan.expected, settings.bulk_page_size) for s in todo)
    spent = hook.api_calls - calls_before
    left = allowed - spent - pages - 2 * len(todo) - AFTER_LOAD_CALLS
    return max(1, left // max(len(todo), 1))
