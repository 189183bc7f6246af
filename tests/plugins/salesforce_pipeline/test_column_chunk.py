"""Pages of any size regrouped into chunks of the chunk size."""

from __future__ import annotations

import random

import pytest

from salesforce_pipeline.column_chunk import ChunkBuffer, ColumnChunk


@pytest.mark.parametrize("seed", range(5))
def test_pages_of_any_size_regroup_into_chunks_of_exactly_the_chunk_size(seed):
    rng = random.Random(seed)
    fields = ["Id", "Name"]
    buffer = ChunkBuffer(fields, chunk_size=rng.randint(1, 50))
    serial, chunks = 0, []
    for _ in range(rng.randint(0, 30)):
        size = rng.randint(0, 120)
        page = ColumnChunk(
            size,
            {"Id": [f"id{serial + n}" for n in range(size)], "Name": [f"n{serial + n}" for n in range(size)]},
        )
        serial += size
        chunks.extend(buffer.add(page))
    chunks.extend(buffer.flush())
    assert all(c.count == buffer.chunk_size for c in chunks[:-1])
    assert all(0 < c.count <= buffer.chunk_size for c in chunks)
    assert all(len(c.columns["Id"]) == len(c.columns["Name"]) == c.count for c in chunks)
    assert [v for c in chunks for v in c.columns["Id"]] == [f"id{n}" for n in range(serial)]
