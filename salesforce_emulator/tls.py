"""Certificates: a private CA (trustme) and per-server leaf certificates.

The CA is what clients must trust. Creating it once and issuing a cheap leaf certificate per
server is what makes per-test servers start in milliseconds.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

import trustme

__all__ = ["CertificateAuthority"]


def _system_bundle() -> Path | None:
    """The CA bundle requests would otherwise use (env first, then certifi, then OpenSSL's)."""
    for env in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(env)
        if value and Path(value).is_file():
            return Path(value)
    try:
        import certifi

        return Path(certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with requests
        cafile = ssl.get_default_verify_paths().cafile
        return Path(cafile) if cafile else None


class CertificateAuthority:
    """A CA whose PEM lives in ``ca_path``; ``bundle_path`` is that CA plus the system roots.

    Point ``REQUESTS_CA_BUNDLE`` at ``bundle_path`` to trust the emulator without distrusting
    every other HTTPS server.
    """

    def __init__(self, ca: trustme.CA, directory: Path):
        self.ca = ca
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "emulator-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        self.bundle_path = directory / "emulator-ca-bundle.pem"
        system = _system_bundle()
        parts = [self.ca_path.read_bytes()]
        if system is not None and system.resolve() != self.bundle_path.resolve():
            parts.append(system.read_bytes())
        self.bundle_path.write_bytes(b"\n".join(parts))

    @classmethod
    def create(cls, directory: str | Path | None = None) -> CertificateAuthority:
        """A new CA, written into *directory* (default: a fresh temporary directory)."""
        path = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="sf-emulator-"))
        return cls(trustme.CA(organization_name="Salesforce Emulator"), path)

    @classmethod
    def load_or_create(cls, directory: str | Path) -> CertificateAuthority:
        """Reuse the CA kept in *directory* (so clients keep trusting it across restarts)."""
        path = Path(directory)
        cert, key = path / "emulator-ca.pem", path / "emulator-ca.key"
        if cert.is_file() and key.is_file():
            return cls(trustme.CA.from_pem(cert.read_bytes(), key.read_bytes()), path)
        authority = cls.create(path)
        authority.ca.private_key_pem.write_to_path(str(key))
        os.chmod(key, 0o600)
        return authority

    def server_context(self, hostnames: Iterable[str]) -> ssl.SSLContext:
        """A server-side SSL context with a fresh leaf certificate for *hostnames*."""
        names = list(dict.fromkeys(h for h in hostnames if h))
        leaf = self.ca.issue_cert(*names, common_name=names[0] if names else None)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        leaf.configure_cert(ctx)
        return ctx
