"""REST API calls of the hook: query pages, counts, describe and the org's limits.

Every call goes through the transport's :meth:`~salesforce_pipeline.hooks.transport.SalesforceTransport.call`
(refresh, retries, errors as ours). A body that is cut short or garbled is a transient failure:
it is fetched again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import requests
from simple_salesforce import Salesforce

from salesforce_pipeline.domain import host_of
from salesforce_pipeline.errors import SalesforceCursorGone
from salesforce_pipeline.hooks.transport import Retryable, SalesforceTransport

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

P = TypeVar("P", covariant=True)
_SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# A query cursor's path as Salesforce sends it (nextRecordsUrl): it is appended to the instance's
# address, so anything else (another host, another resource) is refused before any request.
_CURSOR_PATH = re.compile(r"^/services/data/v\d+\.\d+/query(All)?/[A-Za-z0-9_-]+$")


class PageDecoder(Protocol[P]):
    """Turns a REST query page's body into ``(page, done, nextRecordsUrl)``; ValueError if invalid."""

    def __call__(self, content: bytes, /) -> tuple[P, bool, str | None]:
        """Decode one page."""


class _Hook(Protocol):
    """What the REST calls need of the hook they are mixed into."""

    @property
    def http(self) -> SalesforceTransport: ...
    @property
    def log(self) -> Logger: ...
    @property
    def _describe_cache(self) -> dict[str, dict]: ...
    def get_conn(self) -> Salesforce: ...
    def query_pages_resumable(
        self,
        soql: str,
        *,
        include_deleted: bool = ...,
        batch_size: int = ...,
        decoder: Any = ...,
        resume_url: str | None = ...,
    ) -> Iterator[tuple[Any, str | None]]: ...


def read_json(response: requests.Response) -> Any:
    """The JSON body of a successful response; a body cut short is worth fetching again."""
    try:
        return response.json()
    except ValueError:
        raise Retryable(
            f"invalid or truncated JSON from {host_of(response.url or '')} ({len(response.content)} bytes)"
        ) from None


def records_page(content: bytes) -> tuple[list[dict], bool, str | None]:
    """A REST query page as ``(records, done, nextRecordsUrl)``, the records as plain dicts."""
    payload = json.loads(content)
    if not isinstance(payload, dict):
        raise ValueError("a query result is a JSON object")
    return payload.get("records", []), bool(payload.get("done", True)), payload.get("nextRecordsUrl")


def _page_reader(decode: PageDecoder[P]) -> Callable[[requests.Response], tuple[P, bool, str | None]]:
    def read(response: requests.Response) -> tuple[P, bool, str | None]:
        content = whole_body(response)  # requested with stream=True
        try:
            return decode(content)
        except ValueError:
            raise Retryable(
                f"invalid or truncated JSON from {host_of(response.url or '')} ({len(content)} bytes)"
            ) from None

    return read


