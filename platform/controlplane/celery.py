"""The Celery app, and the one beat schedule of the control plane."""

import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_init

from . import task_metrics  # noqa: F401 - connects the signals that count each task's end
from .liveness import WorkerHeartbeat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.local")

app = Celery("sluice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The file the worker pods' liveness probe reads (beat's is its scheduler: CELERY_BEAT_SCHEDULER).
app.steps["consumer"].add(WorkerHeartbeat)

# Every periodic job of the control plane is listed here, and nowhere else.
app.conf.beat_schedule = {
    "heartbeat": {
        "task": "controlplane.tasks.record_heartbeat",
        "schedule": 30.0,
        "kwargs": {"service": "beat"},
        "options": {"expires": 25},
    },
    "reconcile-fleet": {
        "task": "clusters.tasks.reconcile_fleet",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "collect-usage": {
        "task": "billing.tasks.collect_usage",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "refresh-invoice-drafts": {
        "task": "billing.tasks.refresh_drafts",
        "schedule": 900.0,
        "options": {"expires": 600},
    },
    "close-months": {
        "task": "billing.tasks.close_months",
        "schedule": 900.0,
        "options": {"expires": 600},
    },
    # The final invoices of closed organizations, once metering has caught up with each.
    "close-closed-organizations": {
        "task": "billing.tasks.close_closed_organizations",
        "schedule": 900.0,
        "options": {"expires": 600},
    },
    # Retries of Stripe pushes that backed off, and rows whose worker died (a closed invoice
    # queues its own push on commit).
    "push-to-stripe": {
        "task": "billing.tasks.push_to_stripe",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # Usage exports whose task was lost or whose worker died (each export queues its own).
    "resume-usage-exports": {
        "task": "billing.tasks.resume_usage_exports",
        "schedule": 600.0,
        "options": {"expires": 540},
    },
    # Retries of budget-alert webhooks that backed off (a fired alert queues its own post).
    "deliver-webhooks": {
        "task": "billing.tasks.deliver_webhooks",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    # The ledger's monthly partitions: made months ahead, old months detached once exported.
    "maintain-ledger-partitions": {
        "task": "billing.tasks.maintain_ledger_partitions",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "retry-pending-stripe-events": {
        "task": "billing.tasks.retry_pending_stripe_events",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    "purge-idempotency-records": {
        "task": "tenants.tasks.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 1800},
    },
}


# A task started by a request logs and audits under that request's id.
REQUEST_ID_HEADER = "sluice_request_id"


@before_task_publish.connect
def _carry_request_id(headers=None, **kwargs) -> None:
    from foundation.requestid import current_request_id

    if headers is not None and current_request_id():
        headers[REQUEST_ID_HEADER] = current_request_id()


@task_prerun.connect
def _restore_request_id(task=None, **kwargs) -> None:
    from foundation.requestid import set_request_id

    set_request_id(getattr(task.request, REQUEST_ID_HEADER, None) or "")


@task_postrun.connect
def _forget_request_id(**kwargs) -> None:
    from foundation.requestid import set_request_id

    set_request_id("")


@worker_init.connect
def _workers_never_run_tasks_eagerly(**kwargs) -> None:
    # Eager execution is for a calling process under test. In a worker, a retry or a task it
    # starts must go through the broker, with its countdown, like in production.
    app.conf.task_always_eager = False
