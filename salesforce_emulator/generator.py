"""Deterministic, seeded generation of an org's Users, Accounts and Contacts.

Data is generated column by column, each column from its own ``random.Random`` seeded by
(seed, object, column). That keeps generation fast (C-level ``choices``/``random`` loops over
whole columns instead of per-record Python logic) and makes record *i* identical whatever the
total number of records. Values are hostile on purpose: unicode, quotes, commas, tabs,
newlines, backslashes, ~32,000-character descriptions, messy emails, orphaned contacts.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from salesforce_emulator.ids import checksum_suffix
from salesforce_emulator.schema import (
    ACCOUNT,
    ACCOUNT_TYPES,
    CHANNELS,
    CONTACT,
    INDUSTRIES,
    SALUTATIONS,
    SOURCES,
    TIERS,
    USER,
)
from salesforce_emulator.wire import UTC, epoch_to_wire, format_date

__all__ = ["DEFAULT_POD", "GeneratedData", "generate", "make_ids"]

DEFAULT_POD = "Dn"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_GROUP_CACHE: dict[int, tuple[str, int]] = {}


def _group(n: int) -> tuple[str, int]:
    """Three base-62 digits of *n* and the bit mask of which of them are upper-case."""
    hit = _GROUP_CACHE.get(n)
    if hit is None:
        a, rem = divmod(n, 3844)
        b, c = divmod(rem, 62)
        text = _BASE62[a] + _BASE62[b] + _BASE62[c]
        bits = sum(1 << i for i, ch in enumerate(text) if "A" <= ch <= "Z")
        hit = (text, bits)
        _GROUP_CACHE[n] = hit
    return hit


def make_ids(prefix: str, start: int, count: int, pod: str = DEFAULT_POD) -> list[str]:
    """Return *count* consecutive 18-character Ids, counters ``start..start+count-1``.

    Equivalent to :func:`salesforce_emulator.ids.make_id` in a loop, but computes the checksum
    from cached 3-digit groups, because generating a million Ids one by one is measurable.
    """
    head = prefix + pod + "0"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    c1 = checksum_suffix(head + "000000000")[0]
    head_bits_5 = 0  # position 5 is the literal "0"
    out = []
    for n in range(start, start + count):
        hi, rest = divmod(n, 62**6)
        mid, lo = divmod(rest, 62**3)
        g0, b0 = _group(hi)
        g1, b1 = _group(mid)
        g2, b2 = _group(lo)
        # chunk 2 = positions 5..9: "0", g0[0..2], g1[0]; chunk 3 = g1[1..2], g2[0..2]
        c2 = alphabet[head_bits_5 | (b0 << 1) | ((b1 & 1) << 4)]
        c3 = alphabet[(b1 >> 1) | (b2 << 2)]
        out.append(f"{head}{g0}{g1}{g2}{c1}{c2}{c3}")
    return out


@dataclass(slots=True)
class GeneratedData:
    """Rows (tuples in each object's storage order) plus the org-level Ids."""

    org_id: str
    integration_user_id: str
    users: list[tuple[Any, ...]]
    accounts: list[tuple[Any, ...]]
    contacts: list[tuple[Any, ...]]


FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley",
    "Priya", "Wei", "Fatima", "Mohammed", "Olga", "Hiroshi", "Aisha", "Carlos", "Ingrid", "Kwame",
)  # fmt: skip
HOSTILE_FIRST = (
    "Zoë", "José", "François", "Søren", "Łukasz", "Ольга", "太郎", "Siobhán", "Renée", "Björk",
    "Chloé 😀", "Dwayne \"The Rock\"", "Ann, Marie", "Tab\tby", "Line\nbreak", "Back\\slash",
    "O'Neil", "🚀", "  Padded  ", "Ña",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis",
    "Patel", "Chen", "Kim", "Nakamura", "Okafor", "Novak", "Schmidt", "Rossi", "Dubois", "Silva",
)  # fmt: skip
HOSTILE_LAST = (
    "山田", "Müller", "Nguyễn", "O'Brien", "D'Angelo", "Smith, Jr.", "de la Cruz", "Ström",
    "Quote\"Mark", "Tab\tName", "Multi\nLine", "Back\\slash", "Emoji🎉", "Żółć", "Łódź-Kraków",
    "Dvořák", "Иванов", "김", "محمد", "🙂",
)  # fmt: skip
COMPANY_STEMS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Hooli", "Vandelay",
    "Cyberdyne", "Soylent", "Tyrell", "Massive Dynamic", "Aperture", "Pied Piper", "Gringotts",
    "Oscorp", "Monarch", "Blue Sun", "Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware",
)  # fmt: skip
HOSTILE_STEMS = (
    "Müller & Söhne", "東京電機", "Ωmega", "Quote \"Co\"", "Comma, Commas", "Tab\tWorks",
    "New\nLine", "Back\\slash", "Emoji 🚀", "O'Reilly", "Société Générale", "Zoë's Café",
    "=HYPERLINK(\"x\")", "<script>", "Ünïcödé", "Semi;colon", "Pipe|Line", "Caret^Co",
)  # fmt: skip
COMPANY_SUFFIXES = ("Inc.", "LLC", "Ltd", "GmbH", "S.A.", "Corp.", "PLC", "Group", "Labs", "株式会社", "")
CITIES = (
    ("San Francisco", "CA", "941", "United States"),
    ("New York", "NY", "100", "United States"),
    ("Austin", "TX", "787", "United States"),
    ("Chicago", "IL", "606", "United States"),
    ("Seattle", "WA", "981", "United States"),
    ("Toronto", "ON", "M5V", "Canada"),
    ("London", None, "EC1", "United Kingdom"),
    ("München", "Bayern", "803", "Germany"),
    ("Paris", None, "750", "France"),
    ("東京", "東京都", "100", "Japan"),
    ("São Paulo", "SP", "010", "Brazil"),
    ("Zürich", "ZH", "800", "Switzerland"),
    ("Kraków", None, "30-", "Poland"),
    ("Sydney", "NSW", "200", "Australia"),
)
STREET_NAMES = (
    "Market St", "Main St", "Broadway", "Oak Ave", "Elm St", "Mission St", "King St W",
    "Baker Street", "Leopoldstraße", "Rue de Rivoli", "Avenida Paulista", "Bahnhofstrasse",
)  # fmt: skip
TITLES = (
    "CEO", "CFO", "VP Sales", "Director, Operations", "Account Manager", "Engineer", "Analyst",
    "Head of \"Growth\"", "Buyer", "Procurement Lead", "CTO", "Office Manager", None,
)  # fmt: skip
DEPARTMENTS = ("Sales", "Finance", "Engineering", "Operations", "Marketing", "R&D", "IT", "Legal", None)
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example", "corp.example.net", "EXAMPLE.COM")
SHORT_DESCRIPTIONS = (
    "Key account.",
    "Met at Dreamforce, follow up in Q3.",
    'Said: "call me after lunch", then hung up',
    "Line one\nLine two\nLine three",
    "Tabs\tbetween\twords",
    "Windows\r\nline ending",
    "Path C:\\Users\\demo\\notes.txt",
    "Commas, commas, and more commas,",
    "Unicode: Zoë, 山田, Ñandú, ß, 😀🚀",
    "   leading and trailing spaces   ",
    'Empty-looking: ""',
    'Quote at end"',
)


