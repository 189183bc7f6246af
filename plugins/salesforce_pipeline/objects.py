"""What the pipeline extracts from each Salesforce object, and where it lands in Postgres."""

from __future__ import annotations

from dataclasses import dataclass

# Fields every run needs, whatever else is configured: the key, the cursor and the delete flag.
REQUIRED_FIELDS = ("Id", "SystemModstamp", "IsDeleted")


@dataclass(frozen=True)
class ObjectSpec:
    """One Salesforce object: its API name, its warehouse table and its default field list."""

    name: str
    table: str
    default_fields: tuple[str, ...]
    key_prefix: str


ACCOUNT = ObjectSpec(
    name="Account",
    table="account",
    key_prefix="001",
    default_fields=(
        "Id",
        "Name",
        "Type",
        "ParentId",
        "Industry",
        "AnnualRevenue",
        "NumberOfEmployees",
        "BillingStreet",
        "BillingCity",
        "BillingState",
        "BillingPostalCode",
        "BillingCountry",
        "ShippingStreet",
        "ShippingCity",
        "ShippingState",
        "ShippingPostalCode",
        "ShippingCountry",
        "Phone",
        "Website",
        "AccountSource",
        "Description",
        "OwnerId",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
)

CONTACT = ObjectSpec(
    name="Contact",
    table="contact",
    key_prefix="003",
    default_fields=(
        "Id",
        "AccountId",
        "Salutation",
        "FirstName",
        "LastName",
        "Name",
        "Email",
        "Title",
        "Department",
        "Phone",
        "MobilePhone",
        "MailingStreet",
        "MailingCity",
        "MailingState",
        "MailingPostalCode",
        "MailingCountry",
        "LeadSource",
        "Birthdate",
        "HasOptedOutOfEmail",
        "Description",
        "OwnerId",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
    ),
)

OBJECTS: dict[str, ObjectSpec] = {spec.name: spec for spec in (ACCOUNT, CONTACT)}


def asset_name(schema: str, table: str) -> str:
    """The Airflow Asset an org's table is published as (`warehouse.salesforce_acme.contact`)."""
    return f"warehouse.{schema}.{table}"


def object_spec(name: str) -> ObjectSpec:
    """The spec for a supported object name, or a clear error listing the supported ones."""
    try:
        return OBJECTS[name]
    except KeyError:
        raise ValueError(
            f"Salesforce object {name!r} is not supported by this pipeline; choose from {sorted(OBJECTS)}"
        ) from None
