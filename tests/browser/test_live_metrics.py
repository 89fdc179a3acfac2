"""The cluster page's live metrics in a real browser: htmx loads them, Chart.js draws the
measured ones under the strict Content-Security-Policy (the watch fails on any violation or
console error), and a cell without Prometheus says "not measured"."""

import pytest

from clusters.models import Cell
from tests.clusters.test_live_metrics import create_topic, produce
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.browser import sign_in
from tests.support.services import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def open_cluster(page, base_url, *, prometheus_url: str = ""):
    owner = UserFactory()
    cluster, _ = make_cluster(make_org(owner=owner, name="Browser Live"))
    Cell.objects.filter(pk=cluster.cell.pk).update(prometheus_url=prometheus_url)
    sign_in(page, owner, base_url)
    page.goto(f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/")
    return cluster


def test_a_cell_without_prometheus_reads_not_measured(watched_page, base_url):
    open_cluster(watched_page, base_url)
    watched_page.wait_for_selector("#live-ingress")
    cards = watched_page.locator("#live .live-metric")
    assert cards.count() == 5
    for index in range(5):
        assert "not measured" in cards.nth(index).locator(".live-now").inner_text()
    assert watched_page.locator("#live canvas").count() == 0


@pytest.mark.kafka
def test_measured_metrics_are_drawn_with_chart_js(watched_page, base_url, kafka_environment):
    env = kafka_environment
    owner_page = watched_page
    cluster = open_cluster(owner_page, base_url, prometheus_url=env.prometheus_url)
    orders = create_topic(env, cluster, "orders", 2)
    produce(env, orders, 20, 500)
    wait_for(
        lambda: env.query(f'kafka_log_log_size{{topic="{orders}",partition="1"}}'),
        timeout=30,
        what="Prometheus to scrape the topic's size",
    )
    owner_page.reload()
    owner_page.wait_for_selector("#live-partitions canvas")
    assert owner_page.locator("#live canvas").count() == 5
    # Chart.js made a chart of each canvas (the script ran, under the page's CSP).
    drawn = owner_page.evaluate(
        "() => [...document.querySelectorAll('#live canvas')]"
        ".filter((canvas) => window.Chart.getChart(canvas)).length"
    )
    assert drawn == 5
    assert "2 partitions" in owner_page.locator("#live-partitions .live-now").inner_text()
    assert "of 2,048 partitions" in owner_page.locator("#live-partitions").inner_text()
