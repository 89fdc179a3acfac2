"""Benchmarks of metering (billing.metering): how many Prometheus samples a second the rollup
turns into hours, what decoding them from Prometheus' JSON costs, and how long recomputing a
30-day month of ledger for 1,000 clusters takes.

Nothing but this process and the test PostgreSQL: no web server, Celery workers, Kubernetes,
Kafka or Prometheus. The series are synthetic, generated from a seed, shaped as Strimzi's JMX
exporter rules and PodMonitor label them on a cell's shared Kafka (3 brokers): bytes in and out
per topic and broker, log size per partition and replica, ``up`` and the brokers' process start
times; counters follow a daily swing of traffic, restart with their broker, now and then reset
without one, and scrapes fail now and then (a failed scrape: ``up`` 0 and no sample of that
broker's series; several in a row: a gap that leaves hours incomplete).

Where the time goes (measured on 2 cores): the rollup is pure Python over every sample
(billing.deltas), CPU-bound in this process (~7 s a round for the hour's 3.6 M samples), and
prometheus.read's decoding of the same series from JSON costs about 1.7 times as much (json.loads
alone ~4 s). This file's wall time, ~12 minutes, is dominated by the month: 1,000 clusters x 4
dimensions x 720 hours are 2.88 M ledger rows, written by 144 runs of one upsert of 24,000 rows
(~1 s a run, passed to PostgreSQL as seven arrays), twice, since the month is recomputed a
second time to show it changes nothing. The month's samples are scaled down from the hour's
density so that its rollup (~70 s a pass) and their generation (~60 s a pass, timed apart and
not counted) stay small beside that; the report states the shape and an estimate at full
density."""

from __future__ import annotations

import gc
import io
import json
import math
import random
import statistics
import string
import time
import urllib.parse
import urllib.request
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from billing import metering, prometheus
from billing.attribution import Attribution, MeteredCluster
from billing.deltas import HOUR, Sample, Window
from billing.models import MeteringCursor, UsageHour
from billing.prometheus import (
    COUNTER_METRICS,
    LOG_SIZE_METRIC,
    PROCESS_START_METRIC,
    Readings,
    Series,
)
from clusters.models import (
    METERED_DIMENSIONS,
    TIME_DIMENSIONS,
    Cluster,
    ClusterState,
    Dimension,
    Tier,
    Topic,
    TopicPartitions,
)
from tests.bench.ledger import ledger_months_made
from tests.bench.report import ROLLUP_SAMPLES_PER_SECOND_TARGET
from tests.factories import make_cell, make_org

pytestmark = pytest.mark.bench

SEED = 20261101
NAMESPACE = "sluice-bench-metering"
KAFKA = "shared"
JOB = f"{NAMESPACE}/kafka-resources-metrics"
BROKERS = 3
DAY = 86_400
CLUSTERS = 1_000

# Rollup throughput: one hour of a cell, at Strimzi's example scrape interval.
THROUGHPUT_HOUR = int(datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp())
ROLLUP_ROUNDS = 5
DECODE_ROUNDS = 3

# The month: November 2026, 30 days.
MONTH_START = datetime(2026, 11, 1, tzinfo=UTC)
MONTH_END = MONTH_START + timedelta(days=30)
ORGANIZATIONS = 50


def progress(message: str) -> None:
    print(f"\n[bench] {message}", flush=True)


def describe_setup(report) -> None:
    report.setup["metering"] = (
        "in the benchmark process (and the test PostgreSQL for the month); no web server, "
        "workers, Kubernetes or Prometheus"
    )


# The synthetic cell ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """What a cell's Prometheus holds for its clusters."""

    clusters: int
    topics: int  # per cluster
    partitions: int  # per topic (every partition has a replica on every broker)
    interval: float  # seconds between two scrapes of a broker
    brokers: int = BROKERS

    @property
    def samples_per_cluster_hour(self) -> float:
        leaders = min(self.partitions, self.brokers)  # bytes in/out: on the partitions' leaders
        series = self.topics * (len(COUNTER_METRICS) * leaders + self.partitions * self.brokers)
        return series * HOUR / self.interval

    @property
    def max_gap(self) -> float:
        return 3 * self.interval  # as the default 90 s is to the 30 s scrapes

    def describe(self) -> str:
        return (
            f"{self.clusters} serverless clusters x {self.topics} topics x {self.partitions} "
            f"partitions on {self.brokers} brokers (replication factor {self.brokers}), "
            f"scraped every {self.interval:g} s (gap > {self.max_gap:g} s)"
        )


@dataclass(frozen=True)
class Restart:
    broker: int
    stop: int  # the process stops: scrapes fail from here…
    start: int  # …the new process starts (counters begin again at zero)…
    ready: int  # …and is scraped again from here


