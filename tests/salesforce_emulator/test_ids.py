from __future__ import annotations

import pytest

from salesforce_emulator.generator import make_ids
from salesforce_emulator.ids import checksum_suffix, is_valid_id, make_id, to_15, to_18


def _reference_suffix(id15: str) -> str:
    """The documented algorithm, written independently: per 5-char chunk, bit i = char i is A-Z."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    out = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        n = sum(2**i for i, c in enumerate(chunk) if c.isupper())
        out += alphabet[n]
    return out


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        ("001000000000001", "001000000000001AAA"),  # no upper-case letters at all
        ("0016000000Mpyq2", "0016000000Mpyq2AAB"),  # M at position 0 of chunk 3 -> bit 0
        ("00D5g000004XYZa", "00D5g000004XYZaEAO"),  # D (bit 2); X,Y,Z at 1,2,3 of chunk 3 -> 14
        ("ABCDEABCDEABCDE", "ABCDEABCDEABCDE555"),  # all upper -> 31 -> "5"
        ("003Dn0000000001", "003Dn0000000001IAA"),  # D at bit 3 -> 8 -> "I"
    ],
)
def test_known_pairs(id15: str, id18: str) -> None:
    assert checksum_suffix(id15) == id18[15:]
    assert _reference_suffix(id15) == id18[15:]
    assert to_18(id15) == id18
    assert to_15(id18) == id15


def test_suffix_is_case_insensitive_and_checked() -> None:
    assert to_18("0016000000Mpyq2aab") == "0016000000Mpyq2AAB"
    with pytest.raises(ValueError, match="checksum"):
        to_18("0016000000Mpyq2AAC")
    assert not is_valid_id("0016000000Mpyq2AAC")
    assert not is_valid_id("short")
    assert not is_valid_id(None)
    assert is_valid_id("0016000000Mpyq2")


def test_make_id_layout_and_order() -> None:
    ids = [make_id("001", n) for n in (1, 2, 61, 62, 63, 3844, 10**6)]
    assert all(len(i) == 18 and i.startswith("001Dn0") for i in ids)
    assert ids == sorted(ids)  # base-62 in ASCII order: creation order == Id order
    assert all(_reference_suffix(i[:15]) == i[15:] for i in ids)


@pytest.mark.parametrize("n", [1, 61, 62, 3843, 3844, 238_327, 238_328, 62**6 + 5, 62**9 - 1])
def test_bulk_ids_match_single(n: int) -> None:
    assert make_ids("003", n, 1) == [make_id("003", n)]


def test_make_ids_range() -> None:
    assert make_ids("005", 1, 3) == [make_id("005", 1), make_id("005", 2), make_id("005", 3)]
