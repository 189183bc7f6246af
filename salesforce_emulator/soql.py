"""A SOQL subset: tokenizer, parser and a compiler to Python closures over stored rows.

Supported: ``SELECT`` field lists (with parent relationship paths such as ``Account.Name``,
``FIELDS(ALL|STANDARD|CUSTOM)``) or ``COUNT()``; ``FROM`` with an optional alias; ``WHERE``
with ``AND``/``OR``/``NOT``/parentheses, ``= != <> < <= > >= IN NOT IN LIKE``, ``NULL``,
``TRUE``/``FALSE``, quoted strings with backslash escapes, unquoted numbers, dates, datetimes
and the date literals ``TODAY``, ``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n``,
``NEXT_N_DAYS:n``; ``ORDER BY`` (``ASC``/``DESC``, ``NULLS FIRST``/``LAST``, several keys);
``LIMIT``; ``OFFSET``.

Semantics follow Salesforce, not SQL: string comparisons are case-insensitive, ``NULL`` is a
value (``Email != 'x'`` matches a null Email), mixing ``AND`` and ``OR`` without parentheses is a
syntax error, long text areas and compound fields cannot be filtered or sorted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from salesforce_emulator.ids import to_18
from salesforce_emulator.schema import NUMBER_TYPES, SCHEMA, FieldDef, SObjectDef
from salesforce_emulator.wire import format_date, format_datetime, parse_datetime

__all__ = ["Column", "CompiledQuery", "RelSlot", "SoqlError", "compile_query", "parse"]

Entry = Any  # a stored row tuple, or (row, parent rows...) when the query uses relationships
Getter = Callable[[Entry], Any]
Predicate = Callable[[Entry], bool]


class SoqlError(Exception):
    """A query error as Salesforce reports it: an errorCode and a message.

    ``message`` is the full message Salesforce would send, including the echo of the query line
    with a caret under the offending position when the error has one.
    """

    def __init__(self, code: str, detail: str, pos: int | None = None, query: str | None = None):
        self.code = code
        self.detail = detail
        self.pos = pos
        self.query = query
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The message text of the Salesforce error body."""
        if self.pos is None or self.query is None:
            return self.detail
        before = self.query[: self.pos]
        row = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        col = self.pos - line_start + 1
        line_end = self.query.find("\n", self.pos)
        line = self.query[line_start : line_end if line_end != -1 else len(self.query)]
        return f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{self.detail}"


# ---------------------------------------------------------------------------------------------
# Tokenizer

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE | re.DOTALL,
)

_KEYWORDS = frozenset(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
        "TRUE",
        "FALSE",
        "NULL",
        "GROUP",
        "HAVING",
        "WITH",
        "FOR",
        "USING",
        "TYPEOF",
        "INCLUDES",
        "EXCLUDES",
    ]
)

