"""REST query pages (JSON) decoded straight into the columns of the selected fields."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from salesforce_pipeline.column_chunk import ColumnChunk


class RestColumnDecoder:
    """Decodes a REST query page straight into the columns of the selected fields.

    msgspec decodes each record into a struct with one slot per selected top-level name, skipping
    `attributes` and never building a dict per record; one C-level map per field makes the
    columns. That is several times the speed of json.loads + a dict per record + flattening.
    A body msgspec rejects is decoded by `json.loads` instead, with the same result.

    Values are taken as sent: transform checks each against its field's kind, so an object where
    a scalar belongs is rejected with why. A relationship field (`Account.Name`) is read from its
    parent object, and is null when the parent is null (or not an object).
    """

    def __init__(self, fields: Sequence[str]) -> None:
        import msgspec

        self.fields = list(fields)
        self._tops = list(dict.fromkeys(name.split(".", 1)[0] for name in self.fields))
        self._related = {name: tuple(name.split(".", 1)) for name in self.fields if "." in name}
        # Slots get safe attribute names; `rename` maps them to the JSON keys (API names).
        slots = [f"f{position}" for position in range(len(self._tops))]
        record = msgspec.defstruct(
            "QueryRecord",
            [(slot, Any, None) for slot in slots],
            rename=dict(zip(slots, self._tops, strict=True)),
            gc=False,
        )
        page = msgspec.defstruct(
            "QueryPage",
            [
                ("records", list[record], msgspec.field(default_factory=list)),  # type: ignore[valid-type]
                ("done", bool, True),
                ("nextRecordsUrl", str | None, None),
            ],
        )
        self._decoder = msgspec.json.Decoder(page)
        self._decode_error = msgspec.DecodeError  # ValidationError is one too
        self._slot_values = [operator.attrgetter(slot) for slot in slots]

    def __call__(self, content: bytes) -> tuple[ColumnChunk, bool, str | None]:
        """A page's body as ``(columns, done, nextRecordsUrl)``; ValueError when it is broken."""
        try:
            page: Any = self._decoder.decode(content)  # a QueryPage, a struct made at run time
        except self._decode_error:
            return self._plain(content)
        # One C-level map per field: no tuple or dict per record.
        by_top = {
            top: list(map(values_of, page.records))
            for top, values_of in zip(self._tops, self._slot_values, strict=True)
        }
        return self._columns(len(page.records), by_top), page.done, page.nextRecordsUrl

    def _plain(self, content: bytes) -> tuple[ColumnChunk, bool, str | None]:
        from salesforce_pipeline.hooks.rest import records_page

        records, done, next_url = records_page(content)  # ValueError for a broken body: refetched
        if not isinstance(records, list) or not all(type(record) is dict for record in records):
            raise ValueError("a query result's records are JSON objects")
        by_top = {top: [record.get(top) for record in records] for top in self._tops}
        return self._columns(len(records), by_top), done, next_url

    def _columns(self, count: int, by_top: dict[str, list[Any]]) -> ColumnChunk:
        columns: dict[str, Sequence[Any]] = {}
        for name in self.fields:
            if name in self._related:
                top, child = self._related[name]
                columns[name] = [
                    parent.get(child) if type(parent) is dict else None for parent in by_top[top]
                ]
            else:
                columns[name] = by_top[name]
        return ColumnChunk(count, columns)
