"""Rate limits: a sliding-window counter per key, in Redis when ``REDIS_URL`` is set (shared by
every web process), in process memory otherwise.

The estimate is the current window's count plus the previous window's, weighted by how much of
it still overlaps the sliding window: smooth at window edges, two keys per limit, and one round
trip for all the limits a request is counted against.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the current window ends
    retry_after: int  # seconds to wait when not allowed


def hit_all(
    limits: list[tuple[str, int]], *, window: int, now: float | None = None
) -> list[Decision]:
    """Count one request against each ``(key, limit)``, in one round trip to the store."""
    now = time.time() if now is None else now
    index = int(now // window)
    elapsed = (now % window) / window
    counts = _store().increment([key for key, _ in limits], index, window)
    reset_after = max(1, math.ceil(window - now % window))
    return [
        _decide(limit, current, previous, elapsed, window, reset_after)
        for (_, limit), (current, previous) in zip(limits, counts, strict=True)
    ]


def _decide(
    limit: int, current: int, previous: int, elapsed: float, window: int, reset_after: int
) -> Decision:
    estimate = previous * (1 - elapsed) + current
    if estimate <= limit:
        return Decision(True, limit, max(0, int(limit - estimate)), reset_after, 0)
    if current > limit or previous == 0:
        retry_after = reset_after
    else:
        # When will the previous window's weight have faded enough?
        needed = 1 - (limit - current) / previous
        retry_after = max(1, math.ceil((needed - elapsed) * window))
    return Decision(False, limit, 0, reset_after, retry_after)


def lock(key: str, *, seconds: int) -> None:
    """Hold ``key`` locked for ``seconds`` (a lockout after too many failures)."""
    _store().lock(key, seconds)


def locked_for(keys: list[str]) -> int:
    """Seconds until the last of these keys' locks ends; 0 when none is locked."""
    return _store().locked_for(keys)


class _RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    def increment(self, keys: list[str], index: int, window: int) -> list[tuple[int, int]]:
        pipe = self.client.pipeline(transaction=True)
        for key in keys:
            current_key = f"sluice:rl:{key}:{index}"
            pipe.incr(current_key)
            pipe.expire(current_key, window * 2 + 1)
            pipe.get(f"sluice:rl:{key}:{index - 1}")
        replies = pipe.execute()
        return [
            (int(current), int(previous or 0))
            for current, previous in zip(replies[0::3], replies[2::3], strict=True)
        ]

    def lock(self, key: str, seconds: int) -> None:
        self.client.set(f"sluice:lock:{key}", 1, ex=seconds)

    def locked_for(self, keys: list[str]) -> int:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.pttl(f"sluice:lock:{key}")
        remaining = [ms for ms in pipe.execute() if ms > 0]  # -2: no lock
        return math.ceil(max(remaining) / 1000) if remaining else 0


class _MemoryStore:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.locks: dict[str, float] = {}
        self.mutex = threading.Lock()

    def increment(self, keys: list[str], index: int, window: int) -> list[tuple[int, int]]:
        with self.mutex:
            for stale in [k for k in self.counts if k[1] < index - 1]:
                del self.counts[stale]
            counts = []
            for key in keys:
                self.counts[(key, index)] = self.counts.get((key, index), 0) + 1
                counts.append((self.counts[(key, index)], self.counts.get((key, index - 1), 0)))
            return counts

    def lock(self, key: str, seconds: int) -> None:
        with self.mutex:
            self.locks[key] = time.monotonic() + seconds

    def locked_for(self, keys: list[str]) -> int:
        now = time.monotonic()
        with self.mutex:
            ends = [self.locks[key] for key in keys if self.locks.get(key, 0) > now]
        return math.ceil(max(ends) - now) if ends else 0


@cache
def _store_for(url: str):
    return _RedisStore(url) if url else _MemoryStore()


def _store():
    return _store_for(settings.REDIS_URL)