@dataclass
class BenchTopic:
    cluster: int  # index in the cell's clusters
    name: str  # as on the shared Kafka: the cluster's prefix and the topic's name
    born: int
    partitions: list[tuple[int, int]]  # (since, count), counts only growing
    rate: float  # bytes a second written, at the day's mean
    read_factor: float  # bytes read per byte written
    retention: int  # seconds: log size saws up and back down over this period


@dataclass
class CounterSpec:
    labels: dict[str, str]
    broker: int
    rate: float
    birth: int  # Kafka creates a topic's meters on its first traffic
    resets: tuple[int, ...] = ()  # dropped to zero without a restart (a meter re-created)


@dataclass
class LogSizeSpec:
    labels: dict[str, str]
    broker: int
    birth: int
    base: int
    growth: float  # bytes a second
    retention: int
    phase: int
    lag: int  # a follower is a little behind its leader


def traffic(at: float) -> float:
    """Bytes by instant ``at`` of a topic writing 1 byte a second on the day's mean: the rate
    swings between 0.5 and 1.5 over a day (the integral of 1 + sin(2 pi t / day) / 2)."""
    return at - DAY / (4 * math.pi) * math.cos(2 * math.pi * at / DAY)


def broker_labels(broker: int) -> dict[str, str]:
    """The labels Strimzi's example PodMonitor puts on every series of a broker's scrape."""
    return {
        "namespace": NAMESPACE,
        "strimzi_io_cluster": KAFKA,
        "strimzi_io_kind": "Kafka",
        "strimzi_io_name": f"{KAFKA}-kafka",
        "strimzi_io_pool_name": "brokers",
        "strimzi_io_broker_role": "true",
        "strimzi_io_component_type": "kafka",
        "pod": f"{KAFKA}-brokers-{broker}",
        "node_name": f"ip-10-0-{broker}-21.eu-west-1.compute.internal",
        "container": "kafka",
        "endpoint": "tcp-prometheus",
        "job": JOB,
        "instance": f"10.0.{broker}.17:9404",
    }


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible data, not a secret


def public_ids(rng: random.Random, count: int) -> list[str]:
    alphabet = string.ascii_lowercase + string.digits
    ids: set[str] = set()
    while len(ids) < count:
        ids.add("kc_" + "".join(rng.choice(alphabet) for _ in range(16)))
    return sorted(ids)


class BrokerSpan:
    """One broker's scrapes in ``[lo, hi]``: when, whether they succeeded, which process."""

    def __init__(self, cell: SyntheticCell, broker: int, lo: float, hi: float) -> None:
        interval, offset = cell.shape.interval, cell.offsets[broker]
        first, last = math.ceil((lo - offset) / interval), math.floor((hi - offset) / interval)
        self.instants = [k * interval + offset for k in range(first, last + 1)]
        self.up = [cell.scraped(broker, k, t) for k, t in enumerate(self.instants, first)]
        self.ok = [t for t, up in zip(self.instants, self.up, strict=True) if up]
        self.starts = [cell.process_start(broker, t) for t in self.ok]
        self.traffic = [traffic(t) for t in self.ok]
        self.base = [traffic(s) for s in self.starts]


