"""Benchmark of the parallel metering recompute (billing.recompute): 10 cells x 1,000 serverless
clusters, their first 48 hours of November recomputed serially (the path before it: each cell
reopened at the range's start and collected run after run, in this process) and then in
parallel (per cell and chunk of hours, a Celery chord per cell, on two real worker processes,
one per core), the two ledgers compared row for row.

A month is too long for this machine: at ~1.5 s a cell's 6-hour window, 10 cells' month is
~30 minutes a pass; 48 hours keep both passes to a few minutes (SLUICE_BENCH_RECOMPUTE_HOURS
changes it; the report extrapolates to 720 hours, as an estimate).

The workers read each cell's Prometheus over HTTP: a stand-in served from this process (a
thread), answering metering's queries with the JSON bodies Prometheus would send for the
synthetic cells of tests/bench/test_metering.py (SyntheticCell), generated before anything is
timed. Both paths read the same windows: the lateness allowed is 0 here (in this process and
the workers), so a collection's next window starts where the last one ended, as a chunk's do.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import urllib.parse
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from billing import metering, prometheus
from billing.deltas import Window
from billing.models import MeteringCursor, UsageHour
from billing.recompute import recompute_start
from clusters.models import Cell
from tests.bench.ledger import ledger_months_made
from tests.bench.report import RECOMPUTE_SPEEDUP_TARGET
from tests.bench.test_metering import (
    KAFKA,
    LEDGER_DIFFERENCES,
    MONTH_SHAPE,
    MONTH_START,
    NAMESPACE,
    SEED,
    PrometheusAnswers,
    create_month_rows,
    month_cell,
    progress,
    public_ids,
    seeded,
)
from tests.factories import make_cell

pytestmark = pytest.mark.bench

CELLS = int(os.environ.get("SLUICE_BENCH_RECOMPUTE_CELLS", "10"))
CLUSTERS = int(os.environ.get("SLUICE_BENCH_RECOMPUTE_CLUSTERS", "1000"))
HOURS = int(os.environ.get("SLUICE_BENCH_RECOMPUTE_HOURS", "48"))
WORKERS = 2  # the machine's cores
START = MONTH_START
END = START + timedelta(hours=HOURS)
MONTH_HOURS = 720
SHAPE = replace(MONTH_SHAPE, clusters=CLUSTERS)


class StandInPrometheus:
    """Every cell's Prometheus on one port, a path each (``/<slug>``): each query is answered
    from the bodies made for the window it is evaluated for (range queries at its end, the
    look-back for series new in it before its start)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, float], PrometheusAnswers] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                moment = float(urllib.parse.parse_qs(body.decode())["time"][0])
                cell = self.path.split("/")[1]
                request = type("Request", (), {"data": body})
                answer = stand_in.answers[cell, moment].urlopen(request).getvalue()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, slug: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{slug}"

    def add(self, slug: str, answers: PrometheusAnswers, window: Window, max_gap: float):
        self.answers[slug, float(window.end)] = answers
        self.answers[slug, float(window.start - max_gap)] = answers

    def __enter__(self) -> StandInPrometheus:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def windows() -> list[Window]:
    """The windows both paths read: SLUICE_METERING_MAX_WINDOW_HOURS each from the start."""
    from django.conf import settings

    step = settings.SLUICE_METERING_MAX_WINDOW_HOURS * 3600
    begin, end = int(START.timestamp()), int(END.timestamp())
    return [Window(at, min(at + step, end)) for at in range(begin, end, step)]


def make_cells(stand_in: StandInPrometheus) -> tuple[list[Cell], int]:
    """The cells, their clusters' rows, and each window's answers (read once through the
    stand-in, which also makes the look-back answers); how many samples a pass reads."""
    max_gap = SHAPE.max_gap
    cells, samples = [], 0
    for index in range(CELLS):
        slug = f"recompute-{index:02}"
        cell = make_cell(
            "eu-west-1",
            slug=slug,
            prometheus_url=stand_in.url(slug),
            shared_kafka_namespace=NAMESPACE,
            shared_kafka_name=KAFKA,
            max_shared_clusters=100_000,
            accepting=False,
        )
        synthetic = month_cell(SHAPE, public_ids(seeded(SEED + 100 + index), SHAPE.clusters))
        create_month_rows(cell, synthetic)
        for window in windows():
            scrape = synthetic.readings(window, max_gap=max_gap)
            stand_in.add(slug, PrometheusAnswers(synthetic, scrape), window, max_gap)
            read = prometheus.read(
                prometheus.Prometheus(cell.prometheus_url), window, max_gap=max_gap
            )
            assert read.counters == scrape.readings.counters
            samples += sum(len(s.samples) for s in read.log_sizes) + sum(
                len(s.samples) for series in read.counters.values() for s in series
            )
        cells.append(cell)
        progress(f"recompute: cell {slug} made ({len(synthetic.topics)} topics)")
    return cells, samples


