"""A Salesforce API emulator: real HTTPS, SOAP + OAuth login, REST query, describe, Bulk 2.0.

It is driven by the unmodified simple-salesforce client exactly as against Salesforce, and has
an admin API (in-process and over HTTP) for data changes, the clock and fault injection.

    from salesforce_emulator import Emulator

    with Emulator(accounts=100, contacts=300, seed=7) as emu:
        sf = emu.salesforce()          # logged in via OAuth client credentials
        sf.query_all("SELECT Id, Name FROM Account")
"""

from __future__ import annotations

from salesforce_emulator.auth import DEMO_CONNECTED_APP, DEMO_USER, ConnectedApp, Credentials, UserLogin
from salesforce_emulator.faults import FAULT_KINDS, Fault
from salesforce_emulator.ids import checksum_suffix, is_valid_id, make_id, to_15, to_18
from salesforce_emulator.server import ENDPOINT_KINDS, Emulator
from salesforce_emulator.soql import SoqlError
from salesforce_emulator.store import Org
from salesforce_emulator.tls import CertificateAuthority

OrgConfig = Org  # the org's options are its constructor keywords (see Org)

__all__ = [
    "DEMO_CONNECTED_APP",
    "DEMO_USER",
    "ENDPOINT_KINDS",
    "FAULT_KINDS",
    "CertificateAuthority",
    "ConnectedApp",
    "Credentials",
    "Emulator",
    "Fault",
    "Org",
    "OrgConfig",
    "SoqlError",
    "UserLogin",
    "checksum_suffix",
    "is_valid_id",
    "make_id",
    "to_15",
    "to_18",
]