def whole_body(response: requests.Response) -> bytes:
    """The body of a response requested with ``stream=True``, read in one piece.

    ``response.content`` collects the body in 10 kB pieces and then joins them: a Bulk results page
    of tens of MB is held twice while it arrives, and a REST page of 2,000 records (1.6 MB) costs
    160 reads through requests' and urllib3's Python layers, holding the GIL the slices share.
    Reading the raw stream at once gets one buffer of the announced Content-Length (a chunked
    body is still joined from its chunks); gzip is decoded as requests would. A connection lost
    mid-body is a transient failure: fetched again.
    """
    import urllib3

    try:
        return response.raw.read(decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Retryable(
            f"{type(exc).__name__} while reading a response from {host_of(response.url)}"
        ) from exc


class RestQueryMixin:
    """The REST calls of :class:`~salesforce_pipeline.hooks.salesforce.SalesforcePipelineHook`."""

    def describe_object(self: _Hook, obj: str) -> dict:
        """Return ``/sobjects/{obj}/describe`` (cached per hook).

        :raises ValueError: when ``obj`` is not an sObject API name.
        """
        if not _SOBJECT_NAME.match(obj):
            raise ValueError(f"not an sObject API name: {obj!r}")
        if obj not in self._describe_cache:
            url = f"{self.get_conn().base_url}sobjects/{obj}/describe/"
            self._describe_cache[obj] = self.http.call("GET", url, read_json, what=f"describe {obj}")
        return self._describe_cache[obj]

    def count(self: _Hook, soql: str, *, include_deleted: bool = False) -> int:
        """Return the ``totalSize`` of a query, normally ``SELECT COUNT() FROM ...``.

        :param include_deleted: use queryAll, which also counts deleted and archived rows.
        """
        resource = "queryAll/" if include_deleted else "query/"
        url = f"{self.get_conn().base_url}{resource}"
        payload = self.http.call("GET", url, read_json, what="count query", params={"q": soql})
        return int(payload["totalSize"])

    def query_pages(
        self: _Hook,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
        decoder: PageDecoder[P] | None = None,
    ) -> Iterator[P]:
        """Yield the records of a SOQL query one REST page at a time.

        Follows ``nextRecordsUrl`` to the end; each page call refreshes an expired session and
        retries transient failures on its own, so a long extraction survives both.

        :param include_deleted: use queryAll (deleted and archived rows included).
        :param batch_size: ``Sforce-Query-Options: batchSize`` hint; Salesforce honours 200..2000
            and may return other page sizes.
        :param decoder: turns a page's body (bytes) into ``(page, done, nextRecordsUrl)``, raising
            ValueError for a body that is not a query result (it is fetched again). By default a
            page is the list of record dicts, as simple-salesforce returns them.
        """
        for page, _next_url in self.query_pages_resumable(
            soql, include_deleted=include_deleted, batch_size=batch_size, decoder=decoder
        ):
            yield page

    def query_pages_resumable(
        self: _Hook,
        soql: str,
        *,
        include_deleted: bool = False,
        batch_size: int = 2000,
        decoder: PageDecoder[P] | None = None,
        resume_url: str | None = None,
    ) -> Iterator[tuple[P, str | None]]:
        """Like :meth:`query_pages`, yielding ``(page, nextRecordsUrl)``: the cursor path that
        reads the rest (None after the last page), which a caller may store and pass back as
        ``resume_url`` to continue from there (while Salesforce keeps the cursor: 15 idle minutes,
        and at most 10 per user; past that it answers ``INVALID_QUERY_LOCATOR``)."""
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        decode: PageDecoder[Any] = decoder or records_page
        read = _page_reader(decode)
        client = self.get_conn()
        resource = "queryAll/" if include_deleted else "query/"
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        if resume_url:
            if not _CURSOR_PATH.match(resume_url):
                # Stored by an earlier attempt; as good as an expired cursor: the query starts over.
                raise SalesforceCursorGone(
                    f"the stored query cursor {resume_url[:80]!r} is not a Salesforce query cursor path"
                )
            url = f"https://{client.sf_instance}{resume_url}"
            page, done, next_url = self.http.call(
                "GET", url, read, what="query page (resumed)", headers=headers, stream=True
            )
        else:
            url = f"{client.base_url}{resource}"
            page, done, next_url = self.http.call(
                "GET", url, read, what="query", headers=headers, params={"q": soql}, stream=True
            )
        pages = records = 0
        while True:
            pages += 1
            records += len(page)
            self.log.debug("Query page %d: %d records", pages, len(page))
            finished = done or not next_url
            yield page, None if finished else next_url
            if finished:
                break
            # The instance may have changed with a fresh login mid-query; the cursor has not.
            url = f"https://{self.get_conn().sf_instance}{next_url}"
            page, done, next_url = self.http.call(
                "GET", url, read, what=f"query page {pages + 1}", headers=headers, stream=True
            )
        self.log.info("Query returned %d records in %d pages", records, pages)

    def daily_api_limit(self: _Hook) -> tuple[int, int]:
        """Return ``(remaining, max)`` daily API requests from ``/limits/``."""
        url = f"{self.get_conn().base_url}limits/"
        payload = self.http.call("GET", url, read_json, what="limits")
        daily = payload["DailyApiRequests"]
        remaining, maximum = int(daily["Remaining"]), int(daily["Max"])
        if self.http.api_usage is None:
            self.http.api_usage = (maximum - remaining, maximum)
        return remaining, maximum
