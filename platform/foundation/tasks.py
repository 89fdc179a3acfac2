"""Queueing a Celery task by its registered name.

A service that queues a task whose body calls that same service would otherwise import the
task module, and the task module imports the service: an import cycle. Naming the task
instead keeps the dependency one way (tasks -> services). Task names are stable strings
(``name=`` on every ``@shared_task``), so a rename shows up in one place.
"""

from __future__ import annotations

import threading

from celery import current_app
from celery.result import AsyncResult
from django.db import transaction

_discovering = threading.Lock()


def enqueue(task_name: str, /, *args, **kwargs) -> AsyncResult:
    """Queue the task registered as ``task_name``, as ``task.delay(*args, **kwargs)`` would:
    with the task's own options, and run inline when the calling process runs tasks eagerly."""
    app = current_app
    if task_name not in app.tasks:
        # Nothing in this process has imported the task's module yet: import every app's, once.
        # A web worker's threads get here together on their first requests: the others wait
        # for the one importing, or they would look a task up in a module still being imported.
        with _discovering:
            if task_name not in app.tasks:
                app.autodiscover_tasks(force=True)
    return app.tasks[task_name].apply_async(args, kwargs)


def enqueue_on_commit(task_name: str, /, *args, **kwargs) -> None:
    """Queue the task once the current transaction commits (at once outside one), so a worker
    never reads rows that are not there yet, and a rolled-back change queues nothing."""
    transaction.on_commit(lambda: enqueue(task_name, *args, **kwargs))
