"""Object and field metadata (what describe returns) for Account, Contact and User.

Field metadata drives everything else: which fields a SOQL query may select, filter or sort,
how values are stored (wire form) and how they are rendered as JSON and as Bulk CSV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from salesforce_emulator.ids import KEY_PREFIXES

__all__ = [
    "ADDRESS_PARTS",
    "CUSTOM_FIELD_TYPES",
    "SCHEMA",
    "FieldDef",
    "SObjectDef",
    "custom_field",
    "describe_global",
    "describe_sobject",
    "retyped_field",
]

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "picklist": "xsd:string",
    "textarea": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "email": "xsd:string",
    "currency": "xsd:double",
    "double": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
}

STRING_TYPES = frozenset({"string", "picklist", "textarea", "phone", "url", "email"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})

# Components of a compound address, as (JSON key in the address object, field-name suffix).
ADDRESS_PARTS: tuple[tuple[str, str], ...] = (
    ("city", "City"),
    ("country", "Country"),
    ("geocodeAccuracy", ""),
    ("latitude", ""),
    ("longitude", ""),
    ("postalCode", "PostalCode"),
    ("state", "State"),
    ("street", "Street"),
)


@dataclass(frozen=True, slots=True)
class FieldDef:
    """Metadata of one field, in the terms of the REST describe result."""

    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    calculated: bool = False
    custom: bool = False
    filterable: bool = True
    sortable: bool = True
    createable: bool = True
    updateable: bool = True
    name_field: bool = False
    external_id: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    compound_field_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    default_picklist: str | None = None
    extra_type_info: str | None = None
    calculated_formula: str | None = None  # formula fields: the formula as Setup shows it
    # Address compound fields are not stored: they are assembled from their components.
    stored: bool = True
    prefix: str = ""  # address fields: component prefix, e.g. "Billing"

    @property
    def soap_type(self) -> str:
        """The SOAP/XSD type describe reports."""
        return _SOAP_TYPES[self.type]

    @property
    def is_string(self) -> bool:
        """True for field types compared as strings in SOQL."""
        return self.type in STRING_TYPES

    def describe(self) -> dict[str, Any]:
        """Return this field's describe entry (keys as Salesforce returns them, sorted)."""
        is_text = self.type in STRING_TYPES or self.type in ("id", "reference")
        byte_length = self.length * 3 if is_text else 0
        aggregatable = self.type not in ("textarea", "address", "boolean") or (
            self.type == "textarea" and self.length <= 255
        )
        groupable = self.filterable and self.type not in ("double", "currency", "percent", "datetime")
        return {
            "aggregatable": aggregatable,
            "aiPredictionField": False,
            "autoNumber": False,
            "byteLength": byte_length,
            "calculated": self.calculated,
            "calculatedFormula": self.calculated_formula,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": self.compound_field_name,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.type == "boolean"
            or self.name in _AUDIT_FIELDS
            or self.name == "OwnerId",
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": self.digits,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": self.extra_type_info,
            "filterable": self.filterable,
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": groupable,
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.type == "email",
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": False,
            "nillable": self.nillable,
            "permissionable": self.nillable and self.custom,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default_picklist,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist_values
            ],
            "polymorphicForeignKey": False,
            "precision": self.precision,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": False,
            "scale": self.scale,
            "searchPrefilterable": self.type == "reference",
            "soapType": self.soap_type,
            "sortable": self.sortable,
            "type": self.type,
            "unique": False,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


_AUDIT_FIELDS = frozenset(
    {"CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"}
)