_ESCAPES = {
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token; ``pos`` is its character offset in the query."""

    kind: str  # string, datetime, date, number, ident, op, punct, eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        """Upper-cased text, for keyword comparison."""
        return self.text.upper()


def tokenize(query: str) -> list[Token]:
    """Split *query* into tokens; raises SoqlError(MALFORMED_QUERY) on an unknown character."""
    tokens: list[Token] = []
    pos = 0
    n = len(query)
    while pos < n:
        m = _TOKEN_RE.match(query, pos)
        if m is None:
            if query[pos] == "'":
                raise SoqlError("MALFORMED_QUERY", "unterminated string literal", pos, query)
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{query[pos]}'", pos, query)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "<EOF>", n))
    return tokens


def _decode_string(tok: Token, query: str) -> str:
    body = tok.text[1:-1]
    if "\\" not in body:
        return body
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in "%_":
                # Only meaningful in LIKE patterns; elsewhere Salesforce keeps the backslash.
                out.append("\\" + nxt)
            else:
                raise SoqlError(
                    "MALFORMED_QUERY",
                    "Invalid string literal '"
                    + body
                    + "'. Illegal character sequence '\\"
                    + nxt
                    + "' in string literal.",
                    tok.pos,
                    query,
                )
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# AST


@dataclass(slots=True)
class Literal:
    """A literal value in a condition."""

    kind: str  # string, number, date, datetime, bool, null, dateliteral
    value: Any
    pos: int
    raw: str = ""


@dataclass(slots=True)
class Path:
    """A (possibly dotted) field reference as written."""

    parts: list[str]
    pos: int

    @property
    def text(self) -> str:
        """The path as written, dots included."""
        return ".".join(self.parts)


@dataclass(slots=True)
class Compare:
    """``path op literal``."""

    path: Path
    op: str
    value: Literal


@dataclass(slots=True)
class InList:
    """``path [NOT] IN (literals)``."""

    path: Path
    negate: bool
    values: list[Literal]


@dataclass(slots=True)
class Like:
    """``path LIKE 'pattern'``."""

    path: Path
    pattern: Literal


@dataclass(slots=True)
class BoolOp:
    """``AND``/``OR`` over two or more conditions."""

    op: str
    items: list[Any]


@dataclass(slots=True)
class Not:
    """``NOT condition``."""

    item: Any


@dataclass(slots=True)
class OrderItem:
    """One ``ORDER BY`` key."""

    path: Path
    descending: bool
    nulls_last: bool


@dataclass(slots=True)
class ParsedQuery:
    """The syntax tree of a query."""

    text: str
    count_only: bool
    select: list[Path]
    fields_fn: list[tuple[str, int]]  # FIELDS(ALL|STANDARD|CUSTOM) occurrences
    sobject: str
    sobject_pos: int
    alias: str | None
    where: Any
    order: list[OrderItem]
    limit: int | None
    offset: int | None


class _Parser:
    def __init__(self, query: str):
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        text = tok.text if tok.kind != "eof" else "<EOF>"
        detail = f"unexpected token: {text}" if tok.kind == "eof" else f"unexpected token: '{text}'"
        return SoqlError("MALFORMED_QUERY", detail, tok.pos, self.query)

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.upper in words

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.error()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if self.tok.kind != "punct" or self.tok.text != ch:
            raise self.error()
        return self.advance()

    def unsupported(self, what: str) -> SoqlError:
        return SoqlError(
            "MALFORMED_QUERY", f"{what} is not supported by the Salesforce emulator", self.tok.pos, self.query
        )

    # -- grammar
    def parse(self) -> ParsedQuery:
        self.expect_kw("SELECT")
        count_only = False
        select: list[Path] = []
        fields_fn: list[tuple[str, int]] = []
        if self.is_kw("COUNT") and self.tokens[self.i + 1].text == "(":
            start = self.advance()
            self.expect_punct("(")
            if self.tok.text != ")":
                raise self.unsupported("COUNT(field) and other aggregate functions")
            self.expect_punct(")")
            count_only = True
            del start
        else:
            while True:
                tok = self.tok
                if tok.kind == "punct" and tok.text == "(":
                    raise self.unsupported("A parent-to-child subquery")
                if tok.kind != "ident" or (tok.upper in _KEYWORDS and tok.upper != "FIELDS"):
                    raise self.error()
                if tok.upper == "TYPEOF":
                    raise self.unsupported("TYPEOF")
                self.advance()
                if self.tok.kind == "punct" and self.tok.text == "(":
                    if tok.upper != "FIELDS":
                        raise self.unsupported(f"The function {tok.text}()")
                    self.advance()
                    arg = self.advance()
                    if arg.kind != "ident" or arg.upper not in ("ALL", "STANDARD", "CUSTOM"):
                        raise self.error(arg)
                    self.expect_punct(")")
                    fields_fn.append((arg.upper, tok.pos))
                else:
                    select.append(Path(tok.text.split("."), tok.pos))
                if self.tok.kind == "punct" and self.tok.text == ",":
                    self.advance()
                    continue
                break
        self.expect_kw("FROM")
        obj = self.advance()
        if obj.kind != "ident" or obj.upper in _KEYWORDS or "." in obj.text:
            raise self.error(obj)
        alias = None
        if self.tok.kind == "ident" and self.tok.upper not in _KEYWORDS:
            alias = self.advance().text
        where = None
        if self.is_kw("WHERE"):
            self.advance()
            where = self.condition()
        for word in ("WITH", "GROUP", "HAVING", "USING"):
            if self.is_kw(word):
                raise self.unsupported(f"The {word} clause")
        order: list[OrderItem] = []
        if self.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            while True:
                tok = self.advance()
                if tok.kind != "ident" or tok.upper in _KEYWORDS:
                    raise self.error(tok)
                descending = False
                if self.is_kw("ASC", "DESC"):
                    descending = self.advance().upper == "DESC"
                nulls_last = descending
                if self.is_kw("NULLS"):
                    self.advance()
                    if not self.is_kw("FIRST", "LAST"):
                        raise self.error()
                    nulls_last = self.advance().upper == "LAST"
                order.append(OrderItem(Path(tok.text.split("."), tok.pos), descending, nulls_last))
                if self.tok.kind == "punct" and self.tok.text == ",":
                    self.advance()
                    continue
                break
        limit = offset = None
        if self.is_kw("LIMIT"):
            self.advance()
            limit = self.integer()
        if self.is_kw("OFFSET"):
            self.advance()
            offset = self.integer()
            if offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
        if self.is_kw("FOR"):
            raise self.unsupported("FOR VIEW/REFERENCE/UPDATE")
        if self.tok.kind != "eof":
            raise self.error()
        return ParsedQuery(
            self.query, count_only, select, fields_fn, obj.text, obj.pos, alias, where, order, limit, offset
        )

    def integer(self) -> int:
        tok = self.advance()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error(tok)
        return int(tok.text)

    def condition(self) -> Any:
        first = self.unary()
        op = None
        items = [first]
        while self.is_kw("AND", "OR"):
            tok = self.tok
            if op is not None and tok.upper != op:
                # Salesforce requires parentheses when AND and OR are mixed on one level.
                raise self.error(tok)
            op = tok.upper
            self.advance()
            items.append(self.unary())
        return items[0] if op is None else BoolOp(op, items)

    def unary(self) -> Any:
        if self.is_kw("NOT"):
            self.advance()
            return Not(self.unary())
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.simple()

    def simple(self) -> Any:
        tok = self.advance()
        if tok.kind != "ident" or tok.upper in _KEYWORDS:
            raise self.error(tok)
        path = Path(tok.text.split("."), tok.pos)
        if self.is_kw("IN") or (self.is_kw("NOT") and self.tokens[self.i + 1].upper == "IN"):
            negate = self.advance().upper == "NOT"
            if negate:
                self.advance()
            self.expect_punct("(")
            if self.is_kw("SELECT"):
                raise self.unsupported("A semi-join subquery")
            values = [self.literal()]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                values.append(self.literal())
            self.expect_punct(")")
            return InList(path, negate, values)
        if self.is_kw("LIKE"):
            self.advance()
            lit = self.literal()
            if lit.kind != "string":
                raise self.error(self.tokens[self.i - 1])
            return Like(path, lit)
        if self.is_kw("INCLUDES", "EXCLUDES"):
            raise self.unsupported("INCLUDES/EXCLUDES")
        if self.tok.kind != "op":
            raise self.error()
        op = self.advance().text
        if op == "<>":
            op = "!="
        return Compare(path, op, self.literal())

    def literal(self) -> Literal:
        tok = self.advance()
        if tok.kind == "string":
            return Literal("string", _decode_string(tok, self.query), tok.pos, tok.text[1:-1])
        if tok.kind == "number":
            value: Any = float(tok.text) if "." in tok.text else int(tok.text)
            return Literal("number", value, tok.pos, tok.text)
        if tok.kind == "date":
            try:
                dt.date.fromisoformat(tok.text)
            except ValueError:
                raise self.error(tok) from None
            return Literal("date", tok.text, tok.pos, tok.text)
        if tok.kind == "datetime":
            try:
                value = format_datetime(parse_datetime(tok.text))
            except ValueError:
                raise self.error(tok) from None
            return Literal("datetime", value, tok.pos, tok.text)
        if tok.kind == "ident":
            word = tok.upper
            if word in ("TRUE", "FALSE"):
                return Literal("bool", word == "TRUE", tok.pos, tok.text)
            if word == "NULL":
                return Literal("null", None, tok.pos, tok.text)
            if word in ("TODAY", "YESTERDAY", "TOMORROW"):
                return Literal("dateliteral", (word, 0), tok.pos, tok.text)
            if word in ("LAST_N_DAYS", "NEXT_N_DAYS"):
                self.expect_punct(":")
                n = self.integer()
                return Literal("dateliteral", (word, n), tok.pos, f"{tok.text}:{n}")
        raise self.error(tok)


def parse(query: str) -> ParsedQuery:
    """Parse a SOQL string into a :class:`ParsedQuery` (syntax only, no schema checks)."""
    return _Parser(query).parse()


# ---------------------------------------------------------------------------------------------
# Compilation against the schema


@dataclass(frozen=True, slots=True)
class RelSlot:
    """A parent relationship the query traverses; its row sits at ``entry[slot]``."""

    path: tuple[str, ...]  # canonical relationship names from the root, e.g. ("Account",)
    slot: int
    parent_slot: int
    fk_index: int  # index of the foreign key field in the parent slot's row
    target: str  # sObject name of the related record


@dataclass(frozen=True, slots=True)
class Column:
    """A selected field: where its value lives and its metadata."""

    rel_path: tuple[str, ...]  # () for the queried object's own fields
    slot: int
    field: FieldDef
    sobject: str  # the object the field belongs to

    @property
    def header(self) -> str:
        """Dotted name as the Bulk CSV header shows it, e.g. ``Account.Name``."""
        return ".".join((*self.rel_path, self.field.name))


@dataclass(slots=True)
class CompiledQuery:
    """A query ready to run: predicate, sort keys and the shape of its result rows."""

    text: str
    sobject: SObjectDef
    count_only: bool
    columns: list[Column]
    rel_slots: list[RelSlot]
    where: Predicate | None
    order: list[tuple[Getter, bool, bool]]  # (key getter, descending, nulls_last)
    limit: int | None
    offset: int | None
    has_compound: bool = False
    uses_fields_fn: bool = False
    uses_ordering: bool = False
    _sig: tuple[Any, ...] = field(default=())
    # The object definitions the query was compiled against (row layouts for the renderers).
    schema: Mapping[str, SObjectDef] = field(default_factory=dict)
    # Calculated fields the query reads, per entry slot (0: the queried object, n: rel_slots).
    calculated: Mapping[int, frozenset[str]] = field(default_factory=dict)
    # Candidates an index on SystemModstamp can give (the full WHERE is still applied to them):
    # (lower, lower_inclusive, upper, upper_inclusive) implied by a top-level conjunction of
    # comparisons of the queried object's SystemModstamp with literals; None bounds are open.
    stamp_range: tuple[str | None, bool, str | None, bool] | None = None
    # True when the WHERE is nothing but those comparisons (the range alone decides a match).
    stamp_exact: bool = False
    # (descending, nulls_last) when the whole ORDER BY is the queried object's SystemModstamp.
    stamp_order: tuple[bool, bool] | None = None

    @property
    def joined(self) -> bool:
        """True when result entries are ``(row, parent rows...)`` tuples instead of bare rows."""
        return bool(self.rel_slots)

    @property
    def signature(self) -> tuple[Any, ...]:
        """Identifies the result shape (object + columns), for renderer caching."""
        return self._sig


class _Compiler:
    def __init__(
        self,
        parsed: ParsedQuery,
        hidden: Mapping[str, frozenset[str]],
        now: dt.datetime,
        schema: Mapping[str, SObjectDef],
    ):
        self.p = parsed
        self.hidden = hidden
        self.now = now
        self.schema = schema
        self.q = parsed.text
        key = parsed.sobject.lower()
        by_lower = {name.lower(): sdef for name, sdef in schema.items()}
        if key not in by_lower:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{parsed.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
                parsed.sobject_pos,
                self.q,
            )
        self.root = by_lower[key]
        self.rel_slots: list[RelSlot] = []
        self.slot_by_path: dict[tuple[str, ...], RelSlot] = {}
        self.calculated: dict[int, set[str]] = {}

    def note_calculated(self, slot: int, f: FieldDef) -> None:
        if f.calculated:
            self.calculated.setdefault(slot, set()).add(f.name)

    def visible(self, sobject: SObjectDef, name: str) -> FieldDef | None:
        f = sobject.by_lower.get(name.lower())
        if f is None or f.name in self.hidden.get(sobject.name, frozenset()):
            return None
        return f

    def no_such_column(self, name: str, sobject: SObjectDef, pos: int) -> SoqlError:
        return SoqlError(
            "INVALID_FIELD",
            f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a custom "
            "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
            "or the describe call for the appropriate names.",
            pos,
            self.q,
        )

    def resolve(self, path: Path) -> Column:
        parts = list(path.parts)
        # A leading object name or alias is allowed: "SELECT Account.Name FROM Account a".
        if len(parts) > 1:
            first = parts[0].lower()
            is_alias = self.p.alias is not None and first == self.p.alias.lower()
            if is_alias or (first == self.root.name.lower() and first not in self.root.relationships):
                parts = parts[1:]
        sobject = self.root
        slot = 0
        rel_path: tuple[str, ...] = ()
        for rel_name in parts[:-1]:
            ref = sobject.relationships.get(rel_name.lower())
            if ref is None or self.visible(sobject, ref.name) is None:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{rel_name}' in field path. If you are attempting to "
                    "use a custom relationship, be sure to append the '__r' after the custom relationship "
                    "name. Please reference your WSDL or the describe call for the appropriate names.",
                    path.pos,
                    self.q,
                )
            assert ref.relationship_name is not None
            rel_path = (*rel_path, ref.relationship_name)
            existing = self.slot_by_path.get(rel_path)
            if existing is None:
                target = self.schema[ref.reference_to[0]]
                existing = RelSlot(
                    rel_path, len(self.rel_slots) + 1, slot, sobject.index[ref.name], target.name
                )
                self.rel_slots.append(existing)
                self.slot_by_path[rel_path] = existing
            slot = existing.slot
            sobject = self.schema[existing.target]
        f = self.visible(sobject, parts[-1])
        if f is None:
            raise self.no_such_column(parts[-1], sobject, path.pos)
        self.note_calculated(slot, f)
        return Column(rel_path, slot, f, sobject.name)

    def getter(self, col: Column) -> Getter:
        sobject = self.schema[col.sobject]
        idx = sobject.index[col.field.name]
        if col.slot == 0:
            # Filled in later once we know whether entries are joined tuples.
            return _LateGetter(idx)
        slot = col.slot

        def get(e: Entry, _s: int = slot, _i: int = idx) -> Any:
            r = e[_s]
            return None if r is None else r[_i]

        return get

    def compile(self) -> CompiledQuery:
        p = self.p
        columns: list[Column] = []
        seen: set[str] = set()
        fields_fn_used = bool(p.fields_fn)
        for kind, pos in p.fields_fn:
            if kind in ("ALL", "CUSTOM") and (p.limit is None or p.limit > 200):
                raise SoqlError(
                    "MALFORMED_QUERY",
                    "The SOQL FIELDS function must have a LIMIT of at most 200",
                    pos,
                    self.q,
                )
            hidden = self.hidden.get(self.root.name, frozenset())
            for f in self.root.fields:
                if f.name in hidden:
                    continue
                if (kind == "STANDARD" and f.custom) or (kind == "CUSTOM" and not f.custom):
                    continue
                if f.name.lower() not in seen:
                    seen.add(f.name.lower())
                    self.note_calculated(0, f)
                    columns.append(Column((), 0, f, self.root.name))
        for path in p.select:
            col = self.resolve(path)
            key = col.header.lower()
            if key in seen:
                raise SoqlError(
                    "MALFORMED_QUERY", f"duplicate field selected: {col.header}", path.pos, self.q
                )
            seen.add(key)
            columns.append(col)
        predicate = self.condition(p.where) if p.where is not None else None
        order: list[tuple[Getter, bool, bool]] = []
        for item in p.order:
            col = self.resolve(item.path)
            if not col.field.sortable:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"field '{col.field.name}' can not be sorted in a query call",
                    item.path.pos,
                    self.q,
                )
            base = self.getter(col)
            order.append((_sort_key(base, col.field), item.descending, item.nulls_last))
        stamp_order = None
        if len(p.order) == 1 and self.is_root_stamp(p.order[0].path):
            stamp_order = (p.order[0].descending, p.order[0].nulls_last)
        stamp_range, stamp_exact = self.stamp_range(p.where) if p.where is not None else (None, False)
        joined = bool(self.rel_slots)
        _bind_late_getters(predicate, order, joined)
        return CompiledQuery(
            text=p.text,
            sobject=self.root,
            count_only=p.count_only,
            columns=columns,
            rel_slots=list(self.rel_slots),
            where=_finalize(predicate, joined),
            order=[(_finalize(k, joined), d, nl) for k, d, nl in order],
            limit=p.limit,
            offset=p.offset,
            has_compound=any(c.field.type == "address" for c in columns),
            uses_fields_fn=fields_fn_used,
            uses_ordering=bool(p.order),
            _sig=(
                self.root.name,
                tuple((c.rel_path, c.field.name) for c in columns),
                # Renderers index rows by position: a schema change makes another shape.
                self.root.layout,
                tuple(self.schema[rs.target].layout for rs in self.rel_slots),
            ),
            schema=self.schema,
            calculated={slot: frozenset(names) for slot, names in self.calculated.items()},
            stamp_range=stamp_range,
            stamp_exact=stamp_exact,
            stamp_order=stamp_order,
        )

    # -- what an index on SystemModstamp can answer
    def is_root_stamp(self, path: Path) -> bool:
        col = self.resolve(path)  # resolved once already: no error, no new slot
        return col.slot == 0 and col.sobject == self.root.name and col.field.name == "SystemModstamp"

    def stamp_range(self, where: Any) -> tuple[tuple[str | None, bool, str | None, bool] | None, bool]:
        """Bounds on SystemModstamp every row matching *where* satisfies (or None), and whether
        *where* says nothing more (rows with a stamp within the bounds all match)."""
        items = []
        exact = True
        todo = [where]
        while todo:  # the top-level conjunction, nested ANDs flattened
            node = todo.pop()
            if isinstance(node, BoolOp) and node.op == "AND":
                todo.extend(node.items)
            elif isinstance(node, Compare):
                items.append(node)
            else:
                exact = False
        lower: tuple[str, bool] | None = None  # (value, inclusive)
        upper: tuple[str, bool] | None = None
        for node in items:
            lit = node.value
            if lit.kind not in ("datetime", "dateliteral") or not self.is_root_stamp(node.path):
                exact = False
                continue
            ops: dict[str, list[tuple[str, str, bool]]]  # op -> (side, value, inclusive)
            if lit.kind == "datetime":
                v = lit.value
                ops = {">=": [("lo", v, True)], ">": [("lo", v, False)], "<": [("hi", v, False)]}
                ops |= {"<=": [("hi", v, True)], "=": [("lo", v, True), ("hi", v, True)]}
            else:  # a date literal is the half-open range [lo, hi), as _Range compares it
                lo, hi = _date_range(lit.value, self.now, "datetime")
                ops = {">=": [("lo", lo, True)], ">": [("lo", hi, True)], "<": [("hi", lo, False)]}
                ops |= {"<=": [("hi", hi, False)], "=": [("lo", lo, True), ("hi", hi, False)]}
            if node.op not in ops:  # !=
                exact = False
            for side, value, inclusive in ops.get(node.op, []):
                if side == "lo":
                    if lower is None or value > lower[0] or (value == lower[0] and not inclusive):
                        lower = (value, inclusive)
                elif upper is None or value < upper[0] or (value == upper[0] and not inclusive):
                    upper = (value, inclusive)
        if lower is None and upper is None:
            return None, False
        bounds = (
            None if lower is None else lower[0],
            True if lower is None else lower[1],
            None if upper is None else upper[0],
            True if upper is None else upper[1],
        )
        return bounds, exact

    # -- conditions
    def condition(self, node: Any) -> Predicate:
        if isinstance(node, BoolOp):
            preds = [self.condition(item) for item in node.items]
            return _And(preds) if node.op == "AND" else _Or(preds)
        if isinstance(node, Not):
            return _NotP(self.condition(node.item))
        if isinstance(node, Compare):
            col = self.filter_column(node.path)
            return self.compare(col, node.op, node.value)
        if isinstance(node, InList):
            col = self.filter_column(node.path)
            values = {self.coerce(col, lit) for lit in node.values}
            norm = _normalizer(col.field)
            return _In(self.getter(col), frozenset(values), node.negate, norm)
        if isinstance(node, Like):
            col = self.filter_column(node.path)
            if not (col.field.is_string or col.field.type in ("id", "reference")):
                raise SoqlError(
                    "INVALID_FIELD",
                    f"invalid operator on {col.field.type} field: {col.field.name}",
                    node.path.pos,
                    self.q,
                )
            return _LikeP(self.getter(col), _like_regex(node.pattern.raw))
        raise AssertionError(node)  # pragma: no cover

    def filter_column(self, path: Path) -> Column:
        col = self.resolve(path)
        if not col.field.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{col.field.name}' can not be filtered in a query call",
                path.pos,
                self.q,
            )
        return col

    def type_error(self, col: Column, lit: Literal, expected: str, quoted: bool) -> SoqlError:
        how = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return SoqlError(
            "INVALID_FIELD",
            f"value of filter criterion for field '{col.field.name}' must be of type {expected} and {how}",
            lit.pos,
            self.q,
        )

    def coerce(self, col: Column, lit: Literal) -> Any:
        """Turn a literal into the stored representation of *col*'s type (or raise)."""
        f = col.field
        kind = f.type
        if lit.kind == "null":
            return None
        if kind in ("id", "reference"):
            if lit.kind != "string":
                raise self.type_error(col, lit, "id", True)
            try:
                return to_18(lit.value)
            except ValueError:
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}", lit.pos, self.q
                ) from None
        if f.is_string:
            if lit.kind != "string":
                raise self.type_error(col, lit, "string", True)
            return lit.value.lower()
        if kind == "boolean":
            if lit.kind != "bool":
                raise self.type_error(col, lit, "boolean", False)
            return lit.value
        if kind in NUMBER_TYPES:
            if lit.kind != "number":
                raise self.type_error(col, lit, "double" if kind != "int" else "integer", False)
            return float(lit.value)
        if kind == "date":
            if lit.kind != "date":
                raise self.type_error(col, lit, "date", False)
            return lit.value
        if kind == "datetime":
            if lit.kind != "datetime":
                raise self.type_error(col, lit, "dateTime", False)
            return lit.value
        raise self.type_error(col, lit, kind, False)  # pragma: no cover

    def compare(self, col: Column, op: str, lit: Literal) -> Predicate:
        getter = self.getter(col)
        f = col.field
        if lit.kind == "dateliteral":
            if f.type not in ("date", "datetime"):
                raise self.type_error(col, lit, f.type, f.is_string)
            lo, hi = _date_range(lit.value, self.now, f.type)
            return _Range(getter, op, lo, hi)
        if lit.kind == "null":
            if op not in ("=", "!="):
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{lit.raw}'", lit.pos, self.q)
            return _IsNull(getter, op == "=")
        if f.type == "boolean" and op not in ("=", "!="):
            raise SoqlError("INVALID_FIELD", f"invalid operator on boolean field: {f.name}", lit.pos, self.q)
        value = self.coerce(col, lit)
        return _Cmp(getter, op, value, _normalizer(f))


