"""Salesforce record Ids: 15-character case-sensitive Ids and their 18-character form.

The 18-character form appends a 3-character checksum that encodes, for each 5-character
chunk of the 15-character Id, which characters are upper-case. That makes the Id safe for
case-insensitive systems (spreadsheets, some databases), which is why the APIs return it.
"""

from __future__ import annotations

import re

__all__ = [
    "KEY_PREFIXES",
    "checksum_suffix",
    "is_valid_id",
    "make_id",
    "to_15",
    "to_18",
]

# Key prefixes of the objects the emulator knows, plus the non-record Ids it hands out.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Organization": "00D",
    "Profile": "00e",
    "QueryLocator": "01g",
    "AsyncApexJob": "750",
}

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"^[0-9A-Za-z]{15}(?:[A-Z0-5]{3})?$")


def checksum_suffix(id15: str) -> str:
    """Return the 3-character case-safety suffix of a 15-character Id.

    For each of the three 5-character chunks, bit *i* is set when character *i* of the
    chunk is an upper-case letter A-Z; the 5-bit number indexes ``A..Z0..5``.
    """
    if len(id15) != 15:
        raise ValueError(f"expected a 15-character Id, got {id15!r}")
    out = []
    for start in (0, 5, 10):
        bits = 0
        for i, ch in enumerate(id15[start : start + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_CHECKSUM_ALPHABET[bits])
    return "".join(out)


def to_18(value: str) -> str:
    """Return the 18-character form of a 15- or 18-character Id.

    An 18-character Id is re-derived from its first 15 characters, so a suffix typed in the
    wrong case is corrected (Salesforce treats the suffix case-insensitively).
    """
    if not _ID_RE.match(value if len(value) == 15 else value[:15] + value[15:].upper()):
        raise ValueError(f"invalid Salesforce Id: {value!r}")
    id15 = value[:15]
    suffix = checksum_suffix(id15)
    if len(value) == 18 and value[15:].upper() != suffix:
        raise ValueError(f"invalid Salesforce Id checksum: {value!r}")
    return id15 + suffix


def to_15(value: str) -> str:
    """Return the 15-character (case-sensitive) form of an Id."""
    return to_18(value)[:15]


def is_valid_id(value: object) -> bool:
    """True when *value* is a syntactically valid 15- or 18-character Id with a correct suffix."""
    if not isinstance(value, str) or len(value) not in (15, 18):
        return False
    try:
        to_18(value)
    except ValueError:
        return False
    return True


def make_id(prefix: str, number: int, pod: str = "Dn") -> str:
    """Build a deterministic 18-character Id: key prefix, 2-character pod, ``0``, base-62 counter.

    Counters are zero-padded to 9 characters, so Ids of one object sort in creation order
    (the base-62 alphabet is in ASCII order), like real Ids created on one pod.
    """
    if len(prefix) != 3 or len(pod) != 2:
        raise ValueError("prefix must have 3 characters and pod 2")
    if number < 0 or number >= 62**9:
        raise ValueError("Id counter out of range")
    digits = []
    n = number
    for _ in range(9):
        n, rem = divmod(n, 62)
        digits.append(_BASE62[rem])
    id15 = prefix + pod + "0" + "".join(reversed(digits))
    return id15 + checksum_suffix(id15)
