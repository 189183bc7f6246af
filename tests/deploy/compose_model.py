"""Just enough of Compose's file model to check our files without a Docker engine.

Loads the YAML (anchors and `<<` merge keys included), resolves `extends`, layers an override
file over a base file the way `docker compose -f a -f b` does for the keys we use, and finds
`${VAR}` interpolations. It is deliberately small: it models what our compose files rely on,
and the tests fail loudly if a file starts using something it does not model.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE_FILE = ROOT / "docker-compose.yaml"
CELERY_FILE = ROOT / "docker-compose.celery.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`,
# `${NAME:+alt}`, and the unbraced `$NAME`; `$$` is a literal dollar and is removed first.
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

# Keys merged mapping-by-mapping when one definition is layered over another; every other key
# is replaced (command, entrypoint, healthcheck.test, ...), as Compose does.
_MAPPING_KEYS = {"environment", "depends_on", "labels", "healthcheck", "build", "deploy"}


def load(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: top level is not a mapping")
    return data


def as_env_dict(env: Any) -> dict[str, Any]:
    """`environment` in either form (mapping or list of KEY=VALUE) as a mapping."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return dict(env)
    result: dict[str, Any] = {}
    for item in env:
        key, _, value = str(item).partition("=")
        result[key] = value
    return result


def as_depends_dict(depends: Any) -> dict[str, dict[str, Any]]:
    """`depends_on` in either form; the short list form means `condition: service_started`."""
    if depends is None:
        return {}
    if isinstance(depends, list):
        return {name: {"condition": "service_started"} for name in depends}
    return {name: dict(spec or {"condition": "service_started"}) for name, spec in depends.items()}


def volume_target(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry["target"])
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def volume_source(entry: Any) -> str | None:
    if isinstance(entry, dict):
        return entry.get("source")
    parts = str(entry).split(":")
    return parts[0] if len(parts) > 1 else None


def is_bind(source: str | None) -> bool:
    # Compose treats a source starting with `.`, `/` or `~` as a host path, anything else as a
    # named volume.
    return source is not None and source.startswith((".", "/", "~"))


def merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key == "environment":
            merged[key] = {**as_env_dict(merged.get(key)), **as_env_dict(value)}
        elif key == "depends_on":
            merged[key] = {**as_depends_dict(merged.get(key)), **as_depends_dict(value)}
        elif key == "volumes":
            by_target = {volume_target(v): v for v in merged.get(key, [])}
            by_target.update({volume_target(v): v for v in value})
            merged[key] = list(by_target.values())
        elif key in _MAPPING_KEYS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_extends(services: dict[str, Any], name: str, directory: Path) -> dict[str, Any]:
    service = services[name]
    extends = service.get("extends")
    if not extends:
        return copy.deepcopy(service)
    if isinstance(extends, str):
        extends = {"service": extends}
    if "file" in extends:
        other = load(directory / extends["file"])["services"]
        base = resolve_extends(other, extends["service"], directory)
    else:
        base = resolve_extends(services, extends["service"], directory)
    # Compose never inherits depends_on (nor volumes_from) through extends.
    base.pop("depends_on", None)
    base.pop("volumes_from", None)
    own = {k: v for k, v in service.items() if k != "extends"}
    return merge_service(base, own)


def project(*paths: Path) -> dict[str, Any]:
    """The files layered in order, like `docker compose -f first -f second ...`."""
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for path in paths:
        data = load(path)
        for name in data.get("services", {}):
            resolved = resolve_extends(data["services"], name, path.parent)
            services[name] = merge_service(services[name], resolved) if name in services else resolved
        volumes.update(data.get("volumes") or {})
    for service in services.values():
        if "environment" in service:
            service["environment"] = as_env_dict(service["environment"])
        if "depends_on" in service:
            service["depends_on"] = as_depends_dict(service["depends_on"])
    return {"services": services, "volumes": volumes}


def strings(node: Any) -> Iterator[str]:
    """Every string (keys and values) anywhere in a loaded YAML document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def interpolations(text: str) -> list[tuple[str, bool]]:
    """(variable, has a default) for each interpolation in `text`; `$$` escapes are ignored."""
    text = text.replace("$$", "")
    found = [(m.group(1), m.group(2) in (":-", "-")) for m in _BRACED.finditer(text)]
    bare = _BRACED.sub("", text)
    found += [(m.group(1), False) for m in _BARE.finditer(bare)]
    return found


def documented_env_keys(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY → value for every `KEY=value` line of an env file, commented-out examples included."""
    keys: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*#?\s*([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if match:
            keys.setdefault(match.group(1), match.group(2))
    return keys