def _rng(seed: int, *parts: str) -> random.Random:
    # String seeds are hashed with SHA-512 by random.seed, so this is stable across processes
    # (unlike hash(), which is randomised per interpreter).
    return random.Random(f"{seed}:" + ":".join(parts))


def _weighted(
    rng: random.Random, common: Sequence[Any], rare: Sequence[Any], rare_share: float, k: int
) -> list[Any]:
    population = list(common) + list(rare)
    weights = [(1 - rare_share) / len(common)] * len(common) + [rare_share / len(rare)] * len(rare)
    return rng.choices(population, weights=weights, k=k)


def _maybe_none(rng: random.Random, values: list[Any], share: float) -> list[Any]:
    r = rng.random
    return [None if r() < share else v for v in values]


def _bools(rng: random.Random, share: float, k: int) -> list[bool]:
    r = rng.random
    return [r() < share for _ in range(k)]


def _timestamps(rng: random.Random, k: int, start: int, end: int) -> tuple[list[str], list[str], list[str]]:
    """CreatedDate <= LastModifiedDate <= SystemModstamp, all within [start, end] epoch seconds."""
    r = rng.random
    span = end - start
    created, modified, stamp = [], [], []
    for _ in range(k):
        c = start + int(r() * span)
        m = c + int((r() ** 2) * (end - c))
        # Most records: SystemModstamp == LastModifiedDate; some were touched by automation later.
        s = m if r() < 0.8 else min(end, m + int(r() * 3600))
        created.append(epoch_to_wire(c))
        modified.append(epoch_to_wire(m))
        stamp.append(epoch_to_wire(s))
    return created, modified, stamp