class SyntheticCell:
    """A deterministic cell: every value is a function of the instant, so any window can be
    generated (again) on its own, overlapping ones agreeing, as Prometheus would answer."""

    def __init__(
        self,
        shape: Shape,
        cluster_ids: list[str],
        *,
        span: tuple[int, int],
        seed: int,
        restarts: list[Restart],
        outages: tuple[tuple[int, float, float], ...] = (),
        failure_rate: float = 0.0,
        new_topics: float = 0.0,
        grown_topics: float = 0.0,
        resets: float = 0.0,
    ) -> None:
        """``span``: the instants generated. ``outages``: (broker, from, to): its scrapes fail
        meanwhile; ``restarts`` fail them too. ``failure_rate``: share of scrapes that fail, in
        runs of 1 to 6. ``new_topics``: share of clusters that create one more topic inside the
        span; ``grown_topics``: share of topics given more partitions inside it; ``resets``:
        share of counters reset once inside it without a restart."""
        self.shape = shape
        self.cluster_ids = cluster_ids
        rng = seeded(seed)
        begin, end = span
        self.offsets = [round(rng.uniform(0, shape.interval), 3) for _ in range(shape.brokers)]
        self.boot = begin - 20 * DAY
        self.restarts = sorted(restarts, key=lambda r: (r.broker, r.start))
        self.starts = {
            b: [self.boot, *[r.start for r in self.restarts if r.broker == b]]
            for b in range(shape.brokers)
        }
        self.outages = [*outages, *((r.broker, r.stop, r.ready) for r in self.restarts)]
        self.failed: dict[int, set[int]] = {b: set() for b in range(shape.brokers)}
        if failure_rate:
            for broker in range(shape.brokers):
                first = math.ceil((begin - self.offsets[broker]) / shape.interval)
                count = int((end - begin) / shape.interval)
                for _ in range(max(1, round(count * failure_rate / 3.5))):
                    k = first + rng.randrange(count)
                    self.failed[broker].update(range(k, k + rng.randint(1, 6)))

        self.topics: list[BenchTopic] = []
        for index, public_id in enumerate(cluster_ids):
            count = shape.topics + (1 if rng.random() < new_topics else 0)
            for j in range(count):
                born = begin - 40 * DAY if j < shape.topics else rng.randrange(begin, end)
                history = [(born, shape.partitions)]
                if j < shape.topics and rng.random() < grown_topics:
                    history.append((rng.randrange(begin, end), shape.partitions * 2))
                self.topics.append(
                    BenchTopic(
                        cluster=index,
                        name=f"{public_id}.events-{j}",
                        born=born,
                        partitions=history,
                        rate=min(5e6, math.exp(rng.gauss(math.log(4_000), 1.6))),
                        read_factor=rng.uniform(0.5, 3.0),
                        retention=rng.choice((DAY, 3 * DAY, 7 * DAY)),
                    )
                )

        self.counters: dict[str, list[CounterSpec]] = {d: [] for d in COUNTER_METRICS}
        self.log_sizes: list[LogSizeSpec] = []
        for number, topic in enumerate(self.topics):
            for since, count in topic.partitions:
                earlier = topic.partitions[0][1] if since != topic.born else 0
                for partition in range(earlier, count):
                    self._partition(rng, number, topic, partition, since)
            leaders: dict[int, int] = {}  # broker -> when it first led a partition of the topic
            for since, count in topic.partitions:
                for partition in range(count):
                    leaders.setdefault((number + partition) % shape.brokers, since)
            for broker, since in sorted(leaders.items()):
                share = rng.uniform(0.5, 1.5) / len(leaders)
                for dimension, metric in COUNTER_METRICS.items():
                    rate = topic.rate * share
                    if dimension == Dimension.EGRESS_BYTES:
                        rate *= topic.read_factor
                    reset = (rng.randrange(begin, end),) if rng.random() < resets else ()
                    self.counters[dimension].append(
                        CounterSpec(
                            labels={
                                "__name__": metric,
                                **broker_labels(broker),
                                "topic": topic.name,
                            },
                            broker=broker,
                            rate=rate,
                            birth=since,
                            resets=reset,
                        )
                    )

    def _partition(self, rng, number: int, topic: BenchTopic, partition: int, since: int):
        leader = (number + partition) % self.shape.brokers
        growth = topic.rate / topic.partitions[-1][1]
        base = rng.randrange(0, 1 << 30)
        phase = rng.randrange(topic.retention)
        for broker in range(self.shape.brokers):
            self.log_sizes.append(
                LogSizeSpec(
                    labels={
                        "__name__": LOG_SIZE_METRIC,
                        **broker_labels(broker),
                        "topic": topic.name,
                        "partition": str(partition),
                    },
                    broker=broker,
                    birth=since,
                    base=base,
                    growth=growth,
                    retention=topic.retention,
                    phase=phase,
                    lag=0 if broker == leader else rng.randrange(0, 1 << 16),
                )
            )

    # when and what ---------------------------------------------------------------------

    def process_start(self, broker: int, at: float) -> int:
        starts = self.starts[broker]
        return starts[bisect_right(starts, at) - 1]

    def scraped(self, broker: int, k: int, at: float) -> bool:
        if k in self.failed[broker]:
            return False
        return not any(b == broker and start <= at < end for b, start, end in self.outages)

    def counter_value(self, spec: CounterSpec, at: float) -> int:
        base = max(self.process_start(spec.broker, at), spec.birth)
        base = max([base, *(reset for reset in spec.resets if reset <= at)])
        return int(spec.rate * (traffic(at) - traffic(base)))

    def last_scraped(self, broker: int, before: float) -> float | None:
        """The last instant at or before ``before`` that the broker was scraped (a week back)."""
        interval, offset = self.shape.interval, self.offsets[broker]
        last = math.floor((before - offset) / interval)
        for k in range(last, last - int(7 * DAY / interval), -1):
            at = k * interval + offset
            if self.scraped(broker, k, at):
                return at
        return None

    # what Prometheus answers ----------------------------------------------------------------

    def scrape(self, lo: float, hi: float) -> Scrape:
        """Every sample in ``[lo, hi]`` of the series metering reads."""
        brokers = [BrokerSpan(self, b, lo, hi) for b in range(self.shape.brokers)]
        counters = {}
        for dimension, specs in self.counters.items():
            counters[dimension] = [
                Series(spec.labels, self._counter_samples(spec, brokers[spec.broker]))
                for spec in specs
            ]
            counters[dimension] = [s for s in counters[dimension] if s.samples]
        log_sizes = [
            Series(spec.labels, self._log_samples(spec, brokers[spec.broker]))
            for spec in self.log_sizes
        ]
        up, process_starts, starts = [], [], {}
        for broker, span in enumerate(brokers):
            labels = broker_labels(broker)
            up.append(
                Series(
                    {"__name__": "up", **labels},
                    [Sample(t, int(ok)) for t, ok in zip(span.instants, span.up, strict=True)],
                )
            )
            if span.ok:
                process_starts.append(
                    Series(
                        {"__name__": PROCESS_START_METRIC, **labels},
                        [Sample(t, s) for t, s in zip(span.ok, span.starts, strict=True)],
                    )
                )
                starts[labels["job"], labels["instance"]] = sorted(set(map(float, span.starts)))
        readings = Readings(
            counters=counters,
            log_sizes=[s for s in log_sizes if s.samples],
            starts=starts,
            up=up,
        )
        return Scrape(readings, process_starts)

    def _counter_samples(self, spec: CounterSpec, span: BrokerSpan) -> list[Sample]:
        if spec.resets or (span.starts and spec.birth > span.starts[0]):
            return [Sample(t, self.counter_value(spec, t)) for t in span.ok if t >= spec.birth]
        rate = spec.rate  # the common case, in one pass: no reset, the meter older than the process
        return [
            Sample(t, int(rate * (x - y)))
            for t, x, y in zip(span.ok, span.traffic, span.base, strict=True)
        ]

    def _log_samples(self, spec: LogSizeSpec, span: BrokerSpan) -> list[Sample]:
        base, growth, retention, phase, lag = (
            spec.base,
            spec.growth,
            spec.retention,
            spec.phase,
            spec.lag,
        )
        return [
            Sample(t, max(0, int(base + growth * ((t + phase) % retention)) - lag))
            for t in span.ok
            if t >= spec.birth
        ]

    def latest(self, dimension: str, topics: set[str], before: float) -> dict:
        """What ``last_over_time(<counter>{topic=~…}[history])`` at ``before`` answers."""
        found = {}
        for spec in self.counters[dimension]:
            if spec.labels["topic"] not in topics or spec.birth > before:
                continue
            at = self.last_scraped(spec.broker, before)
            if at is not None and at >= spec.birth:
                found[_frozen(spec.labels)] = (spec.labels, at, self.counter_value(spec, at))
        return found

    def readings(self, window: Window, *, max_gap: float) -> Scrape:
        """What ``prometheus.read`` returns for the window: its own reading of the same answers."""
        lo = window.start - max_gap
        scrape = self.scrape(lo, window.end)
        readings = scrape.readings
        for dimension, series_list in readings.counters.items():
            late = {s.labels["topic"] for s in series_list if s.samples[0].at > window.start}
            if late:
                for key, (_, _, value) in self.latest(dimension, late, lo).items():
                    readings.earlier[key] = value
        return scrape