# -- predicate building blocks (small classes: cheaper to call than nested closures) ----------


class _LateGetter:
    """Getter of a root-object field; the entry shape (bare row or joined) is bound later."""

    __slots__ = ("fn", "idx")

    def __init__(self, idx: int):
        self.idx = idx
        self.fn: Getter | None = None

    def bind(self, joined: bool) -> None:
        if joined:
            idx = self.idx
            self.fn = lambda e: e[0][idx]
        else:
            self.fn = itemgetter(self.idx)

    def __call__(self, e: Entry) -> Any:
        assert self.fn is not None
        return self.fn(e)


def _walk(node: Any, out: list[_LateGetter]) -> None:
    if isinstance(node, _LateGetter):
        out.append(node)
        return
    for attr in ("preds", "inner", "getter", "base"):
        child = getattr(node, attr, None)
        if child is None:
            continue
        if isinstance(child, list):
            for c in child:
                _walk(c, out)
        else:
            _walk(child, out)


def _bind_late_getters(predicate: Any, order: list[tuple[Getter, bool, bool]], joined: bool) -> None:
    late: list[_LateGetter] = []
    if predicate is not None:
        _walk(predicate, late)
    for key, _, _ in order:
        _walk(key, late)
    for g in late:
        g.bind(joined)


def _finalize(fn: Any, joined: bool) -> Any:
    """Replace a top-level late getter by its bound function (saves one call per row)."""
    if isinstance(fn, _LateGetter):
        return fn.fn
    return fn


