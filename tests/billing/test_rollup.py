"""The rollup of Prometheus series into per-cluster hours: attribution, restarts, new and
returning series, storage, scrape coverage. Pure functions over series built here (what the
Prometheus API would have returned); tests/billing/test_metering.py reads a real one."""

from __future__ import annotations

from billing.attribution import Attribution, MeteredCluster
from billing.deltas import HOUR, Sample, Window
from billing.metering import rollup, scraped_hours
from billing.prometheus import Readings, Series, regex_literal
from clusters.models import Dimension

T0 = 1_795_000_000 // HOUR * HOUR  # the start of an hour
SHARED = {"namespace": "sluice-shared", "strimzi_io_cluster": "shared"}
BROKER = {"job": "kafka", "instance": "10.0.0.1:9404"}
GAP = 90.0


class Cell:
    shared_kafka_namespace = "sluice-shared"
    shared_kafka_name = "shared"


CLUSTERS = [
    MeteredCluster(1, "kc_a", "serverless", T0 - HOUR, None),
    MeteredCluster(2, "kc_ab", "serverless", T0 - HOUR, None),
    MeteredCluster(3, "kc_d", "dedicated", T0 - HOUR, None),
]
ATTRIBUTION = Attribution(Cell(), CLUSTERS)


def counter(topic: str, points: list[tuple[float, int]], **labels) -> Series:
    merged = {**SHARED, **BROKER, "topic": topic, **labels}
    return Series(merged, [Sample(at, value) for at, value in points])