def _frozen(labels: dict[str, str]):
    return tuple(sorted(labels.items()))


@dataclass
class Scrape:
    readings: Readings
    process_starts: list[Series] = field(default_factory=list)


def count_samples(readings: Readings) -> int:
    return (
        sum(len(s.samples) for series in readings.counters.values() for s in series)
        + sum(len(s.samples) for s in readings.log_sizes)
        + sum(len(s.samples) for s in readings.up)
    )


def metered(cluster_ids: list[str], pks: list[int], created: float) -> list[MeteredCluster]:
    return [
        MeteredCluster(pk, public_id, "serverless", created, None)
        for pk, public_id in zip(pks, cluster_ids, strict=True)
    ]


class BenchCell:
    """What metering reads of a Cell (as tests/billing/test_rollup.py stands one in)."""

    shared_kafka_namespace = NAMESPACE
    shared_kafka_name = KAFKA


# Prometheus' answers as JSON ---------------------------------------------------------------


def matrix_body(series_list: list[Series]) -> bytes:
    """A /api/v1/query answer to a range selector, as Prometheus writes it (compact JSON,
    timestamps as numbers in seconds, values as strings)."""
    result = [
        {"metric": s.labels, "values": [[x.at, str(x.value)] for x in s.samples]}
        for s in series_list
    ]
    answer = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return json.dumps(answer, separators=(",", ":")).encode()


def vector_body(found: dict) -> bytes:
    result = [{"metric": labels, "value": [at, str(value)]} for labels, at, value in found.values()]
    answer = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return json.dumps(answer, separators=(",", ":")).encode()


