"""Celery: Redis when ``REDIS_URL`` is set; otherwise kombu's file-system transport, which
needs no broker process, and results in the database."""

from .environment import DATA_DIR, env

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3, "socket_timeout": 10}
else:
    BROKER_DIR = DATA_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder for both directions: producer and consumer run on this machine.
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # The exchange tables (kombu's default is ./control, beside wherever it runs).
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="django-db")

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_RESULT_EXTENDED = True
# A task is acknowledged when it has finished, so a worker that dies mid-task leaves it to be
# run again; every task is therefore written to be idempotent.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's monitoring events (one published to Redis as a task is sent, received, started and
# ended) are for a monitor such as Flower, which Sluice does not run: off unless one is, since
# with nobody subscribed each costs the web and the workers CPU for nothing (about 0.2 ms of the
# web's per task queued). /metrics counts the tasks itself (controlplane.task_metrics).
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("SLUICE_CELERY_TASK_EVENTS", default=False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
# Workers log through Django's LOGGING (one format, with request ids), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Liveness (controlplane.liveness): the worker touches its file from its event loop, beat after
# each pass of its scheduler, at least every SLUICE_CELERY_HEARTBEAT_INTERVAL seconds;
# `python -m foundation.heartbeat FILE --max-age SECONDS` is the probe. Empty: no file.
CELERY_BEAT_SCHEDULER = "controlplane.liveness:HeartbeatScheduler"
SLUICE_CELERY_WORKER_HEARTBEAT_FILE = env.str("SLUICE_CELERY_WORKER_HEARTBEAT_FILE", default="")
SLUICE_CELERY_BEAT_HEARTBEAT_FILE = env.str("SLUICE_CELERY_BEAT_HEARTBEAT_FILE", default="")
SLUICE_CELERY_HEARTBEAT_INTERVAL = env.float("SLUICE_CELERY_HEARTBEAT_INTERVAL", default=10.0)
