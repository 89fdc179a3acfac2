"""The heartbeat files the worker and beat pods' liveness probes read (controlplane.liveness),
on real processes: a worker on the test Redis touches its file from its event loop, and stops
while a task holds that loop; beat touches its file on each pass of its scheduler, and stops
when it stops ticking; and the probe (`python -m foundation.heartbeat`) passes only a fresh file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from controlplane.models import ServiceHeartbeat
from controlplane.tasks import record_heartbeat
from tests.support.processes import REPO_ROOT, clean_environment
from tests.support.services import stop_process, wait_for

pytestmark = pytest.mark.celery_worker

INTERVAL = 0.5  # seconds between heartbeats in these tests (production: 10)


def probe(path: Path, max_age: float) -> subprocess.CompletedProcess:
    """The probe as the chart's exec probes run it."""
    return subprocess.run(
        [sys.executable, "-m", "foundation.heartbeat", str(path), "--max-age", str(max_age)],
        cwd=REPO_ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def mtime(path: Path) -> float:
    return path.stat().st_mtime


def wait_for_two_heartbeats(path: Path, process: subprocess.Popen, what: str) -> None:
    """The file's mtime advances, then advances again."""
    for _ in range(2):
        wait_for(path.exists, timeout=30, what=f"{what}'s heartbeat file", process=process)
        before = mtime(path)
        wait_for(
            lambda before=before: mtime(path) > before,
            timeout=15 * INTERVAL + 5,
            what=f"{what}'s heartbeat to advance",
            process=process,
        )


def test_the_probe_passes_only_a_fresh_file(tmp_path):
    path = tmp_path / "heartbeat"
    missing = probe(path, 60)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr

    path.touch()
    assert probe(path, 60).returncode == 0

    two_minutes_ago = time.time() - 120
    os.utime(path, (two_minutes_ago, two_minutes_ago))
    stale = probe(path, 60)
    assert stale.returncode == 1
    assert "last touched 120s ago" in stale.stderr
    assert probe(path, 180).returncode == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_beats_from_its_event_loop_and_stops_while_a_task_holds_it(
    start_celery_worker, tmp_path
):
    path = tmp_path / "worker.heartbeat"
    worker = start_celery_worker(
        SLUICE_CELERY_WORKER_HEARTBEAT_FILE=str(path),
        SLUICE_CELERY_HEARTBEAT_INTERVAL=str(INTERVAL),
    )
    wait_for_two_heartbeats(path, worker.process, "the worker")
    assert probe(path, 10 * INTERVAL).returncode == 0

    # A task waits on a row this test holds locked. The test worker's pool is `solo`: the task
    # runs in the loop's own thread, so the loop is held as a wedged consumer's would be.
    before = ServiceHeartbeat.objects.create(service="liveness-test", seen_at=timezone.now())
    with transaction.atomic():
        ServiceHeartbeat.objects.select_for_update().get(service="liveness-test")
        record_heartbeat.delay(service="liveness-test")
        wait_for(
            lambda: lock_waiters() > 0,
            timeout=30,
            what=f"the task to wait on the lock (log: {worker.log_path})",
            process=worker.process,
        )
        held_at = mtime(path)
        time.sleep(6 * INTERVAL)
        assert mtime(path) == held_at
        stale = probe(path, 4 * INTERVAL)
        assert stale.returncode == 1, stale.stderr
        assert "stale heartbeat" in stale.stderr

    # Released, the task ends and the loop beats again.
    wait_for(
        lambda: mtime(path) > held_at,
        timeout=30,
        what="the worker's heartbeat to resume",
        process=worker.process,
    )
    assert probe(path, 4 * INTERVAL).returncode == 0
    assert ServiceHeartbeat.objects.get(service="liveness-test").seen_at > before.seen_at


def lock_waiters() -> int:
    """Sessions of the test database waiting for a row lock (the worker's, here)."""
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL answers from the statistics it read first.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_beat_beats_on_each_tick_and_stops_when_ticking_stops(tmp_path):
    """Beat on the embedded defaults (its queue in a folder of its own: no task it sends
    reaches a worker of another test)."""
    path = tmp_path / "beat.heartbeat"
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="controlplane.settings.local",
        SLUICE_DATA_DIR=str(tmp_path / "data"),
        SLUICE_CELERY_BEAT_HEARTBEAT_FILE=str(path),
        SLUICE_CELERY_HEARTBEAT_INTERVAL=str(INTERVAL),
    )
    log_path = tmp_path / "beat.log"
    with open(log_path, "wb") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "controlplane", "beat", "--loglevel=INFO"],
            env=environment,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # The shortest entry of the schedule is 30 s: beats every INTERVAL show that beat's
        # sleep between passes is bounded by the heartbeat's interval.
        wait_for_two_heartbeats(path, beat, f"beat (log: {log_path})")
        assert probe(path, 10 * INTERVAL).returncode == 0

        os.kill(beat.pid, signal.SIGSTOP)  # the scheduler stops ticking
        try:
            stopped_at = mtime(path)
            time.sleep(6 * INTERVAL)
            assert mtime(path) == stopped_at
            assert probe(path, 4 * INTERVAL).returncode == 1
        finally:
            os.kill(beat.pid, signal.SIGCONT)
        wait_for(
            lambda: mtime(path) > stopped_at,
            timeout=30,
            what="beat's heartbeat to resume",
            process=beat,
        )
        assert probe(path, 4 * INTERVAL).returncode == 0
        assert "beat: Starting" in log_path.read_text(errors="replace")
    finally:
        stop_process(beat, timeout=30)
