"""The backoff policy: exponential, jittered within the upper half, capped."""

from __future__ import annotations

import random

import pytest

from salesforce_pipeline.retry import Backoff


@pytest.mark.parametrize("retry_number", range(8))
def test_delays_grow_exponentially_with_equal_jitter(retry_number: int) -> None:
    backoff = Backoff(max_retries=8, base_seconds=1.0, cap_seconds=30.0)
    nominal = min(30.0, 2.0**retry_number)
    rng = random.Random(retry_number)
    delays = [backoff.delay(retry_number, rng) for _ in range(200)]
    assert all(nominal / 2 <= d <= nominal for d in delays)
    assert len(set(delays)) > 1, "jitter must vary the delays"


def test_zero_base_means_no_wait() -> None:
    assert Backoff(max_retries=3, base_seconds=0.0).delay(2) == 0.0