@dataclass(slots=True)
class SObjectDef:
    """An sObject: its describe-level attributes and ordered fields."""

    name: str
    label: str
    label_plural: str
    fields: list[FieldDef]
    child_relationships: list[dict[str, Any]] = field(default_factory=list)
    key_prefix: str = ""
    storage: list[str] = field(default_factory=list)  # stored field names, tuple order
    # Calculated fields are not stored: a query that needs them extends each row it reads with
    # their values, in this order, after the stored ones (see Org.execute).
    calculated_names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)  # field name -> index in a (extended) row
    layout: tuple[Any, ...] = ()  # what renderers depend on: names and types, in row order
    by_lower: dict[str, FieldDef] = field(default_factory=dict)  # lower-case name -> field
    relationships: dict[str, FieldDef] = field(default_factory=dict)  # lower rel name -> ref field

    def __post_init__(self) -> None:
        self.key_prefix = KEY_PREFIXES[self.name]
        self.storage = [f.name for f in self.fields if f.stored]
        self.calculated_names = [f.name for f in self.fields if f.calculated]
        self.index = {name: i for i, name in enumerate([*self.storage, *self.calculated_names])}
        by_name = {f.name: f for f in self.fields}
        self.layout = (
            self.name,
            tuple((name, by_name[name].type) for name in (*self.storage, *self.calculated_names)),
        )
        self.by_lower = {f.name.lower(): f for f in self.fields}
        self.relationships = {
            f.relationship_name.lower(): f for f in self.fields if f.relationship_name is not None
        }
        # Id first is an invariant the renderers and the store rely on.
        assert self.storage[0] == "Id"

    def field(self, name: str) -> FieldDef:
        """Return a field by (case-insensitive) name; KeyError if it does not exist."""
        return self.by_lower[name.lower()]

    @property
    def has_is_deleted(self) -> bool:
        """Whether records of this object can be soft-deleted (User cannot)."""
        return "IsDeleted" in self.index

    def evolve(self, fields: list[FieldDef]) -> SObjectDef:
        """The same object with another field list (schema changes make new definitions)."""
        return SObjectDef(
            self.name, self.label, self.label_plural, list(fields), list(self.child_relationships)
        )


def _id_field(label: str) -> FieldDef:
    return FieldDef("Id", label, "id", length=18, nillable=False, createable=False, updateable=False)


def _is_deleted() -> FieldDef:
    return FieldDef("IsDeleted", "Deleted", "boolean", nillable=False, createable=False, updateable=False)


def _ref(
    name: str, label: str, target: str, rel: str, *, nillable: bool = True, system: bool = False
) -> FieldDef:
    return FieldDef(
        name,
        label,
        "reference",
        length=18,
        nillable=nillable,
        reference_to=(target,),
        relationship_name=rel,
        createable=not system,
        updateable=not system,
    )


def _s(name: str, label: str, length: int, **kw: Any) -> FieldDef:
    return FieldDef(name, label, "string", length=length, **kw)


def _pick(name: str, label: str, values: tuple[str, ...], **kw: Any) -> FieldDef:
    return FieldDef(name, label, "picklist", length=255, picklist_values=values, **kw)


def _address(prefix: str, label: str, street_label: str) -> list[FieldDef]:
    compound = f"{prefix}Address"
    return [
        FieldDef(
            f"{prefix}Street",
            street_label,
            "textarea",
            length=255,
            compound_field_name=compound,
            extra_type_info="plaintextarea",
        ),
        _s(f"{prefix}City", f"{label} City", 40, compound_field_name=compound),
        _s(f"{prefix}State", f"{label} State/Province", 80, compound_field_name=compound),
        _s(f"{prefix}PostalCode", f"{label} Zip/Postal Code", 20, compound_field_name=compound),
        _s(f"{prefix}Country", f"{label} Country", 80, compound_field_name=compound),
        FieldDef(
            compound,
            f"{label} Address",
            "address",
            filterable=False,
            sortable=False,
            createable=False,
            updateable=False,
            stored=False,
            prefix=prefix,
        ),
    ]


def _audit() -> list[FieldDef]:
    def dt(name: str, label: str) -> FieldDef:
        return FieldDef(name, label, "datetime", nillable=False, createable=False, updateable=False)

    return [
        dt("CreatedDate", "Created Date"),
        _ref("CreatedById", "Created By ID", "User", "CreatedBy", nillable=False, system=True),
        dt("LastModifiedDate", "Last Modified Date"),
        _ref(
            "LastModifiedById", "Last Modified By ID", "User", "LastModifiedBy", nillable=False, system=True
        ),
        dt("SystemModstamp", "System Modstamp"),
    ]


def _long_text(name: str, label: str) -> FieldDef:
    # Long text areas can be neither filtered nor sorted in SOQL.
    return FieldDef(name, label, "textarea", length=32000, filterable=False, sortable=False)


