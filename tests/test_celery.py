"""The Celery app: a real worker answers, tasks are late-acknowledged with time limits, and
the embedded default (file-system broker, no server at all) works with a real worker too."""

import json
import textwrap

import pytest
from django.conf import settings

from controlplane.celery import app
from controlplane.models import ServiceHeartbeat
from controlplane.tasks import ping, record_heartbeat
from tests.support.processes import clean_environment, run_python
from tests.support.workers import CeleryWorker


def test_tasks_are_acknowledged_late_with_time_limits():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.worker_prefetch_multiplier == 1


def test_beat_schedule_names_only_registered_tasks():
    app.loader.import_default_modules()
    assert app.conf.beat_schedule, "the beat schedule is empty"
    for name, entry in app.conf.beat_schedule.items():
        assert entry["task"] in app.tasks, f"beat entry {name} runs unknown task {entry['task']}"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_answers_ping_over_redis(celery_worker):
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    answer = ping.delay().get(timeout=30)
    assert answer["pong"] is True
    assert "controlplane.tasks.ping" in celery_worker.log()


@pytest.mark.django_db(transaction=True)
def test_a_task_logs_under_the_request_id_that_started_it(celery_worker):
    from foundation.requestid import reset_request_id, set_request_id

    token = set_request_id("req-started-the-task")
    try:
        ping.delay().get(timeout=30)
    finally:
        reset_request_id(token)
    assert "INFO [req-started-the-task] controlplane.tasks pong" in celery_worker.log()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_writes_to_the_database(celery_worker):
    record_heartbeat.delay(service="beat").get(timeout=30)
    heartbeat = ServiceHeartbeat.objects.get(service="beat")
    assert heartbeat.hostname


def test_embedded_worker_needs_no_broker_process(tmp_path):
    """No DATABASE_URL, no REDIS_URL: SQLite and kombu's file-system transport."""
    env = clean_environment(
        DJANGO_SETTINGS_MODULE="controlplane.settings.local", SLUICE_DATA_DIR=str(tmp_path)
    )
    migrate = run_python(
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('migrate', verbosity=0)",
        env=env,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    with CeleryWorker(env=env, hostname="embedded@%h") as worker:
        result = run_python(
            textwrap.dedent(
                """
                import json, django; django.setup()
                from django.conf import settings
                from controlplane.tasks import ping
                print(json.dumps({"broker": settings.CELERY_BROKER_URL,
                                  "answer": ping.delay().get(timeout=30)}))
                """
            ),
            env=env,
        )
        assert result.returncode == 0, result.stderr + worker.log()
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["broker"] == "filesystem://"
    assert found["answer"]["pong"] is True