def _normalizer(f: FieldDef) -> Callable[[Any], Any] | None:
    if f.is_string:
        return str.lower
    if f.type in NUMBER_TYPES:
        return float
    return None


class _Cmp:
    __slots__ = ("getter", "norm", "op", "value")

    def __init__(self, getter: Getter, op: str, value: Any, norm: Callable[[Any], Any] | None):
        self.getter = getter
        self.op = op
        self.value = value
        self.norm = norm

    def __call__(self, e: Entry) -> bool:
        v = self.getter(e)
        op = self.op
        if v is None:
            return op == "!="
        if self.norm is not None:
            v = self.norm(v)
        if op == "=":
            return v == self.value
        if op == "!=":
            return v != self.value
        if op == "<":
            return v < self.value
        if op == "<=":
            return v <= self.value
        if op == ">":
            return v > self.value
        return v >= self.value


class _IsNull:
    __slots__ = ("getter", "want_null")

    def __init__(self, getter: Getter, want_null: bool):
        self.getter = getter
        self.want_null = want_null

    def __call__(self, e: Entry) -> bool:
        return (self.getter(e) is None) == self.want_null


class _In:
    __slots__ = ("getter", "negate", "norm", "values")

    def __init__(
        self, getter: Getter, values: frozenset[Any], negate: bool, norm: Callable[[Any], Any] | None
    ):
        self.getter = getter
        self.values = values
        self.negate = negate
        self.norm = norm

    def __call__(self, e: Entry) -> bool:
        v = self.getter(e)
        if v is not None and self.norm is not None:
            v = self.norm(v)
        return (v in self.values) != self.negate


