"""Extract one object's records for a window: field planning, SOQL, and bounded chunks.

Pure functions plan the fields (against describe) and build the SOQL; the chunk generators
stream REST pages (decoded by `rest_columns`) or Bulk API 2.0 CSV pages (parsed by `bulk_csv`)
through the hook as column chunks of the selected fields, holding at most one chunk (plus the
page it is cut from).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from salesforce_pipeline.bulk_csv import bulk_page_chunks
from salesforce_pipeline.column_chunk import ChunkBuffer, ColumnChunk
from salesforce_pipeline.objects import REQUIRED_FIELDS, ObjectSpec
from salesforce_pipeline.prefetch import prefetched
from salesforce_pipeline.rest_columns import RestColumnDecoder
from salesforce_pipeline.settings import PipelineSettings, SettingsError, is_soql_identifier
from salesforce_pipeline.transform import kind_for, postgres_type, snake_case

if TYPE_CHECKING:
    from salesforce_pipeline.hooks.salesforce import SalesforcePipelineHook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """The SystemModstamp range one run reads. `start` None means all of history."""

    start: datetime | None
    end: datetime | None

    def soql_condition(self) -> str:
        """The window as a SOQL condition on SystemModstamp ("" for all of history)."""
        conditions = []
        if self.start is not None:
            conditions.append(f"SystemModstamp >= {soql_datetime(self.start)}")
        if self.end is not None:
            conditions.append(f"SystemModstamp < {soql_datetime(self.end)}")
        return " AND ".join(conditions)

    def describe(self) -> str:
        """The window for people: `[start, end)`, "beginning" and "now" for open ends."""
        start = soql_datetime(self.start) if self.start else "beginning"
        end = soql_datetime(self.end) if self.end else "now"
        return f"[{start}, {end})"


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC)."""
    if moment.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incremental_window(interval_start: datetime, interval_end: datetime, lookback: timedelta) -> Window:
    """A run owns [start, end) of its data interval, re-reading `lookback` before the start,
    since a record can commit with a SystemModstamp earlier than a query that already ran."""
    return Window(start=interval_start - lookback, end=interval_end)


# A full refresh has no upper bound: anything newer than the interval is still the truth, and the
# upsert guard keeps it; bounding it would make rows changed since look deleted.
FULL_REFRESH_WINDOW = Window(start=None, end=None)


