"""gunicorn's settings for the web process: the image, compose and the benchmarks all serve
with these (``gunicorn controlplane.wsgi:application -c python:controlplane.gunicorn_conf``).

Request handling in Django is mostly Python, so it scales with processes (one interpreter lock
each) rather than threads: two processes per core and one more, with two threads each so a
request waiting on PostgreSQL or Redis does not leave its process idle. Measured with
``make bench``: 5 processes x 2 threads served concurrent creations faster than 2 x 4 on the
same two cores."""

import os

bind = os.environ.get("SLUICE_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * len(os.sched_getaffinity(0)) + 1))
threads = int(os.environ.get("SLUICE_WEB_THREADS", "2"))
timeout = 60
graceful_timeout = 30
accesslog = os.environ.get("SLUICE_ACCESS_LOG", "-") or None