class _LikeP:
    __slots__ = ("getter", "rx")

    def __init__(self, getter: Getter, rx: re.Pattern[str]):
        self.getter = getter
        self.rx = rx

    def __call__(self, e: Entry) -> bool:
        v = self.getter(e)
        return v is not None and self.rx.fullmatch(v) is not None


class _Range:
    """Comparison against a date literal that denotes a half-open range [lo, hi)."""

    __slots__ = ("getter", "hi", "lo", "op")

    def __init__(self, getter: Getter, op: str, lo: str, hi: str):
        self.getter = getter
        self.op = op
        self.lo = lo
        self.hi = hi

    def __call__(self, e: Entry) -> bool:
        v = self.getter(e)
        op = self.op
        if v is None:
            return op == "!="
        inside = self.lo <= v < self.hi
        if op == "=":
            return inside
        if op == "!=":
            return not inside
        if op == "<":
            return v < self.lo
        if op == "<=":
            return v < self.hi
        if op == ">":
            return v >= self.hi
        return v >= self.lo


class _And:
    __slots__ = ("preds",)

    def __init__(self, preds: list[Predicate]):
        self.preds = preds

    def __call__(self, e: Entry) -> bool:
        return all(p(e) for p in self.preds)


class _Or:
    __slots__ = ("preds",)

    def __init__(self, preds: list[Predicate]):
        self.preds = preds

    def __call__(self, e: Entry) -> bool:
        return any(p(e) for p in self.preds)


