"""Celery's queues, and which task goes to which: provisioning, metering and billing each have
a queue of their own, so an installation may run a worker group per queue and scale them apart
(the Helm chart's worker groups, each started with ``-Q``). A worker started without ``-Q``
(``make run``, compose, the tests) consumes every queue listed here."""

from kombu import Queue

# Everything not routed below: mail, heartbeats, the idempotency purge. Celery's own default
# name, so tasks queued before the routes existed are still consumed.
CELERY_TASK_DEFAULT_QUEUE = "celery"
PROVISIONING_QUEUE = "provisioning"
METERING_QUEUE = "metering"
BILLING_QUEUE = "billing"

CELERY_TASK_QUEUES = [
    Queue(name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, PROVISIONING_QUEUE, METERING_QUEUE, BILLING_QUEUE)
]

# By task name. An exact name wins over a pattern (Celery looks names up before patterns).
CELERY_TASK_ROUTES = {
    # Reconciles, one per cluster, and the periodic sweep that queues them.
    "clusters.tasks.*": {"queue": PROVISIONING_QUEUE},
    # Reading each cell's Prometheus into the ledger: slow when a Prometheus is, and per cell.
    "billing.tasks.collect_usage": {"queue": METERING_QUEUE},
    "billing.tasks.collect_cell_usage": {"queue": METERING_QUEUE},
    # A recompute's chunks and each cell's callback, shared among the metering workers.
    "billing.tasks.recompute_chunk": {"queue": METERING_QUEUE},
    "billing.tasks.recompute_finish": {"queue": METERING_QUEUE},
    # Rating, invoices, Stripe, spend caps, budget alerts and their webhooks, usage exports.
    "billing.tasks.*": {"queue": BILLING_QUEUE},
}
