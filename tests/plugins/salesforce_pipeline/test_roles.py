"""The loader role can create schemas and write in the ones it owns, and nothing else."""

from __future__ import annotations

import psycopg2
import pytest


@pytest.fixture
def as_loader(warehouse):
    conn = psycopg2.connect(warehouse)
    conn.autocommit = True
    yield conn.cursor()
    conn.close()


def test_the_loader_creates_and_writes_in_its_schema(as_loader):
    as_loader.execute("CREATE TABLE salesforce.scratch (id int)")
    as_loader.execute("INSERT INTO salesforce.scratch VALUES (1)")
    as_loader.execute("CREATE TEMP TABLE staging (id int)")
    as_loader.execute("SELECT pg_advisory_lock(1), pg_advisory_unlock(1)")
    as_loader.execute(
        "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    )
    _, superuser, createdb, createrole = as_loader.fetchone()
    assert (superuser, createdb, createrole) == (False, False, False)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE public.scratch (id int)",
        "CREATE DATABASE another",
        "CREATE ROLE intruder",
        "SELECT * FROM pg_authid",
    ],
)
def test_the_loader_can_do_nothing_else(as_loader, statement):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        as_loader.execute(statement)


def test_the_loader_creates_an_orgs_schema_but_cannot_touch_a_schema_it_does_not_own(
    test_database_url, as_loader
):
    as_loader.execute("CREATE SCHEMA salesforce_acme")
    as_loader.execute("CREATE TABLE salesforce_acme.account (id int)")
    admin = psycopg2.connect(test_database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS finance; CREATE TABLE IF NOT EXISTS finance.ledger (id int)")
    admin.close()
    for statement in ("SELECT * FROM finance.ledger", "CREATE TABLE finance.scratch (id int)"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            as_loader.execute(statement)
