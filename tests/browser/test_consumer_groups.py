"""Consumer groups and connecting, in a real browser. On a cluster of the real test broker (the
Strimzi emulator applies its KafkaUsers there), a tenant's consumer makes a group appear on the
console's page with its member and lag; once the consumer has left, the page resets the group's
offsets. On the simulated data plane, a snippet's copy button puts it on the clipboard."""

from __future__ import annotations

import pytest

from tests.clusters.test_consumer_groups_kafka import consume, produce
from tests.factories import UserFactory, make_cell, make_cluster, make_org
from tests.support.browser import in_viewport, sign_in
from tests.support.clients import session_client
from tests.support.shared_kafka import converge, make_shared_kafka_cell, tenant_config

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.kube
@pytest.mark.kafka
def test_a_consume_makes_a_group_appear_and_its_offsets_reset(
    watched_page, base_url, kube, kafka_environment, strimzi_emulator_on_kafka, settings
):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    cell = make_shared_kafka_cell(kube, kafka_environment, strimzi_emulator_on_kafka)
    owner = UserFactory()
    organization = make_org(owner=owner, name="Browsing Readers")
    api = session_client(owner)
    base = f"/api/v1/orgs/{organization.public_id}/clusters/"
    created = api.post(
        base, {"name": "watched", "type": "serverless", "region": cell.region}, format="json"
    )
    cluster_id = created.json()["cluster"]["id"]
    topic = api.post(
        f"{base}{cluster_id}/topics/", {"name": "clicks", "partitions": 2}, format="json"
    ).json()["topic"]
    credential = api.post(f"{base}{cluster_id}/credentials/", {"name": "app"}, format="json")
    credential = credential.json()["credential"]
    converge(cluster_id)
    connection = api.get(f"{base}{cluster_id}/").json()["connection"]
    config = tenant_config({**credential, "connection": connection})
    page = watched_page
    sign_in(page, owner, base_url)
    groups_page = f"/orgs/{organization.public_id}/clusters/{cluster_id}/consumer-groups/"

    page.goto(f"/orgs/{organization.public_id}/clusters/{cluster_id}/")
    page.get_by_role("link", name="Consumer groups").last.click()
    page.wait_for_url(f"**{groups_page}")
    assert page.get_by_text("No consumer groups yet").is_visible()

    produce(config, topic["kafka_name"], 4)
    consumer = consume(config, f"{cluster_id}.dashboard", topic["kafka_name"], 4)
    produce(config, topic["kafka_name"], 2)
    try:
        page.reload()
        row = page.locator('tr[data-group="dashboard"]')
        assert row.is_visible()
        cells = row.locator("td").all_inner_texts()
        assert cells[1:4] == ["stable", "1", "2"]  # state, members, lag
        row.get_by_role("link", name="dashboard").click()
        assert page.locator("[data-state]").inner_text() == "stable"
        assert page.get_by_text("stop its 1 consumer first").is_visible()
    finally:
        consumer.close()

    for _ in range(30):  # the group empties once the consumer has left (bounded)
        page.reload()
        if page.locator("[data-state]").inner_text() == "empty":
            break
        page.wait_for_timeout(1000)
    page.get_by_label("Reset to").select_option("earliest")
    page.get_by_role("button", name="Reset offsets").click()
    message = page.get_by_text("The offsets of dashboard were reset on 2 partition(s).")
    assert message.is_visible()
    assert page.get_by_text("6 records").is_visible()  # everything is to be read again
    assert in_viewport(page, "#reset")


def test_a_snippets_copy_button_copies_it(watched_page, base_url):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Copiers")
    make_cell()
    cluster, _ = make_cluster(organization)
    cluster.refresh_from_db()
    assert cluster.state == "ready"  # the simulated data plane, at once
    page = watched_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    sign_in(page, owner, base_url)
    page.goto(f"/orgs/{organization.public_id}/clusters/{cluster.public_id}/")

    button = page.locator('button[data-copy="snippet-python"]')
    button.click()
    page.wait_for_function(
        "document.querySelector('button[data-copy=\"snippet-python\"]').textContent === 'Copied'"
    )
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#snippet-python").inner_text()
    assert cluster.bootstrap_servers in copied
    assert '"sasl.mechanism": "SCRAM-SHA-512"' in copied
