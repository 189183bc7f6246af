"""polars, loaded the way this pipeline needs it: one thread per call, and an allocator that
gives memory back soon.

The slices of a load already prepare their pages in threads of their own, one per slice, so polars'
own thread pool would only add threads and their buffers. Its allocator (jemalloc) gives each thread
an arena of its own by default and keeps freed pages for a while. At 1,000,000 Contacts, a task
process with polars' defaults peaked at 379-423 MB (REST) and 397-406 MB (Bulk 2.0); with one
thread, one arena and freed pages returned within 0.1 s, at 352-358 MB and 370 MB, in about the
same time (docs/large-loads.md). Both are read once, when polars loads, so they are set here, before
the import, unless the environment already chose them. (polars puts its own decay times before
ours in the allocator's setting; the later ones count.)
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,dirty_decay_ms:100,muzzy_decay_ms:0")

import polars as pl

__all__ = ["pl"]