def _long_description(seed: int, n: int) -> str:
    """A ~32,000-character description: many lines, every hostile character class."""
    rng = _rng(seed, "longdesc", str(n))
    words = ("lorem", "ipsum", "Zoë", "山田", "😀", 'say "hi"', "a,b", "tab\there", "back\\slash", "ok")
    parts: list[str] = []
    size = 0
    while size < 31_900:
        line = " ".join(rng.choices(words, k=12))
        parts.append(line)
        size += len(line) + 1
    return "\n".join(parts)[:31_990]


def _dates(rng: random.Random, k: int, first: dt.date, last: dt.date) -> list[str]:
    span = (last - first).days
    cache: dict[int, str] = {}
    out = []
    r = rng.random
    for _ in range(k):
        off = int(r() * span)
        text = cache.get(off)
        if text is None:
            text = format_date(first + dt.timedelta(days=off))
            cache[off] = text
        out.append(text)
    return out


def _ascii_slug(text: str) -> str:
    slug = "".join(ch for ch in text.lower() if "a" <= ch <= "z")
    return slug or "x"


def _users(org_now: int, period: int, integration_username: str, id_base: int = 0) -> list[tuple[Any, ...]]:
    people = [
        ("Integration", "User", integration_username),
        ("Ada", "Lovelace", "ada.lovelace@customerscore.example"),
        ("Grace", "Hopper", "grace.hopper@customerscore.example"),
        ("Zoë", "Kravitz", "zoe.kravitz@customerscore.example"),
        ("Taro", "山田", "taro.yamada@customerscore.example"),
        ("Inactive", "Rep", "inactive.rep@customerscore.example"),
    ]
    ids = make_ids("005", 1 + id_base, len(people))
    created = epoch_to_wire(org_now - period - 86400 * 365)
    rows = []
    for i, (first, last, username) in enumerate(people):
        fields = {
            "Id": ids[i],
            "Username": username,
            "LastName": last,
            "FirstName": first,
            "Name": f"{first} {last}",
            "Email": username,
            "IsActive": first != "Inactive",
            "CreatedDate": created,
            "CreatedById": ids[0],
            "LastModifiedDate": created,
            "LastModifiedById": ids[0],
            "SystemModstamp": created,
        }
        rows.append(tuple(fields[name] for name in USER.storage))
    return rows


def generate(
    *,
    accounts: int,
    contacts: int,
    seed: int,
    now: dt.datetime,
    period_days: float = 30.0,
    deleted_share: float = 0.03,
    integration_username: str = "demo@customerscore.example",
    id_base: int = 0,
) -> GeneratedData:
    """Generate an org's data. Same arguments, same data (bit for bit).

    ``id_base`` offsets every record Id's counter, so orgs hosted side by side never share an Id
    (Salesforce's Ids are unique across orgs)."""
    if accounts < 0 or contacts < 0:
        raise ValueError("record counts must be >= 0")
    end = int(now.astimezone(UTC).timestamp())
    period = int(period_days * 86400)
    start = end - period
    org_id = make_ids("00D", 1 + seed % 1_000_000, 1)[0]
    users = _users(end, period, integration_username, id_base)
    user_ids = [u[0] for u in users]
    owner_ids = user_ids[1:5]
    account_rows = _accounts(accounts, seed, start, end, owner_ids, user_ids, deleted_share, now, id_base)
    account_ids = [row[0] for row in account_rows]
    contact_rows = _contacts(
        contacts, seed, start, end, owner_ids, user_ids, account_ids, deleted_share, now, id_base
    )
    return GeneratedData(org_id, user_ids[0], users, account_rows, contact_rows)