class PrometheusAnswers:
    """Stands in for ``urllib.request.urlopen``: answers metering's queries with the JSON
    bodies Prometheus would send for a synthetic cell's samples, so that ``prometheus.read`` runs
    its own code (the queries, ``json.load``, the Series and Samples) without the network."""

    def __init__(self, cell: SyntheticCell, scrape: Scrape) -> None:
        readings = scrape.readings
        metrics = {metric: readings.counters[d] for d, metric in COUNTER_METRICS.items()}
        self.bodies = {
            **{metric: matrix_body(series) for metric, series in metrics.items()},
            LOG_SIZE_METRIC: matrix_body(readings.log_sizes),
            "up": matrix_body(readings.up),
            PROCESS_START_METRIC: matrix_body(scrape.process_starts),
        }
        self.cell = cell
        self.latest: dict[tuple[str, str], bytes] = {}
        self.queries = 0

    def urlopen(self, request, timeout=None):
        form = urllib.parse.parse_qs(request.data.decode())
        query, at = form["query"][0], form["time"][0]
        self.queries += 1
        if query.startswith("last_over_time("):
            if (query, at) not in self.latest:
                self.latest[query, at] = self._latest(query, float(at))
            return io.BytesIO(self.latest[query, at])
        return io.BytesIO(self.bodies[query[: query.index("{")]])

    def _latest(self, query: str, before: float) -> bytes:
        metric = query[len("last_over_time(") : query.index("{")]
        dimension = next(d for d, name in COUNTER_METRICS.items() if name == metric)
        pattern = query[query.index('topic=~"') + len('topic=~"') :].split('"', 1)[0]
        topics = {topic.replace("\\", "") for topic in pattern.split("|")}
        return vector_body(self.cell.latest(dimension, topics, before))

    def body_bytes(self) -> int:
        return sum(map(len, self.bodies.values())) + sum(map(len, self.latest.values()))


# Figures -------------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 0) -> dict:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "rounds": [round(v, digits) for v in values],
    }


