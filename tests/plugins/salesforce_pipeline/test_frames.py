"""polars is loaded with one allocator arena unless the environment chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
SHOW = (
    "import os, sys; import salesforce_pipeline.frames; "
    "print(os.environ.get('_RJEM_MALLOC_CONF'), 'polars' in sys.modules)"
)


@pytest.mark.parametrize(("given", "expected"), [(None, "narenas:1"), ("narenas:2", "narenas:2")])
def test_the_allocator_setting_is_made_before_polars_loads_unless_given(given, expected):
    env = {key: value for key, value in os.environ.items() if key != "_RJEM_MALLOC_CONF"}
    env["PYTHONPATH"] = str(PLUGINS)
    if given:
        env["_RJEM_MALLOC_CONF"] = given
    shown = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True)
    setting, loaded = shown.stdout.split()
    assert expected in setting.split(",")  # polars adds settings of its own (decay times)
    assert loaded == "True"
