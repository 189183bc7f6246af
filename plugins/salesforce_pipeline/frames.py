"""polars, loaded the way this pipeline needs it: with one allocator arena.

Polars' allocator (jemalloc) gives each thread that allocates an arena of its own by default. With
four slices preparing pages in threads, the task process of a 1,000,000-Contact load then peaked at
411-423 MB; with one arena at 364-381 MB, in about the same time (docs/large-loads.md). The setting
is read once, when polars' library first allocates, so it is made here, before the import, unless
the environment already chose one.
"""

from __future__ import annotations

import os

os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1")

import polars as pl

__all__ = ["pl"]
