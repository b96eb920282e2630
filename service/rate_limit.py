"""Per-user rate limiting of the hub service: an in-memory token bucket per user.

Each estimate, and each catalogue page (one estimate per course), may run `sbatch --test-only`
as root; without a limit one learner's script could keep the controller busy for everyone.
The buckets live in the service process: a restart forgives everyone, which is harmless.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`burst` requests at once per key, refilled at `per_minute`; `per_minute <= 0` means no
    limit. `clock` returns seconds (monotonic); tests pass a fake one."""

    def __init__(
        self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = max(1, int(burst))
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """Spend one of `key`'s requests: 0.0 when allowed, otherwise the seconds until the
        next one is (nothing is spent then)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        refilled = bucket.tokens + (now - bucket.updated) * self.rate
        bucket.tokens, bucket.updated = min(float(self.burst), refilled), now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely (they equal a new one), so memory
        follows recent users, not every user ever seen. Amortised: only past 1,000 keys."""
        if len(self._buckets) <= 1000:
            return
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


def retry_after(seconds: float) -> int:
    """The Retry-After header's whole seconds (at least 1)."""
    return max(1, math.ceil(seconds))
