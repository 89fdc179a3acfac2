"""The heartbeat files of the Celery worker and beat, which their pods' liveness probes read
(``python -m foundation.heartbeat``).

A worker touches its file (``SLUICE_CELERY_WORKER_HEARTBEAT_FILE``) from a timer of its
consumer: with Redis, the timer fires from the event loop that reads the broker and drives the
pool, so the file goes stale when that loop hangs, and while the consumer is reconnecting to
the broker (its steps are stopped meanwhile). Beat touches its file
(``SLUICE_CELERY_BEAT_HEARTBEAT_FILE``) at the end of each pass of its scheduler, and sleeps at
most ``SLUICE_CELERY_HEARTBEAT_INTERVAL`` between passes, so the file goes stale when the
scheduler stops ticking. An empty file setting turns that heartbeat off.
"""

from __future__ import annotations

import logging

from celery import bootsteps
from celery.beat import PersistentScheduler
from django.conf import settings

from foundation.heartbeat import touch

logger = logging.getLogger(__name__)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A step of the worker's consumer: touches the heartbeat file every interval while the
    consumer runs."""

    # Started once the consumer is connected and consuming; stopped when it loses the broker.
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs) -> None:
        self.path = settings.SLUICE_CELERY_WORKER_HEARTBEAT_FILE
        self.interval = settings.SLUICE_CELERY_HEARTBEAT_INTERVAL
        self.enabled = bool(self.path)
        self.timer_entry = None
        super().__init__(parent, **kwargs)

    def start(self, parent) -> None:
        self.beat()
        self.timer_entry = parent.timer.call_repeatedly(self.interval, self.beat)

    def stop(self, parent) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    shutdown = stop

    def beat(self) -> None:
        try:
            touch(self.path)
        except OSError:
            # The probe sees the file go stale and says so; the worker goes on meanwhile.
            logger.exception("cannot touch the worker's heartbeat file %s", self.path)


class HeartbeatScheduler(PersistentScheduler):
    """Celery's default scheduler (the schedule kept in ``CELERY_BEAT_SCHEDULE_FILENAME``) that
    touches beat's heartbeat file after each pass."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.heartbeat_path = settings.SLUICE_CELERY_BEAT_HEARTBEAT_FILE
        if self.heartbeat_path:
            # The longest sleep between passes is the longest the file stays untouched.
            self.max_interval = min(self.max_interval, settings.SLUICE_CELERY_HEARTBEAT_INTERVAL)

    def tick(self, *args, **kwargs) -> float:
        interval = super().tick(*args, **kwargs)
        if self.heartbeat_path:
            try:
                touch(self.heartbeat_path)
            except OSError:
                logger.exception("cannot touch beat's heartbeat file %s", self.heartbeat_path)
        return interval
