"""Remove each protection once and show that a test fails without it.

    make mutations                           # every mutation
    make mutations MUTATIONS_ARGS="-k lock"  # the ones whose name contains "lock"
    python -m tools.mutations --check        # only check that every mutation still applies

Each mutation edits one file in a throwaway copy of the repository (never this checkout), runs
the tests that guard the protection there, and expects them to FAIL. A mutation whose tests
still pass is a survivor: a protection no test proves. The command exits non-zero when any
survives, or when a mutation no longer applies to the code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.mutations.catalogue import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]
HANG_SECONDS = 180
COPIED = ("dags", "plugins", "include", "tests", "salesforce_emulator", "pyproject.toml", "tools")


def mutated_text(mutation: Mutation, text: str) -> str:
    """``text`` with the mutation's edits made; SystemExit when one does not apply exactly once."""
    for old, new in ((mutation.old, mutation.new), *mutation.more):
        if text.count(old) != 1:
            raise SystemExit(f"{mutation.name}: the code to remove is not in {mutation.path} exactly once")
        text = text.replace(old, new)
    return text


def copy_repository(target: Path) -> None:
    """Copy what the tests need into ``target``."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
            )
        else:
            shutil.copy2(source, target / name)


def problems(mutations: tuple[Mutation, ...] = MUTATIONS) -> list[str]:
    """Why mutations cannot run as written: an edit that does not apply, or a test file that is gone."""
    found = []
    for mutation in mutations:
        try:
            mutated_text(mutation, (ROOT / mutation.path).read_text())
        except (SystemExit, FileNotFoundError) as exc:
            found.append(str(exc))
        for test in mutation.tests:
            if not (ROOT / test.split("::", 1)[0]).exists():
                found.append(f"{mutation.name}: no test file {test.split('::', 1)[0]}")
    names = [mutation.name for mutation in mutations]
    found += [
        f"two mutations are named {name!r}" for name in sorted({n for n in names if names.count(n) > 1})
    ]
    return found


def run(mutation: Mutation, env: dict[str, str]) -> tuple[str, float, str]:
    """(verdict, seconds, last line of pytest's output) for one mutation, in a fresh copy.

    The verdict is "killed" when a test failed (pytest exit status 1) or the tests hung,
    "survived" when they passed, and "error" when pytest could not run them as asked.
    """
    with tempfile.TemporaryDirectory(prefix="sfpipe-mutation-") as scratch:
        copy = Path(scratch)
        copy_repository(copy)
        path = copy / mutation.path
        path.write_text(mutated_text(mutation, path.read_text()))
        started = time.monotonic()
        # A protection against waiting forever, once removed, makes its test wait forever (and
        # Airflow's own execution_timeout alarm displaces pytest-timeout's): a run still going
        # after HANG_SECONDS has not passed, which is what this command asks.
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutation.tests],
                cwd=copy,
                env={**env, "PYTHONPATH": os.pathsep.join([str(copy / "plugins"), str(copy)])},
                capture_output=True,
                text=True,
                check=False,
                timeout=HANG_SECONDS,
            )
        except subprocess.TimeoutExpired:
            return "killed", time.monotonic() - started, f"still waiting after {HANG_SECONDS} s: stopped"
        tail = [line for line in result.stdout.splitlines() if line.strip()][-1:] or ["(no output)"]
        verdict = {0: "survived", 1: "killed"}.get(result.returncode, "error")
        return verdict, time.monotonic() - started, tail[0]


def main(argv: list[str]) -> int:
    """Run the mutations chosen by ``argv``; 0 when every one was killed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    parser.add_argument("--check", action="store_true", help="only check that every mutation applies")
    args = parser.parse_args(argv)
    chosen = tuple(mutation for mutation in MUTATIONS if args.k in mutation.name)
    broken = problems(chosen)
    if broken or args.check:
        print("\n".join(broken) or f"All {len(chosen)} mutations apply to the code as it is.")
        return 1 if broken else 0
    env = dict(os.environ)
    outcome: dict[str, list[str]] = {"killed": [], "survived": [], "error": []}
    print(f"{'protection removed':<60} {'verdict':>8} {'seconds':>8}  last line")
    for mutation in chosen:
        verdict, seconds, tail = run(mutation, env)
        outcome[verdict].append(mutation.name)
        print(f"{mutation.name:<60} {verdict:>8} {seconds:>8.0f}  {tail[:90]}", flush=True)
    print(
        f"\n{len(chosen)} mutations: {len(outcome['killed'])} killed, {len(outcome['survived'])} survived, "
        f"{len(outcome['error'])} could not run their tests."
    )
    for verdict in ("survived", "error"):
        if outcome[verdict]:
            print(f"{verdict}: {outcome[verdict]}")
    return 0 if len(outcome["killed"]) == len(chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
