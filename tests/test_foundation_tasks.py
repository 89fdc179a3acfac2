"""Queueing a task by its name (foundation.tasks): after commit, like ``delay``, in a worker or
inline, also from a process that never imported the task's module."""

import json
import textwrap

import pytest
from django.db import transaction

from controlplane.models import ServiceHeartbeat
from foundation.tasks import enqueue, enqueue_on_commit
from tests.support.processes import clean_environment, run_python


@pytest.mark.django_db
def test_the_task_runs_once_the_transaction_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as queued:
        enqueue_on_commit("controlplane.tasks.record_heartbeat", service="web")
        assert not ServiceHeartbeat.objects.filter(service="web").exists()
    assert len(queued) == 1
    assert ServiceHeartbeat.objects.filter(service="web").exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_queues_nothing():
    with transaction.atomic():
        enqueue_on_commit("controlplane.tasks.record_heartbeat", service="web")
        transaction.set_rollback(True)
    assert not ServiceHeartbeat.objects.filter(service="web").exists()


def test_a_process_that_never_imported_the_task_module_finds_it_by_name(tmp_path):
    code = textwrap.dedent(
        """
        import json, django; django.setup()
        from controlplane.celery import app
        app.conf.task_always_eager = True
        imported_before = "controlplane.tasks.ping" in app.tasks
        from foundation.tasks import enqueue
        print(json.dumps({"imported_before": imported_before,
                          "answer": enqueue("controlplane.tasks.ping").get()}))
        """
    )
    env = clean_environment(
        DJANGO_SETTINGS_MODULE="controlplane.settings.local", SLUICE_DATA_DIR=str(tmp_path)
    )
    result = run_python(code, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["imported_before"] is False
    assert found["answer"]["pong"] is True


def test_threads_queueing_at_once_in_a_fresh_process_all_find_the_task(tmp_path):
    """The first requests of a web worker's threads arrive together: every one finds the task
    (before, some looked it up while another thread was still importing its module)."""
    code = textwrap.dedent(
        """
        import json, threading, django; django.setup()
        from controlplane.celery import app
        app.conf.task_always_eager = True
        from foundation.tasks import enqueue
        threads, answers, errors = 8, [], []
        start = threading.Barrier(threads)
        def queue():
            start.wait()
            try:
                answers.append(enqueue("controlplane.tasks.ping").successful())
            except Exception as error:
                errors.append(repr(error))
        workers = [threading.Thread(target=queue) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        print(json.dumps({"answers": answers.count(True), "errors": errors}))
        """
    )
    env = clean_environment(
        DJANGO_SETTINGS_MODULE="controlplane.settings.local", SLUICE_DATA_DIR=str(tmp_path)
    )
    for _ in range(3):  # the race needs the threads to meet; three fresh processes
        result = run_python(code, env=env)
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout.strip().splitlines()[-1])
        assert found == {"answers": 8, "errors": []}


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_queued_by_name(celery_worker):
    answer = enqueue("controlplane.tasks.ping").get(timeout=30)
    assert answer["pong"] is True
    assert "controlplane.tasks.ping" in celery_worker.log()