ACCOUNT_TYPES = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Installation Partner",
    "Technology Partner",
    "Other",
)
INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
)
SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
TIERS = ("Gold", "Silver", "Bronze")
SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", "Mx.")
CHANNELS = ("Email", "Phone", "SMS", "In Person")

ACCOUNT = SObjectDef(
    "Account",
    "Account",
    "Accounts",
    [
        _id_field("Account ID"),
        _is_deleted(),
        _ref("MasterRecordId", "Master Record ID", "Account", "MasterRecord", system=True),
        _s("Name", "Account Name", 255, nillable=False, name_field=True),
        _pick("Type", "Account Type", ACCOUNT_TYPES),
        _ref("ParentId", "Parent Account ID", "Account", "Parent"),
        *_address("Billing", "Billing", "Billing Street"),
        *_address("Shipping", "Shipping", "Shipping Street"),
        FieldDef("Phone", "Account Phone", "phone", length=40),
        FieldDef("Fax", "Account Fax", "phone", length=40),
        FieldDef("Website", "Website", "url", length=255),
        _pick("Industry", "Industry", INDUSTRIES),
        FieldDef("AnnualRevenue", "Annual Revenue", "currency", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "Employees", "int", digits=8),
        _long_text("Description", "Account Description"),
        _ref("OwnerId", "Owner ID", "User", "Owner", nillable=False),
        *_audit(),
        _pick("AccountSource", "Account Source", SOURCES),
        FieldDef("Health_Score__c", "Health Score", "double", precision=5, scale=2, custom=True),
        _pick("Tier__c", "Tier", TIERS, custom=True),
        FieldDef("Onboarded_On__c", "Onboarded On", "date", custom=True),
    ],
    child_relationships=[
        {"childSObject": "Account", "field": "ParentId", "relationshipName": "ChildAccounts"},
        {"childSObject": "Contact", "field": "AccountId", "relationshipName": "Contacts"},
    ],
)

CONTACT = SObjectDef(
    "Contact",
    "Contact",
    "Contacts",
    [
        _id_field("Contact ID"),
        _is_deleted(),
        _ref("MasterRecordId", "Master Record ID", "Contact", "MasterRecord", system=True),
        _ref("AccountId", "Account ID", "Account", "Account"),
        _s("LastName", "Last Name", 80, nillable=False),
        _s("FirstName", "First Name", 40),
        _pick("Salutation", "Salutation", SALUTATIONS),
        _s("Name", "Full Name", 121, nillable=False, name_field=True, createable=False, updateable=False),
        *_address("Mailing", "Mailing", "Mailing Street"),
        FieldDef("Phone", "Business Phone", "phone", length=40),
        FieldDef("MobilePhone", "Mobile Phone", "phone", length=40),
        FieldDef("Email", "Email", "email", length=80),
        _s("Title", "Title", 128),
        _s("Department", "Department", 80),
        _pick("LeadSource", "Lead Source", SOURCES),
        FieldDef("Birthdate", "Birthdate", "date"),
        _long_text("Description", "Contact Description"),
        _ref("OwnerId", "Owner ID", "User", "Owner", nillable=False),
        FieldDef("HasOptedOutOfEmail", "Email Opt Out", "boolean", nillable=False),
        *_audit(),
        FieldDef("NPS__c", "NPS", "double", precision=2, scale=0, custom=True),
        _pick("Preferred_Channel__c", "Preferred Channel", CHANNELS, custom=True),
        FieldDef("Is_Champion__c", "Is Champion", "boolean", nillable=False, custom=True),
    ],
)

USER = SObjectDef(
    "User",
    "User",
    "Users",
    [
        _id_field("User ID"),
        _s("Username", "Username", 80, nillable=False),
        _s("LastName", "Last Name", 80, nillable=False),
        _s("FirstName", "First Name", 40),
        _s("Name", "Full Name", 121, nillable=False, name_field=True, createable=False, updateable=False),
        FieldDef("Email", "Email", "email", length=128, nillable=False),
        FieldDef("IsActive", "Active", "boolean", nillable=False),
        *_audit(),
    ],
)