def _accounts(
    k: int,
    seed: int,
    start: int,
    end: int,
    owner_ids: list[str],
    user_ids: list[str],
    deleted_share: float,
    now: dt.datetime,
    id_base: int = 0,
) -> list[tuple[Any, ...]]:
    def rng(column: str) -> random.Random:
        return _rng(seed, "Account", column)

    ids = make_ids("001", 1 + id_base, k)
    stems = _weighted(rng("stem"), COMPANY_STEMS, HOSTILE_STEMS, 0.15, k)
    suffixes = rng("suffix").choices(COMPANY_SUFFIXES, k=k)
    names = [f"{a} {b}".strip() for a, b in zip(stems, suffixes, strict=True)]
    r_parent = rng("parent").random
    parents = [ids[int(r_parent() * i)] if i and r_parent() < 0.1 else None for i in range(k)]
    city_b = rng("billing_city").choices(CITIES, k=k)
    city_s = rng("shipping_city").choices(CITIES, k=k)
    street_pool = [f"{n} {s}" for n in range(1, 400, 7) for s in STREET_NAMES]
    street_pool += ["1 Infinite Loop\nBuilding 2", 'Unit 5, 10 "Quoted" Road', "Back\\slash Alley 9"]
    streets_b = _maybe_none(rng("bs_none"), rng("billing_street").choices(street_pool, k=k), 0.1)
    streets_s = _maybe_none(rng("ss_none"), rng("shipping_street").choices(street_pool, k=k), 0.4)
    r_zip = rng("zip").random
    phone_pool = [f"({200 + i % 700}) 555-{i % 10000:04d}" for i in range(0, 50_000, 7)]
    phones = _maybe_none(rng("phone_none"), rng("phone").choices(phone_pool, k=k), 0.1)
    faxes = _maybe_none(rng("fax_none"), rng("fax").choices(phone_pool, k=k), 0.7)
    sites = [
        None if i % 9 == 4 else f"https://www.{_ascii_slug(stem)}{i}.example" for i, stem in enumerate(stems)
    ]
    revenue_r = rng("revenue").random
    revenue = [None if revenue_r() < 0.2 else float(int(revenue_r() * 100_000) * 1000) for _ in range(k)]
    emp_r = rng("employees").random
    employees = [None if emp_r() < 0.15 else int(emp_r() ** 3 * 200_000) + 1 for _ in range(k)]
    desc_r = rng("description").random
    descriptions: list[str | None] = []
    long_cache: dict[int, str] = {}
    for i in range(k):
        if i in (3, 17) or (i and i % 50_000 == 0):
            variant = i % 3
            if variant not in long_cache:
                long_cache[variant] = _long_description(seed, variant)
            descriptions.append(long_cache[variant])
        elif desc_r() < 0.25:
            descriptions.append(SHORT_DESCRIPTIONS[int(desc_r() * len(SHORT_DESCRIPTIONS))])
        else:
            descriptions.append(None)
    created, modified, stamp = _timestamps(rng("ts"), k, start, end)
    creators = rng("creator").choices(user_ids, k=k)
    modifiers = rng("modifier").choices(user_ids, k=k)
    health_r = rng("health").random
    health = [None if health_r() < 0.2 else round(health_r() * 100, 2) for _ in range(k)]
    today = now.astimezone(UTC).date()
    onboarded = _maybe_none(
        rng("onb_none"), _dates(rng("onboarded"), k, today - dt.timedelta(days=3 * 365), today), 0.3
    )
    columns: dict[str, list[Any]] = {
        "Id": ids,
        "IsDeleted": _bools(rng("deleted"), deleted_share, k),
        "MasterRecordId": [None] * k,
        "Name": names,
        "Type": _maybe_none(rng("type_none"), rng("type").choices(ACCOUNT_TYPES, k=k), 0.1),
        "ParentId": parents,
        "BillingStreet": streets_b,
        "BillingCity": [c[0] for c in city_b],
        "BillingState": [c[1] for c in city_b],
        "BillingPostalCode": [f"{c[2]}{int(r_zip() * 100):02d}" for c in city_b],
        "BillingCountry": [c[3] for c in city_b],
        "ShippingStreet": streets_s,
        "ShippingCity": [None if s is None else c[0] for c, s in zip(city_s, streets_s, strict=True)],
        "ShippingState": [None if s is None else c[1] for c, s in zip(city_s, streets_s, strict=True)],
        "ShippingPostalCode": [
            None if s is None else c[2] + "00" for c, s in zip(city_s, streets_s, strict=True)
        ],
        "ShippingCountry": [None if s is None else c[3] for c, s in zip(city_s, streets_s, strict=True)],
        "Phone": phones,
        "Fax": faxes,
        "Website": sites,
        "Industry": _maybe_none(rng("ind_none"), rng("industry").choices(INDUSTRIES, k=k), 0.1),
        "AnnualRevenue": revenue,
        "NumberOfEmployees": employees,
        "Description": descriptions,
        "OwnerId": rng("owner").choices(owner_ids, k=k),
        "CreatedDate": created,
        "CreatedById": creators,
        "LastModifiedDate": modified,
        "LastModifiedById": modifiers,
        "SystemModstamp": stamp,
        "AccountSource": _maybe_none(rng("src_none"), rng("source").choices(SOURCES, k=k), 0.3),
        "Health_Score__c": health,
        "Tier__c": _maybe_none(rng("tier_none"), rng("tier").choices(TIERS, k=k), 0.25),
        "Onboarded_On__c": onboarded,
    }
    return list(zip(*(columns[name] for name in ACCOUNT.storage), strict=True)) if k else []


