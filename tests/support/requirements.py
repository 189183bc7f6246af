"""The project's requirement files and the third-party modules its code imports, mapped to the
distributions that provide them (importlib.metadata.packages_distributions())."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "requirements.txt"
EMULATOR = ROOT / "requirements-emulator.txt"
DEV = ROOT / "requirements-dev.txt"
CONSTRAINTS = ROOT / "constraints.txt"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")


def canonical(name: str) -> str:
    """A distribution name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    source: Path


def pins(path: Path, follow: bool = True) -> dict[str, Pin]:
    """Canonical name -> pin, for every `name==version` line (and, with `follow`, the files
    `-r` includes). Any other requirement form fails: every pin is exact."""
    found: dict[str, Pin] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            if follow:
                found.update(pins(path.parent / line[3:].strip()))
            continue
        match = _PIN.match(line)
        if not match:
            raise ValueError(f"{path.name}: {line!r} is not an exact pin (name==version)")
        found[canonical(match.group("name"))] = Pin(match.group("name"), match.group("version"), path)
    return found


def first_party() -> set[str]:
    """Top-level names of this checkout's own code (never a distribution)."""
    names = {p.stem for p in ROOT.iterdir() if p.is_dir() or p.suffix == ".py"}
    names |= {p.stem for p in (ROOT / "plugins").iterdir()}
    # The benchmarks run as scripts, so bench/ is on their path and they import each other by stem.
    names |= {p.stem for p in (ROOT / "bench").glob("*.py")}
    return names | {p.stem for p in (ROOT / "dags").glob("*.py")}


def imported_modules(trees: Iterable[str], skip: Iterable[str] = ()) -> dict[str, set[str]]:
    """Third-party module -> the files importing it, in every .py file under the trees (imports
    inside functions included: heavy ones are deferred there). For `from a.b import c` the module
    is `a.b.c`, which may name a module or just an attribute of `a.b`."""
    skipped = {ROOT / s for s in skip}
    ours = first_party()
    found: dict[str, set[str]] = {}
    for tree in trees:
        for path in sorted((ROOT / tree).rglob("*.py")):
            if path in skipped:
                continue
            for module in _imports(path):
                top = module.split(".")[0]
                if top not in ours and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def _imports(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
    return modules


def distribution_of(module: str) -> str | None:
    """The canonical name of the distribution providing `module`, or None if none is installed.

    packages_distributions() maps a top-level name to its distributions; for a namespace spread
    over several (`airflow`: core, task SDK, each provider), the one whose files hold the
    longest prefix of the dotted name decides.
    """
    candidates = _top_level_map().get(module.split(".")[0], [])
    if len(set(candidates)) <= 1:
        return canonical(candidates[0]) if candidates else None
    parts = module.split(".")
    owners = _module_owners(tuple(sorted(set(candidates))))
    for end in range(len(parts), 0, -1):
        owner = owners.get(".".join(parts[:end]))
        if owner:
            return owner
    return None


@functools.cache
def _top_level_map() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def _module_owners(distributions: tuple[str, ...]) -> dict[str, str]:
    """Dotted module (or package) -> canonical distribution, over those distributions' files;
    a package several of them share (a namespace) belongs to none."""
    owners: dict[str, set[str]] = {}
    for name in distributions:
        for file in importlib.metadata.distribution(name).files or []:
            if file.suffix == ".py" and ".." not in file.parts:
                module = ".".join(file.with_suffix("").parts).removesuffix(".__init__")
                for end in range(1, module.count(".") + 2):
                    owners.setdefault(".".join(module.split(".")[:end]), set()).add(canonical(name))
    return {module: next(iter(names)) for module, names in owners.items() if len(names) == 1}
