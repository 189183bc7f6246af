"""pytest plugin: ``sf_emulator`` and ``sf_emulator_factory`` fixtures.

Enable with ``pytest_plugins = ["salesforce_emulator.pytest_plugin"]``. The CA is created once
per test session; every test gets its own server (own port, own data, own counters) in a few
milliseconds. Inside the fixtures ``REQUESTS_CA_BUNDLE`` points at a bundle holding the
emulator CA plus the system roots, so plain ``requests``/simple-salesforce calls verify TLS.

Options: ``@pytest.mark.emulator(accounts=..., contacts=..., seed=..., **org_options)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from salesforce_emulator.server import Emulator
from salesforce_emulator.tls import CertificateAuthority

__all__ = ["DEFAULT_OPTIONS", "sf_emulator", "sf_emulator_ca", "sf_emulator_factory"]

DEFAULT_OPTIONS: dict[str, Any] = {"accounts": 50, "contacts": 150, "seed": 1234}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``emulator`` marker (harmless if the project registers it too)."""
    config.addinivalue_line(
        "markers", "emulator(**options): options for the sf_emulator fixture (accounts, contacts, seed, ...)"
    )


@pytest.fixture(scope="session")
def sf_emulator_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """One CA for the whole session (``.ca_path``, ``.bundle_path``)."""
    return CertificateAuthority.create(tmp_path_factory.mktemp("sf-emulator-ca"))


@pytest.fixture
def sf_emulator_factory(
    sf_emulator_ca: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Emulator]]:
    """``factory(**options) -> Emulator`` (started); every emulator is stopped after the test."""
    bundle = str(sf_emulator_ca.bundle_path)
    # requests prefers REQUESTS_CA_BUNDLE (then CURL_CA_BUNDLE) over Session.verify, and this
    # machine's environment sets both to the system bundle: point them at one that adds our CA.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, bundle)
    started: list[Emulator] = []

    def factory(**options: Any) -> Emulator:
        merged = {**DEFAULT_OPTIONS, **options}
        emulator = Emulator(ca=sf_emulator_ca, **merged).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


@pytest.fixture
def sf_emulator(request: pytest.FixtureRequest, sf_emulator_factory: Callable[..., Emulator]) -> Emulator:
    """A started emulator: 50 accounts, 150 contacts, seed 1234, unless the ``emulator``
    marker says otherwise."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("emulator"))):
        options.update(marker.kwargs)
    return sf_emulator_factory(**options)
