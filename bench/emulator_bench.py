"""Benchmark: how fast the emulator serves Contacts over REST query pages and Bulk 2.0 CSV.

Run: ``.venv/bin/python bench/emulator_bench.py --contacts 1000000``

The emulator runs as its own process (``python -m salesforce_emulator``), as it does next to
a pipeline, so server and client each get a core. The default client is deliberately lean:
one keep-alive HTTPS connection, the next-page URL read from the head of each page and
records counted in the bytes, so the figure is the emulator's throughput rather than JSON
parsing in the client. ``--client simple-salesforce`` measures ``query_all_iter`` instead.
The first REST pass renders every record; the second is served from pre-serialised fragments.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from salesforce_emulator.auth import DEMO_CONNECTED_APP  # noqa: E402 - after the sys.path tweak

DEFAULT_FIELDS = (
    "Id, IsDeleted, AccountId, Account.Name, FirstName, LastName, Name, Email, Phone, MailingCity, "
    "MailingCountry, Title, Description, HasOptedOutOfEmail, NPS__c, Is_Champion__c, CreatedDate, "
    "LastModifiedDate, SystemModstamp"
)
_NEXT_RE = re.compile(rb'"nextRecordsUrl":"([^"]+)"')


class _Session(requests.Session):
    """Passes verify= per request (the environment's REQUESTS_CA_BUNDLE would win otherwise)."""

    def __init__(self, ca: str):
        super().__init__()
        self.ca = ca

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        kwargs.setdefault("verify", self.ca)
        return super().request(method, url, *args, **kwargs)


def start_emulator(accounts: int, contacts: int, seed: int) -> tuple[subprocess.Popen[str], str, str, float]:
    """Start ``python -m salesforce_emulator``; returns (process, base URL, CA path, startup seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "salesforce_emulator", "--port", "0", "--accounts", str(accounts),
         "--contacts", str(contacts), "--seed", str(seed), "--daily-limit", "1000000"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    _, base_url, ca = line.split(" ")
    return proc, base_url, ca.removeprefix("ca="), time.perf_counter() - started


def login(session: requests.Session, base_url: str) -> str:
    """OAuth client credentials with the demo Connected App; returns the access token."""
    basic = base64.b64encode(
        f"{DEMO_CONNECTED_APP.consumer_key}:{DEMO_CONNECTED_APP.consumer_secret}".encode()
    )
    resp = session.post(
        f"{base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + basic.decode()},
    )
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def bench_rest_raw(session: requests.Session, base_url: str, token: str, soql: str) -> tuple[int, float, int]:
    """Fetch every queryAll page; returns (records, seconds, bytes)."""
    headers = {"Authorization": f"Bearer {token}", "Sforce-Query-Options": "batchSize=2000"}
    started = time.perf_counter()
    resp = session.get(f"{base_url}/services/data/v59.0/queryAll/", params={"q": soql}, headers=headers)
    n = size = 0
    while True:
        resp.raise_for_status()
        body = resp.content
        size += len(body)
        n += body.count(b'{"attributes":{"type":"Contact"')
        m = _NEXT_RE.search(body, 0, 300)
        if m is None:
            break
        resp = session.get(base_url + m.group(1).decode(), headers=headers)
    return n, time.perf_counter() - started, size


def bench_rest_sf(session: requests.Session, base_url: str, token: str, soql: str) -> tuple[int, float, int]:
    """``query_all_iter`` of the unmodified simple-salesforce client; returns (records, seconds, 0)."""
    from simple_salesforce import Salesforce

    sf = Salesforce(session_id=token, instance=base_url.removeprefix("https://"), session=session)
    started = time.perf_counter()
    n = sum(1 for _ in sf.query_all_iter(soql, include_deleted=True))
    return n, time.perf_counter() - started, 0


def bench_bulk(session: requests.Session, base_url: str, token: str, soql: str) -> tuple[int, float, int]:
    """A Bulk 2.0 queryAll job through simple-salesforce's bulk2; returns (records, seconds, bytes)."""
    from simple_salesforce import Salesforce

    sf = Salesforce(session_id=token, instance=base_url.removeprefix("https://"), session=session)
    started = time.perf_counter()
    n = size = 0
    for page in sf.bulk2.Contact.query_all(soql, max_records=50_000, wait=0):
        size += len(page.encode())
        n += page.count('\n"003')  # each record line starts with its quoted Contact Id
    return n, time.perf_counter() - started, size


def main() -> int:
    """Parse options, run the benchmarks, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=None, help="default: contacts / 10")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fields", default=DEFAULT_FIELDS)
    parser.add_argument("--client", choices=("raw", "simple-salesforce"), default="raw")
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args()
    accounts = args.accounts if args.accounts is not None else max(1, args.contacts // 10)
    proc, base_url, ca, startup = start_emulator(accounts, args.contacts, args.seed)
    soql = f"SELECT {args.fields} FROM Contact"
    try:
        session = _Session(ca)
        token = login(session, base_url)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
        print(f"emulator with {accounts:,} accounts + {args.contacts:,} contacts ready in {startup:.1f} s")
        rest = bench_rest_raw if args.client == "raw" else bench_rest_sf
        for label in ("cold", "warm"):
            n, secs, size = rest(session, base_url, token, soql)
            mb = size / 1e6
            print(
                f"REST queryAll {label} ({args.client}, 2000/page): {n:,} records in {secs:.1f} s"
                f" = {n / secs:,.0f} records/s" + (f", {mb:,.0f} MB ({mb / secs:,.0f} MB/s)" if size else "")
            )
        if not args.skip_bulk:
            n, secs, size = bench_bulk(session, base_url, token, soql)
            print(
                f"Bulk 2.0 CSV (50,000/page): {n:,} records in {secs:.1f} s = {n / secs:,.0f} records/s, {size / 1e6:,.0f} MB"
            )
        resp = session.get(f"{base_url}/__admin/counters")
        print("emulator counters:", json.dumps(resp.json()["counters"], sort_keys=True))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
