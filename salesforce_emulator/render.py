"""Serialisation of query results: REST JSON record fragments and Bulk 2.0 CSV lines.

Both renderers are generated as Python source once per result shape (object, columns, API
version) and compiled, so rendering a record is one function call that joins pre-computed
constant pieces with the row's values: no per-record dict building, no generic json.dumps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from salesforce_emulator.schema import ADDRESS_PARTS, NUMBER_TYPES, STRING_TYPES, SObjectDef
from salesforce_emulator.soql import Column, CompiledQuery

__all__ = ["FragmentCache", "csv_header", "csv_renderer", "json_renderer", "json_renderer_bytes"]

# The C implementation of JSON string encoding (quotes included), without ASCII escaping:
# Salesforce sends UTF-8 text as is.
_encode = json.encoder.encode_basestring


def _s(v: Any) -> str:
    return "null" if v is None else _encode(v)


def _q(v: Any) -> str:
    # Ids, dates and datetimes never contain characters that need escaping.
    return "null" if v is None else '"' + v + '"'


def _b(v: Any) -> str:
    return "null" if v is None else ("true" if v else "false")


def _i(v: Any) -> str:
    return "null" if v is None else str(int(v))


def _f(v: Any) -> str:
    return "null" if v is None else repr(float(v))


def _addr(r: Any, idx: tuple[int | None, ...]) -> str:
    if r is None:
        return "null"
    values = [None if i is None else r[i] for i in idx]
    if all(v is None for v in values):
        return "null"
    parts = [f'"{key}":{_s(v)}' for (key, _), v in zip(ADDRESS_PARTS, values, strict=True)]
    return "{" + ",".join(parts) + "}"


_JSON_FN = {"id": "_q", "reference": "_q", "date": "_q", "datetime": "_q", "boolean": "_b", "int": "_i"}


def _json_fn(ftype: str) -> str:
    if ftype in STRING_TYPES:
        return "_s"
    if ftype in NUMBER_TYPES and ftype != "int":
        return "_f"
    return _JSON_FN[ftype]


class _Node:
    """One object level of the nested JSON record: own fields plus parent relationships."""

    def __init__(self, sobject: str, slot: int):
        self.sobject = sobject
        self.slot = slot
        self.items: list[tuple[str, Any]] = []  # ("field", Column) | ("rel", (name, _Node))
        self.children: dict[str, _Node] = {}


def _tree(cq: CompiledQuery) -> _Node:
    root = _Node(cq.sobject.name, 0)
    slot_of = {rs.path: rs for rs in cq.rel_slots}
    for col in cq.columns:
        node = root
        for depth in range(len(col.rel_path)):
            name = col.rel_path[depth]
            child = node.children.get(name)
            if child is None:
                rs = slot_of[col.rel_path[: depth + 1]]
                child = _Node(rs.target, rs.slot)
                node.children[name] = child
                node.items.append(("rel", (name, child)))
            node = child
        node.items.append(("field", col))
    return root


def _json_node_expr(
    node: _Node, version: str, var: str, pieces: list[str], schema: Mapping[str, SObjectDef]
) -> None:
    """Append to *pieces* Python expressions whose concatenation is the node's JSON object."""
    sobject = schema[node.sobject]
    pieces.append(
        repr(
            f'{{"attributes":{{"type":"{sobject.name}","url":"/services/data/v{version}/sobjects/{sobject.name}/'
        )
    )
    pieces.append(f"{var}[0]")
    pieces.append(repr('"}'))
    for kind, item in node.items:
        if kind == "field":
            col: Column = item
            f = col.field
            if f.type == "address":
                idx = tuple(
                    sobject.index.get(f.prefix + suffix) if suffix else None for _, suffix in ADDRESS_PARTS
                )
                pieces.append(repr(f',"{f.name}":'))
                pieces.append(f"_addr({var}, {idx!r})")
            else:
                pieces.append(repr(f',"{f.name}":'))
                pieces.append(f"{_json_fn(f.type)}({var}[{sobject.index[f.name]}])")
        else:
            name, child = item
            child_var = f"r{child.slot}"
            sub: list[str] = []
            _json_node_expr(child, version, child_var, sub, schema)
            sub.append(repr("}"))
            pieces.append(repr(f',"{name}":'))
            pieces.append(f"('null' if {child_var} is None else ''.join(({', '.join(sub)},)))")