SCHEMA: dict[str, SObjectDef] = {s.name: s for s in (ACCOUNT, CONTACT, USER)}
SCHEMA_BY_LOWER: dict[str, SObjectDef] = {name.lower(): s for name, s in SCHEMA.items()}

# ---------------------------------------------------------------------------------------------
# Custom fields added at run time (the admin API's add_field / retype_field)

# Field types an admin can give a custom field, as describe names them.
CUSTOM_FIELD_TYPES = (
    "string",
    "textarea",
    "picklist",
    "email",
    "phone",
    "url",
    "boolean",
    "int",
    "double",
    "currency",
    "percent",
    "date",
    "datetime",
)
_FIXED_LENGTHS = {"email": 80, "phone": 40, "url": 255, "picklist": 255}
_CUSTOM_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")
MAX_TEXT_LENGTH = 255
MAX_LONG_TEXT_LENGTH = 131_072
MAX_PRECISION = 18


def check_custom_name(name: str) -> None:
    """Raise ValueError unless *name* is a valid custom field API name (``Foo_Bar__c``)."""
    if not isinstance(name, str) or not name.endswith("__c"):
        raise ValueError(f"a custom field name ends with __c: {name!r}")
    base = name[:-3]
    if len(base) > 40 or not _CUSTOM_NAME_RE.fullmatch(base):
        raise ValueError(
            f"invalid custom field name {name!r}: a letter, then letters, digits and single "
            "underscores (at most 40 characters before __c)"
        )


def custom_field(
    name: str,
    type: str,
    *,
    label: str | None = None,
    length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
    picklist_values: tuple[str, ...] | list[str] | None = None,
) -> FieldDef:
    """A custom field's metadata as Salesforce describes a field of that type.

    ``string`` (length 1-255, default 255), ``textarea`` (up to 255; longer is a Long Text Area,
    up to 131,072, which SOQL can neither filter nor sort), ``picklist`` (values required),
    ``email`` / ``phone`` / ``url`` (fixed lengths 80 / 40 / 255), ``boolean`` (never null),
    ``int`` (``precision`` = digits, default 9), ``double`` / ``currency`` / ``percent``
    (``precision`` total digits <= 18, default 18; ``scale`` default 0 for double, 2 otherwise),
    ``date``, ``datetime``. Raises ValueError on anything Salesforce would refuse.
    """
    check_custom_name(name)
    if type not in CUSTOM_FIELD_TYPES:
        raise ValueError(f"unsupported field type {type!r}; one of {', '.join(CUSTOM_FIELD_TYPES)}")
    label = label or name[:-3].replace("_", " ")
    common: dict[str, Any] = {"custom": True}
    if type in ("string", "textarea"):
        top = MAX_LONG_TEXT_LENGTH if type == "textarea" else MAX_TEXT_LENGTH
        size = MAX_TEXT_LENGTH if length is None else length
        if not isinstance(size, int) or not 1 <= size <= top:
            raise ValueError(f"{name}: length of a {type} field is 1..{top}, got {length!r}")
        if type == "textarea":
            long_text = size > MAX_TEXT_LENGTH
            return FieldDef(
                name,
                label,
                type,
                length=size,
                filterable=not long_text,
                sortable=not long_text,
                extra_type_info="plaintextarea",
                **common,
            )
        return FieldDef(name, label, type, length=size, **common)
    if type in _FIXED_LENGTHS:
        values: tuple[str, ...] = ()
        if type == "picklist":
            values = tuple(picklist_values or ())
            if not values or not all(isinstance(v, str) and v for v in values):
                raise ValueError(f"{name}: a picklist needs its values (non-empty strings)")
        return FieldDef(name, label, type, length=_FIXED_LENGTHS[type], picklist_values=values, **common)
    if type == "boolean":
        return FieldDef(name, label, type, nillable=False, **common)
    if type == "int":
        digits = 9 if precision is None else precision
        if not isinstance(digits, int) or not 1 <= digits <= MAX_PRECISION:
            raise ValueError(f"{name}: digits of an int field are 1..{MAX_PRECISION}")
        return FieldDef(name, label, type, digits=digits, **common)
    if type in NUMBER_TYPES:
        total = MAX_PRECISION if precision is None else precision
        places = (0 if type == "double" else 2) if scale is None else scale
        if not isinstance(total, int) or not 1 <= total <= MAX_PRECISION:
            raise ValueError(f"{name}: precision is 1..{MAX_PRECISION}, got {precision!r}")
        if not isinstance(places, int) or not 0 <= places <= total:
            raise ValueError(f"{name}: scale is 0..precision ({total}), got {scale!r}")
        return FieldDef(name, label, type, precision=total, scale=places, **common)
    return FieldDef(name, label, type, **common)  # date, datetime


