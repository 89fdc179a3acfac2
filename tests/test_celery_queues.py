"""Celery's queues: provisioning, metering and billing tasks each go to a queue of their own
(so the chart's worker groups can scale them apart), and a worker started without ``-Q``, as
``make run``, compose and the test harness start one, still consumes every queue."""

import pytest
from django.conf import settings

from controlplane.celery import app
from controlplane.tasks import ping


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_every_registered_task_goes_to_a_declared_queue():
    app.loader.import_default_modules()
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert declared == {"celery", "provisioning", "metering", "billing"}
    for name in app.tasks:
        if not name.startswith("celery."):
            assert queue_of(name) in declared, name


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("clusters.tasks.reconcile_cluster", "provisioning"),
        ("clusters.tasks.reconcile_fleet", "provisioning"),
        ("billing.tasks.collect_usage", "metering"),
        ("billing.tasks.collect_cell_usage", "metering"),
        ("billing.tasks.recompute_chunk", "metering"),
        ("billing.tasks.recompute_finish", "metering"),
        ("billing.tasks.check_spend", "billing"),
        ("billing.tasks.push_to_stripe", "billing"),
        ("billing.tasks.close_months", "billing"),
        ("billing.tasks.deliver_webhooks", "billing"),
        ("billing.tasks.export_month", "billing"),
        ("tenants.tasks.send_invitation_email", "celery"),
        ("controlplane.tasks.record_heartbeat", "celery"),
    ],
)
def test_tasks_are_routed_by_name(task_name, queue):
    app.loader.import_default_modules()
    assert task_name in app.tasks
    assert queue_of(task_name) == queue


def test_every_beat_entry_goes_to_a_declared_queue():
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    for entry in app.conf.beat_schedule.values():
        assert queue_of(entry["task"]) in declared


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_started_without_queues_consumes_every_queue(celery_worker):
    declared = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    for name in declared:
        answer = ping.apply_async(queue=name).get(timeout=30)
        assert answer["pong"] is True, name
    replies = app.control.inspect(timeout=5).active_queues() or {}
    consumed = {queue["name"] for queues in replies.values() for queue in queues}
    assert consumed >= set(declared)