def watermarks_at(cells: list[Cell], moment) -> None:
    MeteringCursor.objects.filter(cell__in=cells).update(watermark=moment)


def serial(cells: list[Cell]) -> float:
    gc.collect()
    started = time.perf_counter()
    for cell in cells:
        metering.reopen(cell, START)
        while metering.collect_cell(cell, now=END).window.end < END.timestamp():
            pass
    return time.perf_counter() - started


def parallel(cells: list[Cell]) -> tuple[float, list[dict]]:
    gc.collect()
    started = time.perf_counter()
    results = recompute_start(cells, start=START, end=END)
    outcomes = [result.get(timeout=3600) for result in results.values()]
    return time.perf_counter() - started, outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(3600)
def test_parallel_recompute(bench_report, settings, start_celery_worker):
    bench_report.setup["metering_recompute"] = (
        f"{WORKERS} Celery worker processes (solo pool each) and the test PostgreSQL; each "
        "cell's Prometheus a stand-in in the benchmark process serving generated answers"
    )
    settings.SLUICE_METERING_MAX_GAP_SECONDS = SHAPE.max_gap
    settings.SLUICE_METERING_LATENESS_SECONDS = 0
    ledger_months_made(START)
    started = time.perf_counter()
    with StandInPrometheus() as stand_in:
        cells, samples = make_cells(stand_in)
        MeteringCursor.objects.bulk_create(MeteringCursor(cell=c, watermark=START) for c in cells)
        setup = time.perf_counter() - started
        progress(f"recompute: {CELLS} cells x {CLUSTERS} clusters made in {setup:.1f}s")
        for _ in range(WORKERS):
            start_celery_worker(
                SLUICE_METERING_MAX_GAP_SECONDS=str(SHAPE.max_gap),
                SLUICE_METERING_LATENESS_SECONDS="0",
                SLUICE_TEST_EAGER_TASKS="false",
            )
        assert not UsageHour.unscoped_all_tenants.exists()
        # The synthetic cells and their answers stay in this process: out of the collector's
        # way, or the serial run (here) would pay for scanning them and the workers not.
        gc.collect()
        gc.freeze()

        serial_seconds = serial(cells)
        rows = UsageHour.unscoped_all_tenants.count()
        progress(f"recompute: serial {serial_seconds:.1f}s, {rows:,} rows")
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE bench_first_ledger AS SELECT cluster_id, dimension, "
                "hour, quantity, complete, computed_at FROM billing_usagehour"
            )
            cursor.execute("TRUNCATE billing_usagehour")
        watermarks_at(cells, START)

        parallel_seconds, outcomes = parallel(cells)
        progress(f"recompute: parallel {parallel_seconds:.1f}s")
        gc.unfreeze()
    assert [o["failed"] for o in outcomes] == [[]] * CELLS
    assert set(
        MeteringCursor.objects.filter(cell__in=cells).values_list("watermark", flat=True)
    ) == {END}
    with connection.cursor() as cursor:
        cursor.execute(LEDGER_DIFFERENCES)
        added, removed = cursor.fetchone()
        cursor.execute("DROP TABLE bench_first_ledger")
    assert (added, removed) == (0, 0), "the parallel ledger differs from the serial one"
    assert UsageHour.unscoped_all_tenants.count() == rows

    speedup = serial_seconds / parallel_seconds
    bench_report.record(
        "metering_recompute",
        {
            "shape": f"{CELLS} cells x {SHAPE.describe()}",
            "range": f"{START:%Y-%m-%d %H:%M} + {HOURS} hours (not a month: see the estimate)",
            "samples": samples,
            "rows": rows,
            "setup_seconds": round(setup, 1),
            "workers": WORKERS,
            "chunks": sum(o["chunks"] for o in outcomes),
            "chunk_hours": settings.SLUICE_METERING_RECOMPUTE_CHUNK_HOURS,
            "window_hours": settings.SLUICE_METERING_MAX_WINDOW_HOURS,
            "serial_seconds": round(serial_seconds, 1),
            "parallel_seconds": round(parallel_seconds, 1),
            "speedup": round(speedup, 2),
            "target_speedup": RECOMPUTE_SPEEDUP_TARGET,
            "target_met": speedup >= RECOMPUTE_SPEEDUP_TARGET,
            "month_estimate_seconds": {
                "serial": round(serial_seconds * MONTH_HOURS / HOURS),
                "parallel": round(parallel_seconds * MONTH_HOURS / HOURS),
            },
            "identical": True,
        },
    )