def retyped_field(
    old: FieldDef,
    type: str | None = None,
    *,
    length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
    picklist_values: tuple[str, ...] | list[str] | None = None,
) -> FieldDef:
    """*old* with a new type and/or size; what is not given is kept when it still applies."""
    new_type = type or old.type
    if length is None and new_type in STRING_TYPES and old.type in STRING_TYPES:
        # A text type keeps its length where the new type allows it (string: at most 255).
        length = old.length if new_type == "textarea" else min(old.length, MAX_TEXT_LENGTH)
    if new_type in NUMBER_TYPES and old.type in NUMBER_TYPES:
        if new_type == "int":
            precision = old.digits or old.precision if precision is None else precision
        elif old.type != "int":
            precision = old.precision if precision is None else precision
            scale = old.scale if scale is None else scale
        # int -> a decimal type: the decimal type's defaults (18 digits) hold every int.
    if picklist_values is None and new_type == "picklist" and old.type == "picklist":
        picklist_values = old.picklist_values
    new = custom_field(
        old.name,
        new_type,
        label=old.label,
        length=length if new_type in ("string", "textarea") else None,
        precision=precision,
        scale=scale,
        picklist_values=picklist_values,
    )
    return replace(new, external_id=old.external_id)


def _urls(name: str, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "uiDetailTemplate": "https://emulator.invalid/{ID}",
        "uiEditTemplate": "https://emulator.invalid/{ID}/e",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "listviews": f"{base}/listviews",
        "describe": f"{base}/describe",
        "uiNewRecord": f"https://emulator.invalid/{SCHEMA[name].key_prefix}/e",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def _object_flags(sobject: SObjectDef, version: str) -> dict[str, Any]:
    is_user = sobject.name == "User"
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": True,
        "custom": False,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": not is_user,
        "deprecatedAndHidden": False,
        "feedEnabled": True,
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": sobject.key_prefix,
        "label": sobject.label,
        "labelPlural": sobject.label_plural,
        "layoutable": True,
        "mergeable": not is_user,
        "mruEnabled": True,
        "name": sobject.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": not is_user,
        "updateable": True,
        "urls": _urls(sobject.name, version),
    }


def describe_global(version: str) -> dict[str, Any]:
    """Return the ``GET /sobjects`` body."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [_object_flags(s, version) for s in SCHEMA.values()],
    }


def describe_sobject(sobject: SObjectDef, version: str, hidden: frozenset[str]) -> dict[str, Any]:
    """Return the ``GET /sobjects/{name}/describe`` body, without the fields in *hidden*."""
    body = _object_flags(sobject, version)
    body.update(
        {
            "actionOverrides": [],
            "childRelationships": [
                {
                    "cascadeDelete": rel["childSObject"] == "Contact",
                    "childSObject": rel["childSObject"],
                    "deprecatedAndHidden": False,
                    "field": rel["field"],
                    "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                    "relationshipName": rel["relationshipName"],
                    "restrictedDelete": False,
                }
                for rel in sobject.child_relationships
            ],
            "compactLayoutable": True,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [f.describe() for f in sobject.fields if f.name not in hidden],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                    "urls": {
                        "layout": f"/services/data/v{version}/sobjects/{sobject.name}"
                        "/describe/layouts/012000000000000AAA"
                    },
                }
            ],
            "searchLayoutable": True,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [
                {"label": "All " + sobject.label_plural.lower(), "name": "everything"},
                {"label": "My " + sobject.label_plural.lower(), "name": "mine"},
            ],
        }
    )
    return dict(sorted(body.items()))