@dataclass
class FieldPlan:
    """What to select for one object, how to read each field, and what was left out."""

    fields: list[str]
    kinds: dict[str, str]
    hidden_defaults: list[str] = field(default_factory=list)
    extra_columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The warehouse columns of the selected fields, in the same order."""
        return [snake_case(f) for f in self.fields]


def plan_fields(
    spec: ObjectSpec,
    describe: Mapping[str, Any],
    extra_fields: Sequence[str],
    describe_related: Callable[[str], Mapping[str, Any]],
    *,
    all_fields: bool = False,
) -> FieldPlan:
    """Check the field list against describe before anything is extracted.

    Default fields that describe does not show (field-level security, or an edition without
    them) are left out with a warning and their columns stay null. A configured extra field
    that describe does not show is an error: someone asked for it by name.
    """
    by_name = {f["name"]: f for f in describe.get("fields", [])}
    kinds: dict[str, str] = {}
    selected: list[str] = []
    hidden: list[str] = []
    for name in spec.default_fields:
        described = by_name.get(name)
        if described is None:
            if name in REQUIRED_FIELDS:
                raise SettingsError(
                    f"{spec.name}.{name} is not visible to the integration user; the pipeline needs it. "
                    f"Grant read access to {spec.name}.{name} in the user's permission set."
                )
            hidden.append(name)
            continue
        selected.append(name)
        kinds[name] = kind_for(described["type"])

    extra_columns: list[tuple[str, str]] = []
    default_columns = {snake_case(n) for n in spec.default_fields}
    if all_fields:
        extra_fields = [*extra_fields, *every_other_field(spec, describe)]
    for name in dict.fromkeys(extra_fields):
        if not is_soql_identifier(name):
            raise SettingsError(f"{name!r} is not a SOQL field name")
        if name in selected:
            continue
        described = _describe_path(spec, name, by_name, describe_related)
        if described.get("type") in ("address", "location"):
            raise SettingsError(
                f"{spec.name}.{name} is a compound field, which cannot be extracted as one column; "
                "configure its components instead (e.g. BillingCity, BillingPostalCode)"
            )
        selected.append(name)
        kinds[name] = kind_for(described["type"])
        column = snake_case(name)
        if column in default_columns:
            raise SettingsError(f"Extra field {name!r} maps to column {column!r}, which a default field uses")
        extra_columns.append((column, postgres_type(kinds[name])))
    return FieldPlan(fields=selected, kinds=kinds, hidden_defaults=hidden, extra_columns=extra_columns)


def _describe_path(spec, name, by_name, describe_related) -> Mapping[str, Any]:
    if "." not in name:
        described = by_name.get(name)
        if described is None:
            raise SettingsError(
                f"Configured extra field {spec.name}.{name} does not exist or is not visible to the "
                f"integration user (checked against describe). Check the API name (custom fields end in "
                f"__c) or grant field-level security, or remove it from extra_fields.{spec.name}."
            )
        return described
    relationship, _, rest = name.partition(".")
    reference = next(
        (f for f in by_name.values() if f.get("relationshipName") == relationship and f.get("referenceTo")),
        None,
    )
    if reference is None:
        raise SettingsError(
            f"Configured extra field {spec.name}.{name}: {relationship!r} is not a relationship of "
            f"{spec.name} (checked against describe)"
        )
    parent = describe_related(reference["referenceTo"][0])
    parent_fields = {f["name"]: f for f in parent.get("fields", [])}
    if "." in rest:
        raise SettingsError(
            f"Configured extra field {spec.name}.{name}: only one relationship level is supported"
        )
    described = parent_fields.get(rest)
    if described is None:
        raise SettingsError(
            f"Configured extra field {spec.name}.{name}: {reference['referenceTo'][0]} has no field {rest!r} "
            "visible to the integration user"
        )
    return described


# Not one column each: a compound field's components are fields of their own (BillingCity...), and
# base64 content (attachments) can only be read one record at a time.
UNEXTRACTABLE_TYPES = frozenset({"address", "location", "base64"})


def every_other_field(spec: ObjectSpec, describe: Mapping[str, Any]) -> list[str]:
    """The fields describe shows besides the object's defaults (setting ``fields: "all"``): every
    one the integration user can read, except compound and base64 fields, and except one whose
    column a default field already uses."""
    taken = {snake_case(name) for name in spec.default_fields}
    return [
        described["name"]
        for described in describe.get("fields", [])
        if described.get("type") not in UNEXTRACTABLE_TYPES
        and described["name"] not in spec.default_fields
        and snake_case(described["name"]) not in taken
    ]


def build_soql(
    spec: ObjectSpec,
    fields: Sequence[str],
    window: Window,
    *,
    in_id_order: bool = False,
    after_id: str | None = None,
) -> str:
    """The query that extracts `fields` of the object's records in `window`; `in_id_order` sorts
    them by Id, and `after_id` keeps only those past it (a query going on where another stopped)."""
    conditions = [c for c in (window.soql_condition(), _after(after_id)) if c]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = " ORDER BY Id" if in_id_order or after_id else ""
    return f"SELECT {', '.join(fields)} FROM {spec.name}{where}{order}"


def _after(record_id: str | None) -> str:
    if record_id is None:
        return ""
    if not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?", record_id):  # an Id, nothing else
        raise ValueError(f"not a Salesforce Id to query on from: {record_id!r}")
    return f"Id > '{record_id}'"


def build_count_soql(spec: ObjectSpec, window: Window, *, live_only: bool = False) -> str:
    """The COUNT() of the object's records in `window` (only those not deleted, if `live_only`)."""
    conditions = [c for c in (window.soql_condition(), "IsDeleted = false" if live_only else "") if c]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT COUNT() FROM {spec.name}{where}"


def estimate_api_calls(record_count: int, method: str, *, rest_batch_size: int, bulk_page_size: int) -> int:
    """Calls an extraction of `record_count` records will cost, for the budget check."""
    if method == "bulk2":
        # create + a few polls + one results call per page
        return 1 + BULK_POLLS_ESTIMATE + bulk_page_calls(record_count, bulk_page_size)
    return max(1, math.ceil(record_count / rest_batch_size))


#: Status polls a Bulk 2.0 job is expected to need; the budget check counts them, and a job
#: that needs more may spend whatever the run's budget has left (and is aborted past that).
BULK_POLLS_ESTIMATE = 5


def bulk_page_calls(record_count: int, bulk_page_size: int) -> int:
    """Results-page calls a Bulk 2.0 job of `record_count` records costs."""
    return max(1, math.ceil(record_count / bulk_page_size))


