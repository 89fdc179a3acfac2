"""The console as a tenant goes through it, on the simulated data plane: the first steps tick
off, the quota use follows, an operation and the audit log say what changed (by name, before
and after), and resizing asks first with the size now and after and its cost."""

import re

import pytest

from clusters.models import ClusterState
from tests.factories import UserFactory, make_cell, make_cluster, make_org
from tests.support.browser import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def step_states(page) -> list[tuple[str, bool]]:
    steps = page.locator("#first-steps li.step")
    return [
        (
            steps.nth(n)
            .locator("a, span:not(.step-mark):not(.visually-hidden)")
            .first.inner_text(),
            "step-done" in (steps.nth(n).get_attribute("class") or ""),
        )
        for n in range(steps.count())
    ]


def test_first_steps_quota_use_and_what_each_change_did(watched_page, base_url, settings):
    settings.SLUICE_SIMULATED_SERVERLESS_READY_SECONDS = 0
    make_cell()
    owner = UserFactory()
    organization = make_org(owner=owner, name="Tour Co")
    sign_in(watched_page, owner, base_url)
    page = watched_page
    clusters = f"/orgs/{organization.public_id}/clusters/"

    page.goto(clusters)
    assert step_states(page) == [
        ("Create a cluster", False),
        ("Create a topic", False),
        ("Create a credential", False),
        ("Connect a client", False),
    ]
    assert page.get_by_text("0 of 10").first.is_visible()

    page.get_by_label("Cluster name").fill("events")
    page.get_by_role("button", name="Create cluster").click()
    page.get_by_text("Cluster events was requested.").wait_for()
    page.locator("#id_topic-name").fill("orders")
    page.locator("#id_topic-partitions").fill("3")
    page.locator("form[action$='/topics/'] button[type=submit]").click()
    row = page.locator("#topic-orders")
    row.wait_for()
    row.locator("input[name=partitions]").fill("1200")
    row.locator("form[action$='/partitions/'] button[type=submit]").click()
    row.get_by_text("Topic orders now has 1,200 partitions.").wait_for()

    operations = page.locator("section", has_text="Recent operations")
    grown = operations.locator("tr", has_text="topic.update")
    assert "orders" in grown.inner_text()
    assert re.search(r"partitions:\s*3\s*→\s*1,200", grown.inner_text())

    page.goto(f"/orgs/{organization.public_id}/audit/")
    updated = page.locator("tr", has_text="topic.updated").first
    assert "events" in updated.inner_text()
    assert re.search(r"partitions:\s*3\s*→\s*1,200", updated.inner_text())

    page.goto(clusters)
    assert [done for _, done in step_states(page)] == [True, True, False, False]
    assert page.get_by_text("1 of 10").first.is_visible()  # clusters
    assert page.get_by_text("1,200 of 10,000").first.is_visible()  # partitions


def test_resizing_asks_first_with_the_size_now_and_after_and_its_cost(
    watched_page, base_url, settings
):
    settings.SLUICE_SIMULATED_DEDICATED_READY_SECONDS = 0
    owner = UserFactory()
    organization = make_org(owner=owner, name="Resize Co")
    cluster, _ = make_cluster(organization, name="orders", tier_slug="dedicated", capacity_units=1)
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.READY
    sign_in(watched_page, owner, base_url)
    page = watched_page

    page.goto(f"/orgs/{organization.public_id}/clusters/{cluster.public_id}/")
    page.locator("#id_resize-capacity_units").fill("2")
    page.locator("#resize button[type=submit]").click()
    page.wait_for_url(re.compile(r"/resize/"))
    confirm = page.locator("section.confirm")
    assert "orders has 1 capacity unit now" in confirm.inner_text()
    assert confirm.get_by_role("heading", name="Resize orders to 2 capacity units?").is_visible()
    # 1,460 capacity-unit-hours at $1.50 = $2,190.00, + $52.56 read + $8.64 stored.
    confirm.get_by_text("≈ $2,251.20 a month").wait_for()
    confirm.get_by_role("button").first.click()
    page.wait_for_url(re.compile(rf"/clusters/{cluster.public_id}/"))
    operations = page.locator("section", has_text="Recent operations")
    resized = operations.locator("tr", has_text="cluster.update").first
    assert re.search(r"capacity_units:\s*1\s*→\s*2", resized.inner_text())
