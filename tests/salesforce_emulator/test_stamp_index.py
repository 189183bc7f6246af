"""The SystemModstamp index: range queries, COUNT() and ORDER BY SystemModstamp LIMIT n answered
from it give exactly what a scan of the table gives, and look at far fewer rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from typing import Any

import pytest

from salesforce_emulator import Emulator
from salesforce_emulator.soql import compile_query
from salesforce_emulator.stamp_index import StampIndex
from salesforce_emulator.store import Org
from salesforce_emulator.wire import format_datetime

NOW = dt.datetime(2024, 6, 1, 12, 0, 0, tzinfo=dt.UTC)


def stamp(minutes: int) -> str:
    return format_datetime(NOW - dt.timedelta(minutes=minutes))


def both(org: Org, soql: str, include_deleted: bool) -> tuple[list[Any], list[Any]]:
    """The entries of *soql* with the index and with a scan (compiled once)."""
    cq = org.compile(soql)
    org.use_stamp_index = True
    indexed = org.execute(cq, include_deleted=include_deleted)
    org.use_stamp_index = False
    scanned = org.execute(cq, include_deleted=include_deleted)
    org.use_stamp_index = True
    return indexed, scanned


def random_query(rnd: random.Random, stamps: list[str]) -> str:
    def bound() -> str:
        if rnd.random() < 0.7:
            return rnd.choice(stamps)  # an existing stamp: boundaries and ties
        return stamp(rnd.randrange(-10, 3000))

    conds = []
    for _ in range(rnd.randint(1, 3)):
        conds.append(f"SystemModstamp {rnd.choice(['>=', '>', '<', '<=', '=', '!='])} {bound()}")
    if rnd.random() < 0.3:
        conds.append(rnd.choice(["LastName LIKE 'A%'", "IsDeleted = false", "Email != null"]))
    if rnd.random() < 0.1:
        conds.append("SystemModstamp = LAST_N_DAYS:1")
    rnd.shuffle(conds)
    where = " AND ".join(conds)
    if rnd.random() < 0.15 and len(conds) > 1:  # nested conjunction, or a disjunction
        where = f"{conds[0]} AND ({' AND '.join(conds[1:])})"
    if rnd.random() < 0.1:
        where = f"{conds[0]} OR ({' OR '.join(conds[1:] or conds)})"
    fields = rnd.choice(["Id, SystemModstamp", "Id, Account.Name, SystemModstamp", "COUNT()"])
    if rnd.random() < 0.15:
        where = ""  # only ORDER BY SystemModstamp LIMIT n
    soql = f"SELECT {fields} FROM Contact" + (f" WHERE {where}" if where else "")
    if fields != "COUNT()":
        r = rnd.random()
        if r < 0.5:
            direction = rnd.choice(["", " ASC", " DESC", " ASC NULLS LAST", " DESC NULLS FIRST"])
            soql += f" ORDER BY SystemModstamp{direction}"
        elif r < 0.6:
            soql += " ORDER BY LastName DESC"
        if rnd.random() < 0.6:
            soql += f" LIMIT {rnd.choice([0, 1, 1, 2, 5, 40])}"
            if rnd.random() < 0.3:
                soql += f" OFFSET {rnd.randint(0, 30)}"
    return soql


def scramble(org: Org, rnd: random.Random, pool: list[str]) -> None:
    """Many equal stamps (a few distinct values)."""
    ids = org.all_ids("Contact")
    for rid in rnd.sample(ids, len(ids) // 2):
        org.update("Contact", rid, {"Title": "x"}, system_modstamp=rnd.choice(pool), touch="system")


def mutate(org: Org, rnd: random.Random, pool: list[str]) -> None:
    live = org.all_ids("Contact", include_deleted=False)
    gone = sorted(set(org.all_ids("Contact")) - set(live))
    action = rnd.choice(["update", "update", "touch_none", "delete", "undelete", "purge", "insert"])
    if action == "update":
        org.update("Contact", rnd.choice(live), {"Title": "y"}, system_modstamp=rnd.choice(pool))
    elif action == "touch_none":
        org.update("Contact", rnd.choice(live), {"Title": "z"}, touch="none")
    elif action == "delete":
        org.delete("Contact", rnd.choice(live), system_modstamp=rnd.choice(pool))
    elif action == "undelete" and gone:
        org.undelete("Contact", rnd.choice(gone), system_modstamp=rnd.choice(pool))
    elif action == "purge":
        org.purge("Contact", rnd.choice(live + gone))
    elif action == "insert":
        org.insert("Contact", {"LastName": "Abel"}, system_modstamp=rnd.choice(pool))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_queries_match_the_scan(seed: int) -> None:
    rnd = random.Random(seed)
    org = Org(accounts=15, contacts=250, seed=seed, now=NOW, deleted_share=0.1)
    org.set_clock(NOW)
    pool = [stamp(m) for m in rnd.sample(range(0, 2000), 12)]
    scramble(org, rnd, pool)
    checked = 0
    for round_ in range(12):
        stamps = [r["SystemModstamp"] for r in org.snapshot("Contact") if r["SystemModstamp"]]
        for _ in range(40):
            soql = random_query(rnd, stamps)
            for include_deleted in (False, True):
                indexed, scanned = both(org, soql, include_deleted)
                assert indexed == scanned, soql
                rows = [e[0] if "Account." in soql else e for e in indexed]  # the very same rows
                assert [id(r) for r in rows] == [id(e[0] if "Account." in soql else e) for e in scanned], soql
                checked += bool(scanned)
        for _ in range(rnd.randint(1, 6)):  # after the index is built: invalidation
            mutate(org, rnd, pool)
        if round_ == 6:
            org.add_field("Contact", "Extra__c", "string", length=10)
    assert checked > 300


def test_many_changes_drop_and_rebuild_the_index() -> None:
    org = Org(accounts=5, contacts=100, seed=9, now=NOW)
    org.set_clock(NOW)
    soql = f"SELECT Id FROM Contact WHERE SystemModstamp > {stamp(60 * 24 * 10)} ORDER BY SystemModstamp DESC"
    indexed, scanned = both(org, soql, False)
    assert indexed == scanned
    for i, rid in enumerate(org.all_ids("Contact", include_deleted=False) * 4):  # more than the queue holds
        org.update("Contact", rid, {"Title": str(i)}, system_modstamp=stamp(i % 50))
    indexed, scanned = both(org, soql, True)
    assert indexed == scanned
    assert len(indexed) == org.count("Contact", include_deleted=True)


def test_an_orgs_indexes_can_be_built_before_its_first_query(monkeypatch) -> None:
    org = Org(accounts=5, contacts=100, seed=9, now=NOW)
    org.set_clock(NOW)
    org.build_indexes()  # as the emulator's process does once its orgs are made
    built = []
    monkeypatch.setattr("salesforce_emulator.store.StampIndex", lambda *a: built.append(a) or StampIndex(*a))
    indexed, scanned = both(org, f"SELECT COUNT() FROM Contact WHERE SystemModstamp > {stamp(60)}", False)
    assert indexed == scanned
    assert built == [], "the query found the index built"


def test_count_and_boundaries() -> None:
    org = Org(accounts=5, contacts=40, seed=4, now=NOW, deleted_share=0)
    org.set_clock(NOW)
    ids = org.all_ids("Contact")
    for i, rid in enumerate(ids):
        org.update("Contact", rid, {"Title": "t"}, system_modstamp=stamp(i // 4), touch="system")
    lo, hi = stamp(7), stamp(2)  # stamps 2..7 minutes ago, four records each
    assert org.query(
        f"SELECT COUNT() FROM Contact WHERE SystemModstamp >= {lo} AND SystemModstamp < {hi}"
    ) == [{"expr0": 20}]
    assert org.query(
        f"SELECT COUNT() FROM Contact WHERE SystemModstamp > {lo} AND SystemModstamp <= {hi}"
    ) == [{"expr0": 20}]
    assert org.query(f"SELECT COUNT() FROM Contact WHERE SystemModstamp = {lo}") == [{"expr0": 4}]
    assert org.query(
        f"SELECT COUNT() FROM Contact WHERE SystemModstamp > {hi} AND SystemModstamp < {lo}"
    ) == [{"expr0": 0}]
    newest = org.query("SELECT Id FROM Contact ORDER BY SystemModstamp DESC LIMIT 2")
    assert [r["Id"] for r in newest] == ids[:2]  # ties in creation order
    oldest = org.query("SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp ASC LIMIT 1")
    assert oldest == [{"Id": ids[36], "SystemModstamp": stamp(9)}]


def test_stamp_range_is_compiled_from_a_conjunction_only() -> None:
    def rng(where: str) -> Any:
        return compile_query(f"SELECT Id FROM Contact c WHERE {where}", now=NOW).stamp_range

    a, b = "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z"
    fa, fb = "2024-05-01T00:00:00.000+0000", "2024-05-02T00:00:00.000+0000"
    assert rng(f"SystemModstamp >= {a} AND SystemModstamp < {b}") == (fa, True, fb, False)
    assert rng(f"c.SystemModstamp > {a} AND (LastName = 'x' AND Contact.SystemModstamp <= {b})") == (
        fa,
        False,
        fb,
        True,
    )
    assert rng(f"SystemModstamp = {a}") == (fa, True, fa, True)
    assert rng(f"SystemModstamp >= {a} AND SystemModstamp > {a}") == (fa, False, None, True)
    assert rng("SystemModstamp = YESTERDAY") == (
        "2024-05-31T00:00:00.000+0000",
        True,
        "2024-06-01T00:00:00.000+0000",
        False,
    )
    assert rng(f"SystemModstamp >= {a} OR SystemModstamp < {b}") is None
    assert rng(f"NOT SystemModstamp >= {a}") is None
    assert rng(f"SystemModstamp != {a}") is None
    assert rng(f"Account.SystemModstamp >= {a}") is None
    assert rng("SystemModstamp = null") is None
    exact = compile_query(f"SELECT Id FROM Contact WHERE SystemModstamp >= {a} AND (SystemModstamp < {b})")
    assert exact.stamp_exact
    for where in (
        f"SystemModstamp >= {a} AND LastName = 'x'",
        f"SystemModstamp >= {a} AND SystemModstamp != {b}",
    ):
        assert not compile_query(f"SELECT Id FROM Contact WHERE {where}").stamp_exact
    assert compile_query("SELECT Id FROM Contact ORDER BY SystemModstamp DESC").stamp_order == (True, True)
    assert compile_query("SELECT Id FROM Contact ORDER BY SystemModstamp, Id").stamp_order is None


def test_a_narrow_range_examines_few_rows() -> None:
    org = Org(accounts=1000, contacts=200_000, seed=11, now=NOW, deleted_share=0.01)
    at = org.schema["Contact"].index["SystemModstamp"]
    stamps = sorted(r[at] for r in org.execute(org.compile("SELECT Id FROM Contact"), include_deleted=True))
    lo, hi = stamps[100_000], stamps[101_000]
    soql = f"SELECT Id FROM Contact WHERE SystemModstamp >= {lo} AND SystemModstamp < {hi}"
    org.query(soql)  # builds the index
    org.rows_examined = 0
    for query in (
        soql,
        f"SELECT COUNT() FROM Contact WHERE SystemModstamp >= {lo} AND SystemModstamp < {hi}",
        "SELECT SystemModstamp FROM Contact ORDER BY SystemModstamp ASC LIMIT 1",
        "SELECT SystemModstamp FROM Contact ORDER BY SystemModstamp DESC LIMIT 1",
    ):
        org.query(query, include_deleted=True)
    assert org.rows_examined < 3_000
    org.rows_examined = 0
    org.use_stamp_index = False
    org.query(soql)
    assert org.rows_examined == 200_000


@pytest.mark.emulator(contacts=3000)
def test_rest_and_bulk_use_the_index(sf_emulator: Emulator) -> None:
    org = sf_emulator.org
    stamps = sorted(r["SystemModstamp"] for r in org.snapshot("Contact"))
    lo, hi = stamps[1000], stamps[1100]
    soql = f"SELECT Id FROM Contact WHERE SystemModstamp >= {lo} AND SystemModstamp < {hi}"
    expected = [r["Id"] for r in org.query(soql, include_deleted=True)]
    sf = sf_emulator.salesforce()
    org.rows_examined = 0
    assert [r["Id"] for r in sf.query_all_iter(soql, include_deleted=True)] == expected
    count = sf.query(soql.replace("Id", "COUNT()", 1))["totalSize"]
    assert count == len(org.query(soql))
    pages = list(sf.bulk2.Contact.query_all(soql, wait=0))
    assert [r["Id"] for page in pages for r in csv.DictReader(io.StringIO(page))] == expected
    assert 0 < org.rows_examined < 1_000  # four queries of ~100 candidates; a scan reads 3,000 each


def test_index_unit_with_null_stamps_and_changes() -> None:
    """Null stamps cannot be made through the admin API; the index still orders them like the sort."""
    rnd = random.Random(5)
    values = ["a", "b", "c", None]
    rows: list[Any] = [(i, rnd.choice(values)) for i in range(60)]
    index = StampIndex(rows, 1)
    for _ in range(80):  # queued changes, then compared with a fresh build
        i = rnd.randrange(len(rows) + 1)
        new = None if rnd.random() < 0.2 else (i, rnd.choice(values))
        if i == len(rows):
            rows.append(new or (i, "b"))
            assert index.changed(i, None, rows[i])
        else:
            old, rows[i] = rows[i], new
            assert index.changed(i, old, new)
    index.sync()
    fresh = StampIndex(rows, 1)
    assert (index.keys, index.positions, index.nulls) == (fresh.keys, fresh.positions, fresh.nulls)
    live = [r for r in rows if r is not None]
    for descending in (False, True):
        for nulls_last in (False, True):
            flag = nulls_last == descending

            def key(r: Any, _f: bool = flag) -> Any:
                return ((0,) if _f else (2,)) if r[1] is None else (1, r[1])

            expected = [r[0] for r in sorted(live, key=key, reverse=descending)]
            got = [p for chunk in index.ordered(None, descending, nulls_last, 1) for p in chunk]
            assert got == expected
            ranged = [
                p
                for chunk in index.ordered(("a", False, "c", True), descending, nulls_last, 1)
                for p in chunk
            ]
            assert ranged == [p for p in expected if rows[p][1] in ("b", "c")]
            low = [
                p
                for chunk in index.ordered((None, True, "b", False), descending, nulls_last, 1)
                for p in chunk
            ]
            assert low == [p for p in expected if rows[p][1] == "a"]
