"""Bounded exponential backoff with jitter for transient Salesforce failures.

Only failures that can pass on their own are retried (503, dropped connections, timeouts, the
concurrent-request limit). The jitter keeps parallel tasks that failed together from retrying
in lockstep against an org that is already busy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays of ``base * 2**attempt``, capped, each drawn from its upper half ("equal jitter").

    Equal jitter (rather than "full jitter", which may draw ~0) guarantees that every retry waits
    at least half the nominal delay, so a burst of 503s actually gets time to clear.

    :param max_retries: retries after the first attempt; 0 disables retrying.
    :param base_seconds: nominal delay before the first retry.
    :param cap_seconds: upper bound of any single delay.
    """

    max_retries: int
    base_seconds: float
    cap_seconds: float = 60.0

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (0 for the first retry)."""
        nominal = min(self.cap_seconds, self.base_seconds * (2**retry_number))
        draw = (rng or random).random()
        return nominal / 2 + draw * nominal / 2