def every(step: float, start: float, end: float, value) -> list[tuple[float, int]]:
    """(instant, value(instant)) every ``step`` seconds over [start, end]."""
    count = int((end - start) // step) + 1
    return [(start + i * step, value(start + i * step)) for i in range(count)]


def ingress(readings: Readings, window: Window) -> dict[tuple[int, int], tuple[int, bool]]:
    usage = rollup(readings, ATTRIBUTION, window, max_gap=GAP)
    return {
        (pk, hour - T0): (entry.quantity, entry.complete)
        for (pk, dimension, hour), entry in usage.items()
        if dimension == Dimension.INGRESS_BYTES
    }


def test_series_belong_to_clusters_by_prefix_or_namespace():
    def owner(topic: str, **labels) -> int | None:
        return ATTRIBUTION.cluster_of({**SHARED, "topic": topic, **labels})

    assert owner("kc_a.orders") == 1
    assert owner("kc_ab.orders") == 2  # kc_a's prefix is "kc_a.", not "kc_a"
    assert owner("kc_abc.orders") is None  # no such cluster
    assert owner("orders") is None  # no prefix on the shared Kafka
    assert owner("__consumer_offsets") is None  # Kafka's own
    assert owner("") is None  # the broker-wide total
    dedicated = {"namespace": "sl-kc-d", "strimzi_io_cluster": "kc-d"}
    assert owner("orders", **dedicated) == 3
    assert owner("__transaction_state", **dedicated) is None
    assert owner("orders", namespace="sl-kc-d", strimzi_io_cluster="other") is None
    assert owner("kc_a.orders", namespace="elsewhere", strimzi_io_cluster="shared") is None


def test_traffic_is_summed_per_cluster_and_split_at_the_hour():
    window = Window(T0, T0 + 2 * HOUR)
    readings = Readings(
        counters={
            Dimension.INGRESS_BYTES: [
                # 1,000 bytes a second on each of two brokers, from before the window
                counter(
                    "kc_a.x", every(10, T0 - 60, T0 + 2 * HOUR, lambda t: int(1000 * (t - T0 + 60)))
                ),
                counter(
                    "kc_a.x",
                    every(10, T0 - 60, T0 + 2 * HOUR, lambda t: int(1000 * (t - T0 + 60))),
                    instance="10.0.0.2:9404",
                ),
                counter("__consumer_offsets", every(10, T0 - 60, T0 + 2 * HOUR, lambda t: int(t))),
            ]
        }
    )
    assert ingress(readings, window) == {
        (1, 0): (2 * 3_600_000, True),
        (1, HOUR): (2 * 3_600_000, True),
    }


def test_a_restart_counts_the_new_counter_from_zero_even_when_it_passed_the_old_value():
    window = Window(T0, T0 + HOUR)
    # 500 bytes before a restart at T0+1000; then 900 bytes by the next scrape: more than 500,
    # so only the broker's start time shows the counter began again.
    before = every(10, T0 - 30, T0 + 990, lambda t: max(0, int(500 * (t - T0) / 990)))
    points = before + every(10, T0 + 1000, T0 + HOUR, lambda t: 900)
    restarted = Readings(
        counters={Dimension.INGRESS_BYTES: [counter("kc_a.x", points)]},
        starts={("kafka", "10.0.0.1:9404"): [T0 - 86400, T0 + 1000]},
    )
    assert ingress(restarted, window) == {(1, 0): (1_400, True)}
    not_known = Readings(counters={Dimension.INGRESS_BYTES: [counter("kc_a.x", points)]})
    assert ingress(not_known, window)[1, 0][0] == 900  # what counting without it would miss


def test_a_restart_in_the_second_of_the_last_scrape_before_it_is_still_seen():
    # The old broker's last scrape at .856 of a second, its successor started at .963 of the
    # same second and had counted more by its first scrape than the old one ever did.
    window = Window(T0, T0 + HOUR)
    points = [(T0, 0), (T0 + 1000.856, 20_543), (T0 + 1002.856, 51_083)]

    def counted(start: float) -> int:
        readings = Readings(
            counters={Dimension.INGRESS_BYTES: [counter("kc_a.x", points)]},
            starts={("kafka", "10.0.0.1:9404"): [T0 - 86400, start]},
        )
        return ingress(readings, window)[1, 0][0]

    assert counted(T0 + 1000.963) == 20_543 + 51_083
    # The start cut to its whole second falls before that last scrape: the bytes counted
    # before the restart would be lost (billing.prometheus reads it to the millisecond).
    assert counted(T0 + 1000) == 51_083


def test_a_new_series_counts_from_zero_and_a_returning_one_from_its_last_value():
    window = Window(T0, T0 + HOUR)
    appearing = counter(
        "kc_a.x", every(10, T0 + 600, T0 + HOUR, lambda t: 700 if t < T0 + 630 else 750)
    )
    new = Readings(counters={Dimension.INGRESS_BYTES: [appearing]})
    assert ingress(new, window) == {(1, 0): (750, True)}
    # The same series, seen a day earlier at 600: it went unscraped, it did not start anew.
    returning = Readings(
        counters={Dimension.INGRESS_BYTES: [appearing]}, earlier={appearing.key: 600}
    )
    assert ingress(returning, window) == {(1, 0): (150, False)}


def test_a_deleted_topic_does_not_leave_its_last_hour_incomplete():
    window = Window(T0, T0 + 2 * HOUR)
    points = every(10, T0 - 60, T0 + 1800, lambda t: int(t - T0 + 60))
    readings = Readings(counters={Dimension.INGRESS_BYTES: [counter("kc_a.x", points)]})
    assert ingress(readings, window) == {(1, 0): (1800, True)}


def test_storage_is_the_mean_size_of_one_copy_over_the_hour():
    window = Window(T0, T0 + HOUR)
    leader = counter("kc_a.x", every(10, T0 - 10, T0 + HOUR, lambda t: 5_000), partition="0")
    follower = counter(
        "kc_a.x",
        every(10, T0 - 10, T0 + HOUR, lambda t: 4_990),
        partition="0",
        instance="10.0.0.2:9404",
    )
    # a second partition that appears half-way through the hour with 2,000 bytes
    later = counter("kc_a.x", every(10, T0 + 1800, T0 + HOUR, lambda t: 2_000), partition="1")
    usage = rollup(Readings(log_sizes=[leader, follower, later]), ATTRIBUTION, window, max_gap=GAP)
    assert usage[1, Dimension.STORAGE_BYTE_HOURS, T0].quantity == 5_000 + 1_000


def test_hours_with_failed_or_missing_scrapes_are_not_covered():
    window = Window(T0, T0 + 3 * HOUR)

    def up(points):
        return Series({**SHARED, **BROKER}, [Sample(at, value) for at, value in points])

    steady = every(30, T0 - 30, T0 + 3 * HOUR, lambda t: 1)
    failed = [(at, 0 if T0 + HOUR + 600 <= at < T0 + HOUR + 700 else 1) for at, _ in steady]
    missing = [(at, v) for at, v in steady if not T0 + 2 * HOUR + 600 <= at < T0 + 2 * HOUR + 800]
    assert scraped_hours([up(steady)], window, max_gap=GAP) == {
        ("sluice-shared", "shared"): {T0, T0 + HOUR, T0 + 2 * HOUR}
    }
    assert scraped_hours([up(steady), up(failed)], window, max_gap=GAP) == {
        ("sluice-shared", "shared"): {T0, T0 + 2 * HOUR}
    }
    assert scraped_hours([up(missing)], window, max_gap=GAP) == {
        ("sluice-shared", "shared"): {T0, T0 + HOUR}
    }


def test_topic_names_are_matched_literally_in_promql():
    # PromQL string escapes first, then RE2: "\\." in the query is a literal dot.
    assert regex_literal("kc_a1.orders-v2") == "kc_a1\\\\.orders\\\\-v2"
