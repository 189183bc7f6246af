"""polars is loaded with one thread per call and one allocator arena that gives memory back soon,
unless the environment chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
SHOW = (
    "import os, sys; import salesforce_pipeline.frames as f; "
    "print(os.environ['_RJEM_MALLOC_CONF'], f.pl.thread_pool_size(), 'polars' in sys.modules)"
)
OURS = ["narenas:1", "dirty_decay_ms:100", "muzzy_decay_ms:0"]


def _shown(**given: str) -> tuple[list[str], int, bool]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("_RJEM_MALLOC_CONF", "POLARS_MAX_THREADS")
    }
    env["PYTHONPATH"] = str(PLUGINS)
    env.update(given)
    shown = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True)
    setting, threads, loaded = shown.stdout.split()
    return setting.split(","), int(threads), loaded == "True"


def test_polars_loads_with_one_thread_and_an_allocator_that_gives_memory_back():
    setting, threads, loaded = _shown()
    # polars puts decay times of its own first; the allocator takes the last of each option.
    assert setting[-3:] == OURS
    assert threads == 1
    assert loaded


@pytest.mark.parametrize("name", ["_RJEM_MALLOC_CONF", "POLARS_MAX_THREADS"])
def test_what_the_environment_chose_is_kept(name):
    value = "narenas:2" if name == "_RJEM_MALLOC_CONF" else "2"
    setting, threads, _loaded = _shown(**{name: value})
    if name == "_RJEM_MALLOC_CONF":
        assert setting[-1] == "narenas:2"
        assert "narenas:1" not in setting
    else:
        assert threads == 2
