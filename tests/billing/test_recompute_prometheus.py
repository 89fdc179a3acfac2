"""The parallel recompute against the real broker and Prometheus of the Kafka test environment,
through a real Celery worker: bytes in, out and stored per hour, chunked an hour at a time, equal
the serial run's; a chunk whose Prometheus queries fail (a proxy in front of the real Prometheus
answers 503 to that chunk's queries only) leaves the watermark where it was, the other chunks'
hours written, and a rerun once Prometheus answers again completes the range."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from billing.deltas import hour_start
from billing.models import MeteringCursor, UsageHour
from billing.recompute import recompute_start
from clusters.models import Cell, Cluster, Dimension
from tests.billing.test_metering import (
    BYTES_IN,
    BYTES_OUT,
    consume,
    kafka_topic,
    metered_cell,  # noqa: F401 - the fixture
    produce,
    total,
    wait_until_scraped,
    wait_until_stored,
)
from tests.billing.test_recompute import LATENESS, ledger, serial_recompute, watermark

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


class FaultyPrometheus:
    """Forwards every query to the real Prometheus, except those evaluated at the instant
    ``failing_at`` (epoch seconds), answered 503 ("overloaded")."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.failing_at: float | None = None
        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                moment = float(urllib.parse.parse_qs(body.decode()).get("time", ["0"])[0])
                if moment == proxy.failing_at:
                    proxy.refused += 1
                    self.answer(503, b"overloaded", "text/plain")
                    return
                request = urllib.request.Request(  # noqa: S310 - the test Prometheus
                    proxy.upstream + self.path,
                    data=body,
                    headers={"Content-Type": self.headers["Content-Type"]},
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                        status, answer = response.status, response.read()
                except urllib.error.HTTPError as error:  # Prometheus' refusal, passed on
                    status, answer = error.code, error.read()
                self.answer(status, answer, "application/json")

            def answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    @contextmanager
    def running(self):
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def traffic(kafka_environment, metered_cell):  # noqa: F811 - the fixture imported above
    """A cluster of the metered cell since two hours before this one, and what its topic's
    broker counters say it moved."""
    env = kafka_environment
    cell, cluster = metered_cell
    now = timezone.now()
    start = hour_start(now) - timedelta(hours=2)
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=start)
    orders = kafka_topic(env, cluster, "orders", 2)
    produce(env, orders, 60, 500)
    consume(env, orders, 60)
    counted = {
        Dimension.INGRESS_BYTES: wait_until_scraped(env, BYTES_IN, orders),
        Dimension.EGRESS_BYTES: wait_until_scraped(env, BYTES_OUT, orders),
    }
    wait_until_stored(env, orders)
    return cell, cluster, start, timezone.now(), counted


def test_the_parallel_bytes_are_the_serial_ones(celery_worker, traffic):
    cell, cluster, start, end, counted = traffic
    serial = serial_recompute(cell, start, end)
    for dimension, value in counted.items():
        assert total(cluster, dimension) == value
    assert total(cluster, Dimension.STORAGE_BYTE_HOURS) > 0
    UsageHour.unscoped_all_tenants.all().delete()
    MeteringCursor.objects.filter(cell=cell).update(watermark=start)

    result = recompute_start([cell], start=start, end=end, chunk_hours=1, now=end)[cell.slug]
    outcome = result.get(timeout=120)
    assert (outcome["chunks"], outcome["failed"]) == (3, [])
    assert ledger() == serial
    assert watermark(cell) == end - LATENESS


def test_a_failing_chunk_leaves_the_watermark_and_a_rerun_completes(
    celery_worker, traffic, kafka_environment
):
    cell, cluster, start, end, counted = traffic
    MeteringCursor.objects.filter(cell=cell).update(watermark=start)
    middle = (start + timedelta(hours=1), start + timedelta(hours=2))
    with FaultyPrometheus(kafka_environment.prometheus_url).running() as proxy:
        Cell.objects.filter(pk=cell.pk).update(prometheus_url=proxy.url)
        # A window's range queries are evaluated at its end: the middle hour's are refused.
        proxy.failing_at = middle[1].timestamp()

        def recompute() -> dict:
            results = recompute_start([cell], start=start, end=end, chunk_hours=1, now=end)
            return results[cell.slug].get(timeout=120)

        outcome = recompute()
        assert [(c["start"], c["end"]) for c in outcome["failed"]] == [
            (middle[0].isoformat(), middle[1].isoformat())
        ]
        assert "overloaded" in outcome["failed"][0]["error"]
        assert proxy.refused >= 1
        assert watermark(cell) == start
        assert "1 of 3 chunks failed" in MeteringCursor.objects.get(cell=cell).last_error
        hours = set(UsageHour.unscoped_all_tenants.values_list("hour", flat=True))
        assert hours == {start, hour_start(end)}  # the others' hours are written

        proxy.failing_at = None
        assert recompute()["failed"] == []
    assert watermark(cell) == end - LATENESS
    assert set(UsageHour.unscoped_all_tenants.values_list("hour", flat=True)) == {
        start,
        middle[0],
        hour_start(end),
    }
    for dimension, value in counted.items():
        assert total(cluster, dimension) == value
