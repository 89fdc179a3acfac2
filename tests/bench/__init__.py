"""Benchmarks of the clusters capability (`make bench`): create-to-ready latency through the
real web server and Celery worker, and the cost of listing clusters against a bare Django view.
Selected with ``-m bench``; `make test` deselects them."""