def timed(timers: dict, name: str, function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timers[name] += time.perf_counter() - started

    return wrapper


def true_bytes(cell: SyntheticCell, dimension: str, start: float, end: float) -> int:
    """What the counters' topics really moved in ``[start, end]``: the counters see all of it
    but what a restart or reset cuts off after the last scrape before it."""
    return sum(
        spec.rate * (traffic(end) - traffic(max(start, spec.birth)))
        for spec in cell.counters[dimension]
        if spec.birth < end
    )


# Rollup throughput -------------------------------------------------------------------------

THROUGHPUT_SHAPE = Shape(clusters=CLUSTERS, topics=2, partitions=3, interval=30.0)


@pytest.mark.timeout(900)
def test_rollup_throughput(bench_report, monkeypatch):
    describe_setup(bench_report)
    shape, hour = THROUGHPUT_SHAPE, THROUGHPUT_HOUR
    max_gap = shape.max_gap
    window = Window(hour, hour + HOUR)
    ids = public_ids(seeded(SEED), shape.clusters)
    started = time.perf_counter()
    cell = SyntheticCell(
        shape,
        ids,
        span=(hour, hour + HOUR),
        seed=SEED,
        # broker 0 restarts (a minute down), broker 1 misses one scrape (not a gap), broker 2
        # misses four in a row (a gap: the shared Kafka's hour is incomplete for every cluster)
        restarts=[Restart(0, hour + 35 * 60, hour + 36 * 60, hour + 36 * 60 + 20)],
        outages=((1, hour + 600, hour + 630), (2, hour + 3000, hour + 3120)),
        new_topics=0.01,
        resets=0.002,
    )
    scrape = cell.readings(window, max_gap=max_gap)
    readings = scrape.readings
    generated = time.perf_counter() - started
    samples = count_samples(readings)
    series = sum(map(len, readings.counters.values())) + len(readings.log_sizes)
    progress(
        f"metering: {samples:,} samples in {series:,} series (+{len(readings.up)} up) "
        f"generated in {generated:.1f}s"
    )
    clusters = metered(ids, list(range(1, shape.clusters + 1)), hour - 30 * DAY)

    def rollup():
        attribution = Attribution(BenchCell(), clusters)
        usage = metering.rollup(readings, attribution, window, max_gap=max_gap)
        return usage, metering.scraped_hours(readings.up, window, max_gap=max_gap)

    def bare() -> int:
        total = 0
        for series_list in (*readings.counters.values(), readings.log_sizes, readings.up):
            for one in series_list:
                for sample in one.samples:
                    total += sample.value
        return total

    # What it computes, checked once (not timed).
    usage, covered = rollup()
    assert covered == {(NAMESPACE, KAFKA): set()}, "broker 2's gap leaves the hour uncovered"
    per_cluster = defaultdict(set)
    for pk, dimension, _ in usage:
        per_cluster[pk].add(dimension)
    assert len(per_cluster) == shape.clusters
    assert all(len(dimensions) == 3 for dimensions in per_cluster.values())
    ingress = sum(e.quantity for (_, d, _), e in usage.items() if d == Dimension.INGRESS_BYTES)
    expected = true_bytes(cell, Dimension.INGRESS_BYTES, window.start, window.end)
    # a restart loses what its broker counted after its last scrape (~1.5 minutes of a third)
    assert 0.97 * expected <= ingress <= 1.001 * expected, (ingress, expected)
    assert bare() > 0

    rollup_seconds, bare_seconds = [], []
    for _ in range(ROLLUP_ROUNDS):  # alternating, so that drift on the machine hits both alike
        gc.collect()
        started = time.perf_counter()
        bare()
        bare_seconds.append(time.perf_counter() - started)
        gc.collect()
        started = time.perf_counter()
        rollup()
        rollup_seconds.append(time.perf_counter() - started)
    rates = [samples / s for s in rollup_seconds]
    bare_rates = [samples / s for s in bare_seconds]
    ratios = [b / r for b, r in zip(bare_seconds, rollup_seconds, strict=True)]
    median_rate = statistics.median(rates)
    progress(f"metering: rollup {median_rate:,.0f} samples/s (median of {ROLLUP_ROUNDS} rounds)")

    # The same series as Prometheus' JSON, decoded by prometheus.read.
    answers = PrometheusAnswers(cell, scrape)
    monkeypatch.setattr(urllib.request, "urlopen", answers.urlopen)
    reader = prometheus.Prometheus("http://prometheus.bench.invalid:9090")
    read_seconds, loads_seconds = [], []
    for round_ in range(DECODE_ROUNDS):
        gc.collect()
        started = time.perf_counter()
        decoded = prometheus.read(reader, window, max_gap=max_gap)
        read_seconds.append(time.perf_counter() - started)
        if round_ == 0:  # the same readings as generated: the bodies are equivalent
            assert decoded.counters == readings.counters
            assert decoded.log_sizes == readings.log_sizes
            assert decoded.up == readings.up
            assert decoded.starts == readings.starts
            assert decoded.earlier == readings.earlier
            assert answers.latest, "the new topics were looked for before the window"
            queries_per_read = answers.queries
        del decoded
        gc.collect()
        started = time.perf_counter()
        for body in answers.bodies.values():
            json.loads(body)
        loads_seconds.append(time.perf_counter() - started)
    read_rates = [samples / s for s in read_seconds]

    bench_report.record(
        "metering_rollup",
        {
            "shape": shape.describe(),
            "window": "one hour, with the samples of the 90 s before it",
            "events": "broker 0 restarts (1 min down), broker 1 misses 1 scrape, broker 2 "
            "misses 4 (a gap), 1% of clusters create a topic in the hour, 0.2% of counters "
            "reset without a restart",
            "series": series,
            "up_series": len(readings.up),
            "samples": samples,
            "generate_seconds": round(generated, 1),
            "rounds": ROLLUP_ROUNDS,
            "rollup_seconds": spread(rollup_seconds, 3),
            "rollup_samples_per_second": spread(rates),
            "bare_iteration_seconds": spread(bare_seconds, 3),
            "bare_iteration_samples_per_second": spread(bare_rates),
            "rollup_over_bare_throughput": spread(ratios, 4),
            "target_samples_per_second": ROLLUP_SAMPLES_PER_SECOND_TARGET,
            "target_met": median_rate >= ROLLUP_SAMPLES_PER_SECOND_TARGET,
            "decode": {
                "what": "prometheus.read() over the JSON bodies (urlopen stood in for): "
                f"{queries_per_read} queries, json.load, Series and Samples built",
                "body_megabytes": round(answers.body_bytes() / 1e6, 1),
                "rounds": DECODE_ROUNDS,
                "read_seconds": spread(read_seconds, 3),
                "read_samples_per_second": spread(read_rates),
                "json_loads_seconds": spread(loads_seconds, 3),
            },
        },
    )


# A month of ledger -----------------------------------------------------------------------------

# Scaled down from THROUGHPUT_SHAPE so that two passes over the month finish in minutes.
MONTH_SHAPE = Shape(clusters=CLUSTERS, topics=1, partitions=1, interval=900.0)


def month_cell(shape: Shape, cluster_ids: list[str]) -> SyntheticCell:
    begin, end = int(MONTH_START.timestamp()), int(MONTH_END.timestamp())
    restarts = [  # a weekly rolling restart, 20 minutes apart, each broker down ~75 s
        Restart(broker, stop, stop + 45, stop + 75)
        for day in (3, 10, 17, 24)
        for broker in range(shape.brokers)
        for stop in [begin + day * DAY + 2 * HOUR + broker * 1200]
    ]
    return SyntheticCell(
        shape,
        cluster_ids,
        span=(begin - DAY, end),
        seed=SEED + 1,
        restarts=restarts,
        failure_rate=0.001,
        new_topics=0.02,
        grown_topics=0.05,
        resets=0.01,
    )


def create_month_rows(cell, synthetic: SyntheticCell) -> list[int]:
    """The clusters, topics and partition history of the synthetic cell, as rows, in bulk."""
    serverless = Tier.objects.get(slug="serverless")
    organizations = [make_org(name=f"Metered {i:02}") for i in range(ORGANIZATIONS)]
    clusters = Cluster.unscoped_all_tenants.bulk_create(
        Cluster(
            public_id=public_id,
            organization=organizations[index % ORGANIZATIONS],
            name=f"metered-{index:04}",
            tier=serverless,
            cell=cell,
            state=ClusterState.READY,
            observed_generation=1,
        )
        for index, public_id in enumerate(synthetic.cluster_ids)
    )
    Cluster.unscoped_all_tenants.filter(pk__in=[c.pk for c in clusters]).update(
        created_at=MONTH_START - timedelta(days=60)
    )
    topics = Topic.unscoped_all_tenants.bulk_create(
        Topic(
            organization_id=clusters[topic.cluster].organization_id,
            cluster=clusters[topic.cluster],
            name=topic.name.split(".", 1)[1],
            partitions=topic.partitions[-1][1],
            retention_ms=topic.retention * 1000,
        )
        for topic in synthetic.topics
    )
    for row, topic in zip(topics, synthetic.topics, strict=True):
        row.created_at = datetime.fromtimestamp(topic.born, UTC)
    Topic.unscoped_all_tenants.bulk_update(topics, ["created_at"], batch_size=1000)
    TopicPartitions.unscoped_all_tenants.bulk_create(
        TopicPartitions(
            organization_id=row.organization_id,
            topic=row,
            partitions=count,
            since=datetime.fromtimestamp(since, UTC),
        )
        for row, topic in zip(topics, synthetic.topics, strict=True)
        for since, count in topic.partitions
    )
    return [c.pk for c in clusters]


def expected_partition_hours(synthetic: SyntheticCell) -> int:
    """Every hour of the month a partition existed in (partitions only ever grow)."""
    begin, end = int(MONTH_START.timestamp()), int(MONTH_END.timestamp())
    total = 0
    for topic in synthetic.topics:
        previous = 0
        for since, count in topic.partitions:
            first_hour = max(begin, since // HOUR * HOUR)
            total += (count - previous) * max(0, (end - first_hour) // HOUR)
            previous = count
    return total


def recompute_month(cell, synthetic: SyntheticCell, monkeypatch) -> dict:
    """From the month's first hour to its end, run after run as the collector catches up on
    a backlog: each run a window of SLUICE_METERING_MAX_WINDOW_HOURS from the watermark's hour,
    Prometheus' answers generated instead of read (timed apart)."""
    from billing import services

    timers: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)

    def read(reader, window, *, max_gap):
        started = time.perf_counter()
        readings = synthetic.readings(window, max_gap=max_gap).readings
        timers["generate"] += time.perf_counter() - started
        counts["samples"] += count_samples(readings)
        return readings

    with monkeypatch.context() as patch:
        patch.setattr(metering, "read", read)
        for name in ("metered_clusters", "rollup", "scraped_hours", "partition_hours"):
            patch.setattr(metering, name, timed(timers, name, getattr(metering, name)))
        patch.setattr(
            metering, "record_hours", timed(timers, "record_hours", services.record_hours)
        )
        patch.setattr(
            services,
            "_adjust_final_hours",
            timed(timers, "adjust_final_hours", services._adjust_final_hours),
        )
        gc.collect()
        started = time.perf_counter()
        metering.reopen(cell, MONTH_START)
        while True:
            result = metering.collect_cell(cell, now=MONTH_END)
            counts["runs"] += 1
            counts["written"] += result.written
            if result.window.end >= MONTH_END.timestamp():
                break
        wall = time.perf_counter() - started
    seconds = wall - timers["generate"]
    rollup = timers["rollup"] + timers["scraped_hours"]
    upserts = timers["record_hours"]
    reads = timers["metered_clusters"] + timers["partition_hours"]
    return {
        "seconds": round(seconds, 1),
        "runs": counts["runs"],
        "rows_written": counts["written"],
        "samples": counts["samples"],
        "split_seconds": {
            "rollup (rollup + scraped_hours)": round(rollup, 1),
            "partition-hours and clusters (DB reads)": round(reads, 1),
            "ledger upserts (record_hours)": round(upserts, 1),
            "  of which the invoiced-hours check": round(timers["adjust_final_hours"], 1),
            "rest (snapshot rows, cursor)": round(seconds - rollup - upserts - reads, 1),
        },
        "generate_seconds_not_counted": round(timers["generate"], 1),
        "rollup_samples_per_second": round(counts["samples"] / rollup) if rollup else None,
    }


# Rows in the ledger that the first pass did not leave, and rows it left that are gone.
LEDGER_DIFFERENCES = """
SELECT
    (SELECT count(*) FROM (
        SELECT cluster_id, dimension, hour, quantity, complete, computed_at FROM billing_usagehour
        EXCEPT ALL
        SELECT cluster_id, dimension, hour, quantity, complete, computed_at FROM bench_first_ledger
    ) AS added),
    (SELECT count(*) FROM (
        SELECT cluster_id, dimension, hour, quantity, complete, computed_at FROM bench_first_ledger
        EXCEPT ALL
        SELECT cluster_id, dimension, hour, quantity, complete, computed_at FROM billing_usagehour
    ) AS removed)
"""


def ledger_summary() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dimension, count(*), sum(quantity), count(*) FILTER (WHERE NOT complete) "
            "FROM billing_usagehour GROUP BY dimension"
        )
        return {
            dimension: (rows, int(total), incomplete)
            for dimension, rows, total, incomplete in cursor.fetchall()
        }


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(1800)
def test_month_of_ledger_recomputed(bench_report, settings, monkeypatch):
    describe_setup(bench_report)
    shape = MONTH_SHAPE
    settings.SLUICE_METERING_MAX_GAP_SECONDS = shape.max_gap
    ledger_months_made(MONTH_START)
    started = time.perf_counter()
    cell = make_cell(
        "eu-west-1",
        slug="eu-west-1-metering",
        prometheus_url="http://prometheus.bench.invalid:9090",
        shared_kafka_namespace=NAMESPACE,
        shared_kafka_name=KAFKA,
        max_shared_clusters=100_000,
    )
    synthetic = month_cell(shape, public_ids(seeded(SEED + 1), shape.clusters))
    create_month_rows(cell, synthetic)
    MeteringCursor.objects.create(cell=cell, watermark=MONTH_START)
    setup = time.perf_counter() - started
    progress(f"metering: {shape.clusters} clusters, {len(synthetic.topics)} topics in {setup:.1f}s")
    hours = int((MONTH_END - MONTH_START).total_seconds()) // HOUR

    first = recompute_month(cell, synthetic, monkeypatch)
    progress(f"metering: month recomputed in {first['seconds']}s ({first['split_seconds']})")
    summary = ledger_summary()
    # Serverless meters no time dimension (billing.time_dimensions): the usage ones only.
    usage_dimensions = [d for d in METERED_DIMENSIONS if d not in TIME_DIMENSIONS]
    rows = shape.clusters * len(usage_dimensions) * hours
    assert sum(r for r, _, _ in summary.values()) == rows
    assert summary[Dimension.PARTITION_HOURS][1] == expected_partition_hours(synthetic)
    begin, end = MONTH_START.timestamp(), MONTH_END.timestamp()
    for dimension in COUNTER_METRICS:
        expected = true_bytes(synthetic, dimension, begin, end)
        assert 0.99 * expected <= summary[dimension][1] <= 1.001 * expected, dimension
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_first_ledger AS SELECT cluster_id, dimension, hour, "
            "quantity, complete, computed_at FROM billing_usagehour"
        )

    second = recompute_month(cell, synthetic, monkeypatch)
    progress(f"metering: recomputed again in {second['seconds']}s ({second['split_seconds']})")
    with connection.cursor() as cursor:
        cursor.execute(LEDGER_DIFFERENCES)
        added, removed = cursor.fetchone()
        cursor.execute("DROP TABLE bench_first_ledger")
    assert (added, removed) == (0, 0), "the second recomputation changed the ledger"
    assert UsageHour.unscoped_all_tenants.count() == rows

    # The rollup benchmark's density, for an estimate the report makes with its rates (pytest-
    # django runs this test first: the other one needs no database).
    full = THROUGHPUT_SHAPE
    full_density = {
        "density": f"{full.topics} topics x {full.partitions} partitions, "
        f"every {full.interval:g} s",
        "samples": round(
            first["samples"] * full.samples_per_cluster_hour / shape.samples_per_cluster_hour
        ),
    }
    bench_report.record(
        "metering_month",
        {
            "shape": shape.describe(),
            "month": f"{MONTH_START:%Y-%m-%d} to {MONTH_END:%Y-%m-%d} ({hours} hours)",
            "events": "weekly rolling broker restarts, a run of 1-6 failed scrapes per broker, "
            "2% of clusters create a topic, 5% of topics double their partitions, 1% of "
            "counters reset without a restart",
            "organizations": ORGANIZATIONS,
            "topics": len(synthetic.topics),
            "window_hours": settings.SLUICE_METERING_MAX_WINDOW_HOURS,
            "setup_seconds": round(setup, 1),
            "rows": rows,
            "incomplete_rows": sum(i for _, _, i in summary.values()),
            "first": first,
            "second": second,
            "identical_after_second": True,
            "full_density": full_density,
        },
    )