class _NotP:
    __slots__ = ("inner",)

    def __init__(self, inner: Predicate):
        self.inner = inner

    def __call__(self, e: Entry) -> bool:
        return not self.inner(e)


class _SortKey:
    __slots__ = ("base", "norm")

    def __init__(self, base: Getter, norm: Callable[[Any], Any] | None):
        self.base = base
        self.norm = norm

    def __call__(self, e: Entry) -> Any:
        v = self.base(e)
        if v is None:
            return None
        return self.norm(v) if self.norm is not None else v


def _sort_key(base: Getter, f: FieldDef) -> Getter:
    return _SortKey(base, _normalizer(f))


def _like_regex(raw: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append(re.escape(_ESCAPES.get(nxt, nxt)))
            i += 2
            continue
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _date_range(value: tuple[str, int], now: dt.datetime, kind: str) -> tuple[str, str]:
    word, n = value
    today = now.astimezone(dt.UTC).date()
    if word == "TODAY":
        lo, hi = today, today + dt.timedelta(days=1)
    elif word == "YESTERDAY":
        lo, hi = today - dt.timedelta(days=1), today
    elif word == "TOMORROW":
        lo, hi = today + dt.timedelta(days=1), today + dt.timedelta(days=2)
    elif word == "LAST_N_DAYS":
        lo, hi = today - dt.timedelta(days=n), today + dt.timedelta(days=1)
    else:  # NEXT_N_DAYS
        lo, hi = today + dt.timedelta(days=1), today + dt.timedelta(days=n + 1)
    if kind == "date":
        return format_date(lo), format_date(hi)
    start = dt.datetime.combine(lo, dt.time(), dt.UTC)
    end = dt.datetime.combine(hi, dt.time(), dt.UTC)
    return format_datetime(start), format_datetime(end)


def compile_query(
    query: str,
    hidden: Mapping[str, frozenset[str]] | None = None,
    now: dt.datetime | None = None,
    schema: Mapping[str, SObjectDef] | None = None,
) -> CompiledQuery:
    """Parse and compile *query* against *schema* (default: the built-in objects).

    *hidden* maps sObject names to fields invisible to the querying user (field-level
    security): they behave as if they did not exist, exactly like fields that do not exist (a
    deleted custom field, say). *now* anchors relative date literals.
    """
    parsed = parse(query)
    return _Compiler(parsed, hidden or {}, now or dt.datetime.now(dt.UTC), schema or SCHEMA).compile()