def _compile(source: str, name: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {"_s": _s, "_q": _q, "_b": _b, "_i": _i, "_f": _f, "_addr": _addr}
    exec(compile(source, f"<salesforce_emulator {name}>", "exec"), namespace)
    return namespace[name]


def _unpack(cq: CompiledQuery) -> str:
    if not cq.joined:
        return "    r0 = e\n"
    names = ", ".join(f"r{i}" for i in range(len(cq.rel_slots) + 1))
    return f"    {names}, = e\n"


@lru_cache(maxsize=256)
def _json_renderer_cached(key: tuple[Any, ...], version: str, cq_holder: _Holder) -> Callable[[Any], str]:
    cq = cq_holder.cq
    pieces: list[str] = []
    _json_node_expr(_tree(cq), version, "r0", pieces, cq.schema)
    pieces.append(repr("}"))
    source = "def render(e):\n" + _unpack(cq) + f"    return ''.join(({', '.join(pieces)},))\n"
    return _compile(source, "render")


class _Holder:
    """Carries the compiled query into the lru_cache without making it part of the key."""

    __slots__ = ("cq",)

    def __init__(self, cq: CompiledQuery):
        self.cq = cq

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Holder)


def json_renderer(cq: CompiledQuery, version: str) -> Callable[[Any], str]:
    """Return ``render(entry) -> str``: one record's JSON object, exactly as the REST API sends it."""
    return _json_renderer_cached(
        (cq.signature, cq.joined, tuple(rs.path for rs in cq.rel_slots)), version, _Holder(cq)
    )


# ---------------------------------------------------------------------------------------------
# CSV


def _csv_s(v: Any) -> str:
    if v is None:
        return '""'
    if '"' in v:
        v = v.replace('"', '""')
    return '"' + v + '"'


def _csv_q(v: Any) -> str:
    return '""' if v is None else '"' + v + '"'


def _csv_dt(v: Any) -> str:
    # Bulk 2.0 renders datetimes with a "Z" suffix instead of the REST API's "+0000".
    return '""' if v is None else '"' + v[:-5] + 'Z"'


def _csv_b(v: Any) -> str:
    return '""' if v is None else ('"true"' if v else '"false"')


def _csv_num(v: Any) -> str:
    if v is None:
        return '""'
    if isinstance(v, float) and v.is_integer():
        return '"' + str(int(v)) + '"'
    return '"' + repr(v) + '"'


_CSV_FN = {
    "id": "_csv_q",
    "reference": "_csv_q",
    "date": "_csv_q",
    "datetime": "_csv_dt",
    "boolean": "_csv_b",
}


def csv_header(cq: CompiledQuery, delimiter: str, line_ending: str) -> str:
    """The header line of a Bulk 2.0 result page (every value quoted, as Salesforce does)."""
    return delimiter.join(f'"{c.header}"' for c in cq.columns) + line_ending


