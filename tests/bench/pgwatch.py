"""What PostgreSQL's sessions are doing while a phase runs: sampled from pg_stat_activity on a
connection of its own, so that lock waits (rows locked FOR UPDATE) show up as evidence."""

from __future__ import annotations

import threading
from collections import Counter

import psycopg

ACTIVITY = """
SELECT wait_event_type = 'Lock', state = 'active', left(regexp_replace(
    regexp_replace(query, '\\s+', ' ', 'g'), '^SELECT .*? FROM ', 'SELECT ... FROM '), 160)
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


class LockWaitSampler:
    def __init__(self, database_url: str, *, interval: float = 0.05) -> None:
        self.database_url = database_url
        self.interval = interval
        self.samples = 0
        self.waiting: list[int] = []
        self.active: list[int] = []
        self.waiting_queries: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-pgwatch", daemon=True)

    def __enter__(self) -> LockWaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as db:
            while not self._stop.wait(self.interval):
                rows = db.execute(ACTIVITY).fetchall()
                self.samples += 1
                self.waiting.append(sum(1 for waiting, _, _ in rows if waiting))
                self.active.append(sum(1 for _, active, _ in rows if active))
                self.waiting_queries.update(query for waiting, _, query in rows if waiting)

    def summary(self) -> dict:
        def mean(values: list[int]) -> float:
            return round(sum(values) / len(values), 2) if values else 0.0

        return {
            "samples": self.samples,
            "interval_ms": self.interval * 1e3,
            "waiting_on_lock_mean": mean(self.waiting),
            "waiting_on_lock_max": max(self.waiting, default=0),
            "active_mean": mean(self.active),
            "active_max": max(self.active, default=0),
            "share_of_samples_with_a_lock_wait": round(
                sum(1 for n in self.waiting if n) / len(self.waiting), 3
            )
            if self.waiting
            else 0.0,
            "top_waiting_queries": [
                {"query": query, "samples": count}
                for query, count in self.waiting_queries.most_common(3)
            ],
        }
