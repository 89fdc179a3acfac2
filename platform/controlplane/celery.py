"""The Celery app, and the one beat schedule of the control plane."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings.local")

app = Celery("sluice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every periodic job of the control plane is listed here, and nowhere else.
app.conf.beat_schedule = {
    "heartbeat": {
        "task": "controlplane.tasks.record_heartbeat",
        "schedule": 30.0,
        "kwargs": {"service": "beat"},
        "options": {"expires": 25},
    },
    "purge-idempotency-records": {
        "task": "tenants.tasks.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 1800},
    },
}
