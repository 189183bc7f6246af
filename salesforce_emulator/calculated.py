"""Calculated fields: formula and roll-up summary fields, computed when a query reads them.

Salesforce stores no formula value: it is evaluated whenever a record is read, so it changes when
its inputs change elsewhere (a parent record, a custom setting, a related record) while the
record's own ``SystemModstamp`` stays put. The emulator does the same: a query that selects (or
filters or sorts on) a calculated field extends every row it reads with the field's value,
computed at that moment (see ``Org.execute``); nothing is stored, nothing is stamped.

Built-in calculated fields (``Org(calculated_fields=True)``, or one at a time with
``Org.add_calculated_field``):

* ``Account.Number_of_Contacts__c`` -- roll-up summary, COUNT of the Account's Contacts that are
  not in the recycle bin (double 18,0).
* ``Account.Tier_Score__c`` -- ``CASE(TEXT(Tier__c), ...) * $Setup.Scoring__c.Tier_Weight__c +
  Scorecard__r.Points__c`` (double 18,2).
* ``Contact.Full_Name__c`` -- ``FirstName & " " & LastName`` (formula text).
* ``Contact.Account_Tier__c`` -- ``TEXT(Account.Tier__c)``, a cross-object formula.
* ``Contact.Engagement_Score__c`` -- ``BLANKVALUE(NPS__c, 0) * $Setup.Scoring__c.NPS_Weight__c +
  Scorecard__r.Points__c`` (double 18,2).

``$Setup.Scoring__c`` is an org-wide custom setting (``Org.set_custom_setting``: every formula
value that reads it changes at once). ``Scorecard__r`` stands for a related record per Account
and per Contact that the integration user cannot query (its object and lookup are not exposed);
``Org.change_calculated_values`` edits the scorecards of exactly the records it is given, which
changes exactly those records' scores -- the per-record case of a formula changing without
``SystemModstamp``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from salesforce_emulator.schema import FieldDef, SObjectDef, custom_field

__all__ = [
    "BUILTIN_CALCULATIONS",
    "DEFAULT_CUSTOM_SETTINGS",
    "Calculation",
    "formula_calculation",
]

Row = tuple[Any, ...]
RowFunction = Callable[[Row], Any]

# Formula text fields: Salesforce describes them with length 1300.
FORMULA_TEXT_LENGTH = 1300
TIER_POINTS = {"Gold": 3.0, "Silver": 2.0, "Bronze": 1.0}
DEFAULT_CUSTOM_SETTINGS: dict[str, float] = {"Tier_Weight__c": 1.0, "NPS_Weight__c": 1.0}


@dataclass(frozen=True, slots=True)
class Calculation:
    """How one calculated field gets its value.

    ``build(sobject, org)`` is called once per query that needs the field, under the org lock,
    and returns ``value(row)`` for stored rows of *sobject* (its current layout). ``inputs``
    are the ``(object, field)`` pairs the value reads: like Salesforce, the emulator refuses to
    delete or retype a field a formula references. ``scorecard`` marks formulas reading
    ``Scorecard__r.Points__c``.
    """

    field: FieldDef
    inputs: tuple[tuple[str, str], ...]
    build: Callable[[SObjectDef, Any], RowFunction]
    scorecard: bool = False


def _calc_field(name: str, label: str, type: str, formula: str | None, **kw: Any) -> FieldDef:
    return FieldDef(
        name,
        label,
        type,
        calculated=True,
        custom=True,
        stored=False,
        createable=False,
        updateable=False,
        calculated_formula=formula,
        **kw,
    )


def _number_of_contacts(sobject: SObjectDef, org: Any) -> RowFunction:
    counts = org.live_child_counts("Contact", "AccountId")
    get = counts.get
    return lambda row: float(get(row[0], 0))


def _tier_score(sobject: SObjectDef, org: Any) -> RowFunction:
    tier = sobject.index["Tier__c"]
    weight = float(org.custom_settings["Tier_Weight__c"])
    points = org.scorecard_points("Account").get
    return lambda row: round(TIER_POINTS.get(row[tier], 0.0) * weight + points(row[0], 0.0), 2)


def _full_name(sobject: SObjectDef, org: Any) -> RowFunction:
    first, last = sobject.index["FirstName"], sobject.index["LastName"]
    return lambda row: (row[first] or "") + " " + (row[last] or "")


def _account_tier(sobject: SObjectDef, org: Any) -> RowFunction:
    # A cross-object formula reads the parent as the record is read; a parent in the recycle
    # bin reads as blank (and a blank formula text is null).
    tiers = org.live_values("Account", "Tier__c").get
    account = sobject.index["AccountId"]
    return lambda row: tiers(row[account])


def _engagement_score(sobject: SObjectDef, org: Any) -> RowFunction:
    nps = sobject.index["NPS__c"]
    weight = float(org.custom_settings["NPS_Weight__c"])
    scorecards = org.scorecard_points("Contact")
    if weight == 1.0 and not scorecards:
        return lambda row: row[nps] or 0.0  # NPS__c has scale 0: nothing to round (the usual case)
    points = scorecards.get
    return lambda row: round((row[nps] or 0.0) * weight + points(row[0], 0.0), 2)


def _score_field(name: str, label: str, formula: str) -> FieldDef:
    return _calc_field(name, label, "double", formula, precision=18, scale=2)


def _text_formula_field(name: str, label: str, formula: str) -> FieldDef:
    return _calc_field(name, label, "string", formula, length=FORMULA_TEXT_LENGTH)


BUILTIN_CALCULATIONS: dict[tuple[str, str], Calculation] = {
    ("Account", "Number_of_Contacts__c"): Calculation(
        _calc_field("Number_of_Contacts__c", "Number of Contacts", "double", None, precision=18, scale=0),
        (("Contact", "AccountId"), ("Contact", "IsDeleted")),
        _number_of_contacts,
    ),
    ("Account", "Tier_Score__c"): Calculation(
        _score_field(
            "Tier_Score__c",
            "Tier Score",
            'CASE(TEXT(Tier__c), "Gold", 3, "Silver", 2, "Bronze", 1, 0)'
            " * $Setup.Scoring__c.Tier_Weight__c + Scorecard__r.Points__c",
        ),
        (("Account", "Tier__c"),),
        _tier_score,
        scorecard=True,
    ),
    ("Contact", "Full_Name__c"): Calculation(
        _text_formula_field("Full_Name__c", "Full Name", 'FirstName & " " & LastName'),
        (("Contact", "FirstName"), ("Contact", "LastName")),
        _full_name,
    ),
    ("Contact", "Account_Tier__c"): Calculation(
        _text_formula_field("Account_Tier__c", "Account Tier", "TEXT(Account.Tier__c)"),
        (("Contact", "AccountId"), ("Account", "Tier__c")),
        _account_tier,
    ),
    ("Contact", "Engagement_Score__c"): Calculation(
        _score_field(
            "Engagement_Score__c",
            "Engagement Score",
            "BLANKVALUE(NPS__c, 0) * $Setup.Scoring__c.NPS_Weight__c + Scorecard__r.Points__c",
        ),
        (("Contact", "NPS__c"),),
        _engagement_score,
        scorecard=True,
    ),
}


def formula_calculation(
    name: str,
    type: str,
    formula: Callable[[Mapping[str, Any]], Any],
    *,
    calculated_formula: str,
    label: str | None = None,
    length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
) -> Calculation:
    """A formula field computed by a Python function of the record (a dict of its stored fields,
    wire form); *calculated_formula* is the text describe shows. In-process tests only."""
    base = custom_field(
        name,
        type,
        label=label,
        length=length if type in ("string", "textarea") else None,
        precision=precision,
        scale=scale,
        picklist_values=("x",) if type == "picklist" else None,
    )
    if type not in ("string", "double", "currency", "percent", "int", "boolean", "date", "datetime"):
        raise ValueError(f"a formula returns text, a number, a checkbox, a date or a datetime, not {type}")
    field = replace(
        base,
        calculated=True,
        stored=False,
        createable=False,
        updateable=False,
        nillable=True,
        calculated_formula=calculated_formula,
        length=FORMULA_TEXT_LENGTH if type == "string" and length is None else base.length,
    )

    def build(sobject: SObjectDef, org: Any) -> RowFunction:
        names = sobject.storage
        return lambda row: formula(dict(zip(names, row, strict=False)))

    return Calculation(field, (), build)