@lru_cache(maxsize=256)
def _csv_renderer_cached(
    key: tuple[Any, ...], delimiter: str, line_ending: str, holder: _Holder
) -> Callable[[Any], str]:
    cq = holder.cq
    slot_of = {rs.path: rs.slot for rs in cq.rel_slots}
    pieces = []
    for col in cq.columns:
        f = col.field
        if f.type == "address":
            raise ValueError("compound fields cannot be rendered as Bulk CSV")
        sobject = cq.schema[col.sobject]
        slot = slot_of[col.rel_path] if col.rel_path else 0
        fn = _CSV_FN.get(f.type) or ("_csv_num" if f.type in NUMBER_TYPES else "_csv_s")
        if slot == 0:
            pieces.append(f"{fn}(r0[{sobject.index[f.name]}])")
        else:
            pieces.append(f"(_csv_q(None) if r{slot} is None else {fn}(r{slot}[{sobject.index[f.name]}]))")
    source = (
        "def render(e):\n"
        + _unpack(cq)
        + f"    return {delimiter!r}.join(({', '.join(pieces)},)) + {line_ending!r}\n"
    )
    namespace: dict[str, Any] = {
        "_csv_s": _csv_s,
        "_csv_q": _csv_q,
        "_csv_dt": _csv_dt,
        "_csv_b": _csv_b,
        "_csv_num": _csv_num,
    }
    exec(compile(source, "<salesforce_emulator csv>", "exec"), namespace)
    return namespace["render"]


def csv_renderer(cq: CompiledQuery, delimiter: str = ",", line_ending: str = "\n") -> Callable[[Any], str]:
    """Return ``render(entry) -> str``: one CSV line (line ending included) of a Bulk 2.0 result."""
    key = (cq.signature, cq.joined, tuple(rs.path for rs in cq.rel_slots))
    return _csv_renderer_cached(key, delimiter, line_ending, _Holder(cq))


# ---------------------------------------------------------------------------------------------
# Pre-serialised fragments


class FragmentCache:
    """Per result shape, the encoded JSON fragment of every record already served.

    Keys are the identities of the stored row tuples (kept alive by the cache itself, so an
    identity cannot be reused while cached). Rows are immutable and replaced on every
    mutation, so a changed record simply misses the cache. Repeated full extractions (the
    pipeline's benchmarks) then cost a join and a socket write per page.
    """

    def __init__(self, max_shapes: int = 4, max_entries: int = 3_000_000, enabled: bool = True):
        self.enabled = enabled
        self.max_shapes = max_shapes
        self.max_entries = max_entries
        self._shapes: dict[tuple[Any, ...], dict[Any, tuple[Any, bytes]]] = {}

    def clear(self) -> None:
        """Drop every cached fragment."""
        self._shapes.clear()

    def wrap(
        self, key: tuple[Any, ...], render: Callable[[Any], str], joined: bool
    ) -> Callable[[Any], bytes]:
        """Return ``render_bytes(entry)``, caching fragments of shape *key*."""
        if not self.enabled:
            return lambda e: render(e).encode()
        cache = self._shapes.get(key)
        if cache is None:
            if len(self._shapes) >= self.max_shapes:
                self._shapes.pop(next(iter(self._shapes)))
            cache = self._shapes[key] = {}
        elif len(cache) > self.max_entries:
            cache.clear()  # stale rows of updated records pile up; start over
        get = cache.get

        if joined:

            def cached_joined(e: Any) -> bytes:
                k = tuple(map(id, e))
                hit = get(k)
                if hit is not None:
                    return hit[1]
                frag = render(e).encode()
                cache[k] = (e, frag)
                return frag

            return cached_joined

        def cached(e: Any) -> bytes:
            hit = get(id(e))
            if hit is not None:
                return hit[1]
            frag = render(e).encode()
            cache[id(e)] = (e, frag)
            return frag

        return cached


def json_renderer_bytes(cq: CompiledQuery, version: str, cache: FragmentCache) -> Callable[[Any], bytes]:
    """Like :func:`json_renderer`, but returns encoded fragments from *cache*.

    Queries reading calculated fields are not cached: their rows are made afresh by every
    query (values computed when read), so a fragment could never be found again."""
    render = json_renderer(cq, version)
    if cq.calculated:
        return lambda e: render(e).encode()
    key = (version, cq.signature, cq.joined, tuple(rs.path for rs in cq.rel_slots))
    return cache.wrap(key, render, cq.joined)