def _emails(rng: random.Random, first: list[Any], last: list[str]) -> list[str | None]:
    r = rng.random
    domains = EMAIL_DOMAINS
    first_slugs: dict[Any, str] = {}
    last_slugs: dict[str, str] = {}
    out: list[str | None] = []
    for i, (f, lname) in enumerate(zip(first, last, strict=True)):
        roll = r()
        if roll < 0.06:
            out.append(None)
            continue
        fs = first_slugs.get(f)
        if fs is None:
            fs = first_slugs[f] = _ascii_slug(f or "")
        ls = last_slugs.get(lname)
        if ls is None:
            ls = last_slugs[lname] = _ascii_slug(lname)
        email = f"{fs}.{ls}{i}@{domains[i % len(domains)]}"
        if roll < 0.14:
            email = email.title()  # mixed case: "Mary.Smith12@Example.Com"
        elif roll < 0.17:
            email = f"  {email} "  # stray spaces, as typed into a form
        elif roll < 0.19:
            email = email.upper()
        out.append(email)
    return out


def _contacts(
    k: int,
    seed: int,
    start: int,
    end: int,
    owner_ids: list[str],
    user_ids: list[str],
    account_ids: list[str],
    deleted_share: float,
    now: dt.datetime,
    id_base: int = 0,
) -> list[tuple[Any, ...]]:
    def rng(column: str) -> random.Random:
        return _rng(seed, "Contact", column)

    ids = make_ids("003", 1 + id_base, k)
    first = _maybe_none(rng("first_none"), _weighted(rng("first"), FIRST_NAMES, HOSTILE_FIRST, 0.08, k), 0.05)
    last = _weighted(rng("last"), LAST_NAMES, HOSTILE_LAST, 0.08, k)
    name_cache: dict[tuple[Any, str], str] = {}
    names = []
    for f, lname in zip(first, last, strict=True):
        key = (f, lname)
        full = name_cache.get(key)
        if full is None:
            full = name_cache[key] = lname if f is None else f"{f} {lname}"
        names.append(full)
    if account_ids:
        acc_r = rng("account").random
        n_acc = len(account_ids)
        # ~4% of contacts are private (no account); some others land on deleted accounts.
        accounts = [None if acc_r() < 0.04 else account_ids[int(acc_r() * n_acc)] for _ in range(k)]
    else:
        accounts = [None] * k
    cities = rng("city").choices(CITIES, k=k)
    street_pool = [f"{n} {s}" for n in range(2, 900, 11) for s in STREET_NAMES]
    street_pool += ["Flat 3\nHigh Street 1", 'c/o "Front Desk", Tower B', "Rückgebäude, Hof 2"]
    streets = _maybe_none(rng("street_none"), rng("street").choices(street_pool, k=k), 0.15)
    phone_pool = [f"+1 ({300 + i % 600}) 555-{i % 10000:04d}" for i in range(0, 70_000, 7)]
    phone_pool += ["+49 89 1234567", "+81-3-1234-5678", 'ext. 12, "ask for Bob"']
    zip_r = rng("zip").random
    desc_r = rng("description").random
    descriptions: list[str | None] = []
    long_cache: dict[int, str] = {}
    for i in range(k):
        if i in (7, 11) or (i and i % 100_000 == 0):
            variant = 3 + i % 2
            if variant not in long_cache:
                long_cache[variant] = _long_description(seed, variant)
            descriptions.append(long_cache[variant])
        elif desc_r() < 0.12:
            descriptions.append(SHORT_DESCRIPTIONS[int(desc_r() * len(SHORT_DESCRIPTIONS))])
        else:
            descriptions.append(None)
    created, modified, stamp = _timestamps(rng("ts"), k, start, end)
    today = now.astimezone(UTC).date()
    nps_r = rng("nps").random
    columns: dict[str, list[Any]] = {
        "Id": ids,
        "IsDeleted": _bools(rng("deleted"), deleted_share, k),
        "MasterRecordId": [None] * k,
        "AccountId": accounts,
        "LastName": last,
        "FirstName": first,
        "Salutation": _maybe_none(rng("sal_none"), rng("salutation").choices(SALUTATIONS, k=k), 0.4),
        "Name": names,
        "MailingStreet": streets,
        "MailingCity": [None if s is None else c[0] for c, s in zip(cities, streets, strict=True)],
        "MailingState": [None if s is None else c[1] for c, s in zip(cities, streets, strict=True)],
        "MailingPostalCode": [
            None if s is None else f"{c[2]}{int(zip_r() * 100):02d}"
            for c, s in zip(cities, streets, strict=True)
        ],
        "MailingCountry": [None if s is None else c[3] for c, s in zip(cities, streets, strict=True)],
        "Phone": _maybe_none(rng("phone_none"), rng("phone").choices(phone_pool, k=k), 0.2),
        "MobilePhone": _maybe_none(rng("mobile_none"), rng("mobile").choices(phone_pool, k=k), 0.5),
        "Email": _emails(rng("email"), first, last),
        "Title": rng("title").choices(TITLES, k=k),
        "Department": rng("department").choices(DEPARTMENTS, k=k),
        "LeadSource": _maybe_none(rng("lead_none"), rng("lead").choices(SOURCES, k=k), 0.3),
        "Birthdate": _maybe_none(
            rng("birth_none"),
            _dates(rng("birth"), k, dt.date(1950, 1, 1), today.replace(year=today.year - 18)),
            0.6,
        ),
        "Description": descriptions,
        "OwnerId": rng("owner").choices(owner_ids, k=k),
        "HasOptedOutOfEmail": _bools(rng("optout"), 0.1, k),
        "CreatedDate": created,
        "CreatedById": rng("creator").choices(user_ids, k=k),
        "LastModifiedDate": modified,
        "LastModifiedById": rng("modifier").choices(user_ids, k=k),
        "SystemModstamp": stamp,
        "NPS__c": [None if nps_r() < 0.3 else float(int(nps_r() * 11)) for _ in range(k)],
        "Preferred_Channel__c": _maybe_none(rng("chan_none"), rng("channel").choices(CHANNELS, k=k), 0.3),
        "Is_Champion__c": _bools(rng("champion"), 0.05, k),
    }
    return list(zip(*(columns[name] for name in CONTACT.storage), strict=True)) if k else []
