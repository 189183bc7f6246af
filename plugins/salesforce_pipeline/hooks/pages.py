"""Reading the bodies of Salesforce's answers: JSON, REST query pages and Bulk 2.0 CSV pages.

A body that is cut short or garbled is a transient failure (:class:`_Retryable`): the hook
fetches it again. Pure functions of the response, shared by the REST and Bulk 2.0 paths.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import requests

from salesforce_pipeline.domain import host_of

P = TypeVar("P", covariant=True)


class _Retryable(Exception):
    """A failure that may pass on its own; ``reason`` is a secret-free description."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PageDecoder(Protocol[P]):
    """Turns a REST query page's body into ``(page, done, nextRecordsUrl)``; ValueError if invalid."""

    def __call__(self, content: bytes, /) -> tuple[P, bool, str | None]: ...


def _read_json(response: requests.Response) -> Any:
    """The JSON body of a successful response; a body cut short is worth fetching again."""
    try:
        return response.json()
    except ValueError:
        raise _Retryable(
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
        try:
            return decode(response.content)
        except ValueError:
            raise _Retryable(
                f"invalid or truncated JSON from {host_of(response.url or '')} ({len(response.content)} bytes)"
            ) from None

    return read


def csv_page_lines(content: bytes) -> Iterator[str]:
    """The lines of a Bulk 2.0 results page, decoded as they are read.

    Never one string for the whole page: a page holding a single emoji would be stored at four
    bytes per character, several times its size on the wire. NUL characters are dropped, as
    simple-salesforce does, because the csv module rejects them.
    """
    return iter(csv_page_text(content))


def csv_page_text(content: bytes) -> io.TextIOWrapper:
    """A Bulk 2.0 results page as a text stream for ``csv.reader``: decoded as it is read, with
    NUL characters dropped (no UTF-8 sequence holds a zero byte, so dropping them as bytes is
    dropping them as characters)."""
    if b"\x00" in content:
        content = content.replace(b"\x00", b"")
    return io.TextIOWrapper(io.BytesIO(content), encoding="utf-8", newline="")


_UTF8_CHECK_BLOCK = 1 << 20


def csv_record_count(content: bytes) -> int:
    """The records (rows after the header) in a Bulk 2.0 CSV page, without parsing its fields.

    A line ends a record when the quotes seen so far are balanced: inside a quoted field a
    newline is data, and an escaped quote is two quotes. Blank lines are not records (the
    pipeline's parser skips them). Raises ValueError when the page ends inside a quoted field, and
    UnicodeDecodeError when it is not UTF-8 (both what a page cut short looks like).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(content)
    for start in range(0, len(view), _UTF8_CHECK_BLOCK):
        decoder.decode(view[start : start + _UTF8_CHECK_BLOCK])
    decoder.decode(b"", final=True)
    quotes = rows = 0
    for line in io.BytesIO(content):
        quotes += line.count(b'"')
        if not quotes & 1 and line.strip(b"\r\n"):
            rows += 1
    if quotes & 1:
        raise ValueError("the page ends inside a quoted CSV field")
    return max(rows - 1, 0)


def _whole_body(response: requests.Response) -> bytes:
    """The body of a response requested with ``stream=True``, read in one piece.

    ``response.content`` collects the body in 10 kB pieces and then joins them, so a results page
    of tens of MB is held twice while it arrives. Reading the raw stream at once gets one buffer
    of the announced Content-Length (a chunked body is still joined from its chunks); gzip is
    decoded as requests would. A connection lost mid-body is a transient failure: fetched again.
    """
    import urllib3

    try:
        return response.raw.read(decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _Retryable(
            f"{type(exc).__name__} while reading a response from {host_of(response.url)}"
        ) from exc


def _read_csv_page(response: requests.Response) -> tuple[bytes, str | None]:
    """``(csv_bytes, next_locator)`` of a Bulk 2.0 results page, checked against its record count.

    Decoded as UTF-8 ourselves: requests would guess ISO-8859-1 for ``text/csv`` without a charset.
    """
    content = _whole_body(response)
    expected = response.headers.get("Sforce-NumberOfRecords")
    try:
        records = csv_record_count(content)
    except UnicodeDecodeError:
        raise _Retryable("Bulk 2.0 results page is not valid UTF-8 (cut short?)") from None
    except ValueError:
        raise _Retryable("Bulk 2.0 results page ends inside a CSV record (cut short)") from None
    if expected is not None and expected.strip().isdigit() and records != int(expected):
        raise _Retryable(
            f"Bulk 2.0 results page holds {records} records but Sforce-NumberOfRecords says {expected}"
        )
    return content, response.headers.get("Sforce-Locator")
