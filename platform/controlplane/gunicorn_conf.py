"""gunicorn's settings for the web process: the image, compose and the benchmarks all serve
with these (``gunicorn controlplane.wsgi:application -c python:controlplane.gunicorn_conf``).

Request handling in Django is mostly Python, so it scales with processes (one interpreter lock
each) rather than threads: two processes per core and one more, with two threads each so a
request waiting on PostgreSQL or Redis does not leave its process idle. Measured with
``make bench``: 5 processes x 2 threads served concurrent creations faster than 2 x 4 on the
same two cores."""

import os

bind = os.environ.get("SLUICE_BIND", "0.0.0.0:8000")
worker_class = "controlplane.gunicorn_worker.ThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * len(os.sched_getaffinity(0)) + 1))
threads = int(os.environ.get("SLUICE_WEB_THREADS", "2"))
timeout = 60
graceful_timeout = 30
accesslog = os.environ.get("SLUICE_ACCESS_LOG", "-") or None

# /metrics sums the request figures of every process from the files prometheus_client keeps in
# PROMETHEUS_MULTIPROC_DIR (foundation.metrics). Files left by an earlier server (a restarted
# container keeps its emptyDir) would be counted again: the directory is emptied at start.
multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server) -> None:
    if multiprocess_dir:
        os.makedirs(multiprocess_dir, exist_ok=True)
        for name in os.listdir(multiprocess_dir):
            if name.endswith(".db"):
                os.remove(os.path.join(multiprocess_dir, name))


def child_exit(server, worker) -> None:
    if multiprocess_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