class Progress:
    """Logs records, pages and rate every few thousand records, for the people watching the task."""

    def __init__(self, sobject: str, every: int = 5000) -> None:
        self.sobject = sobject
        self.every = every
        self.records = 0
        self.pages = 0
        self.started = time.monotonic()
        self._next_report = every

    def page(self, records: int, *, pages: int = 1) -> None:
        """Count `pages` pages (one, or a slice's batch) of `records` records in all; log when
        another `every` records have come."""
        self.pages += pages
        self.records += records
        if self.records >= self._next_report:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            log.info(
                "%s: extracted %d records in %d pages (%.0f records/s)",
                self.sobject,
                self.records,
                self.pages,
                self.records / elapsed,
            )
            self._next_report = (self.records // self.every + 1) * self.every


def rest_chunks(
    hook: SalesforcePipelineHook,
    soql: str,
    fields: Sequence[str],
    *,
    chunk_size: int,
    batch_size: int,
    progress: Progress,
) -> Iterator[ColumnChunk]:
    """queryAll pages (deletes included) regrouped into column chunks of at most `chunk_size`.

    The next page is fetched (and decoded) in a background thread while this one is transformed
    and loaded; at most one page waits.
    """
    buffer = ChunkBuffer(fields, chunk_size)
    pages = hook.query_pages(
        soql, include_deleted=True, batch_size=batch_size, decoder=RestColumnDecoder(fields)
    )
    for page in prefetched(pages, depth=1, name="salesforce page prefetch"):
        progress.page(len(page))
        yield from buffer.add(page)
    yield from buffer.flush()


def bulk_chunks(
    hook: SalesforcePipelineHook,
    soql: str,
    fields: Sequence[str],
    *,
    chunk_size: int,
    page_size: int,
    poll_seconds: float,
    progress: Progress,
    **job_options: Any,
) -> Iterator[ColumnChunk]:
    """A Bulk API 2.0 queryAll job's CSV pages, as column chunks of at most `chunk_size`.

    `job_options` go to the hook's job (`max_polls`, `max_wait`, `resume_job_id`, `on_job_created`).
    Pages are large (`page_size` records, one API call each) to spend few calls; a page's rows
    are parsed only a chunk at a time, and the page is held as the bytes received (never one
    decoded string), so a page's bytes are the most held at once.
    """
    # Not read ahead (as REST pages are): measured at 1,000,000 Contacts, reading the next page
    # while this one is parsed saved 10-15% of the time but held a second page of tens of MB,
    # and the peak went over 300 MB (325 MB against 290). A page is one bytes object, freed only
    # once fully parsed.
    for page in hook.bulk2_query_csv_pages(
        soql, include_deleted=True, max_records=page_size, poll_interval=poll_seconds, **job_options
    ):
        chunks = bulk_page_chunks(page, fields, chunk_size)
        del page  # the parser holds the page now, and lets it go once it is read
        page_records = 0
        for chunk in chunks:
            page_records += chunk.count
            yield chunk
        progress.page(page_records)


def plan_for(spec: ObjectSpec, settings: PipelineSettings, hook: SalesforcePipelineHook) -> FieldPlan:
    """The object's field plan under the settings (``fields``, ``extra_fields``), from describe."""
    return plan_fields(
        spec,
        hook.describe_object(spec.name),
        settings.extra_fields.get(spec.name, ()),
        hook.describe_object,
        all_fields=settings.all_fields(spec.name),
    )


def chunks(
    hook: SalesforcePipelineHook,
    soql: str,
    fields: Sequence[str],
    *,
    method: str,
    settings: PipelineSettings,
    progress: Progress,
    **job_options: Any,
) -> Iterator[ColumnChunk]:
    """The query's records as column chunks, by REST pages or a Bulk 2.0 job (``method``), sized
    by the settings; ``job_options`` go to the Bulk job (see `bulk_chunks`)."""
    if method == "bulk2":
        return bulk_chunks(
            hook,
            soql,
            fields,
            chunk_size=settings.chunk_size,
            page_size=settings.bulk_page_size,
            poll_seconds=settings.bulk_poll_seconds,
            progress=progress,
            **job_options,
        )
    return rest_chunks(
        hook,
        soql,
        fields,
        chunk_size=settings.chunk_size,
        batch_size=settings.rest_batch_size,
        progress=progress,
    )
