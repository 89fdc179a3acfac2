"""A topic's page: its settings, every config with its value or Kafka's default, the form to
add partitions, and its live size and traffic ("not measured" without a Prometheus)."""

from __future__ import annotations

import pytest

from tenants.roles import Role
from tests.clusters.topic_pages import url
from tests.factories import UserFactory, add_member

pytestmark = pytest.mark.django_db


def test_the_topic_page_shows_its_settings_and_configs(client, owner, topic):
    client.force_login(owner)
    response = client.get(url(topic))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"{topic.cluster.public_id}.orders.v1" in html  # its Kafka name
    assert 'name="partitions" value="3"' in html
    assert "<th>Replication factor</th><td>3</td>" in html
    assert "<td>7 days</td>" in html
    assert (
        "<code>max.message.bytes</code></td><td><code>2000000</code></td><td><code>1048588</code>"
        in html
    )
    assert (
        '<code>segment.ms</code></td><td><span class="muted">default</span></td>'
        "<td><code>604800000</code>" in html
    )
    assert f'hx-get="{url(topic, "metrics/")}"' in html

    cluster_page = client.get(url(topic).split("topics/")[0]).content.decode()
    assert f'href="{url(topic)}"' in cluster_page


def test_a_viewer_reads_it_without_the_form(client, topic):
    client.force_login(add_member(topic.organization, Role.VIEWER).user)
    html = client.get(url(topic)).content.decode()
    assert 'name="partitions"' not in html
    assert "Increase" not in html
    assert "<th>Partitions</th>" in html


def test_its_live_size_and_traffic_are_not_measured_without_prometheus(client, owner, topic):
    client.force_login(owner)
    html = client.get(url(topic, "metrics/")).content.decode()
    assert html.count("<strong>not measured</strong>") == 3  # ingress, egress, storage
    assert 'id="live-partitions"' not in html


def test_another_organization_gets_404(client, topic):
    client.force_login(UserFactory())
    assert client.get(url(topic)).status_code == 404
    assert client.get(url(topic, "metrics/")).status_code == 404
