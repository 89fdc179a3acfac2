"""Changing a topic from its page: retention, cleanup policy and the configs a tenant may set,
through the service the API uses, each outcome shown in the page's settings card; a partitions
change made there returns there too. Only ``clusters:write`` may change them."""

from __future__ import annotations

import pytest

from clusters import services
from clusters.models import Topic
from tenants.audit import Actor
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.clusters.topic_pages import url
from tests.factories import UserFactory, add_member

pytestmark = pytest.mark.django_db

DAY_MS = 86_400_000


def settings(topic, **changes) -> dict:
    """The form as the page shows it for the fixture's topic (on a shared tier, with the
    retention.bytes the service set), with ``changes``."""
    return {
        "retention": "7",
        "retention_unit": "days",
        "cleanup_policy": "delete",
        **topic.configs,
        **changes,
    }


def stored(topic) -> Topic:
    with tenant_scope(topic.organization):
        return Topic.objects.get(pk=topic.pk)


def test_the_form_shows_the_topics_settings(client, owner, topic):
    client.force_login(owner)
    html = client.get(url(topic)).content.decode()
    assert f'action="{url(topic, "settings/")}"' in html
    assert 'name="retention" value="7"' in html
    assert '<option value="days" selected>days</option>' in html
    assert 'name="max.message.bytes" value="2000000"' in html
    assert 'name="segment.ms"' in html


def test_a_change_shows_up_on_the_topic_page(client, owner, topic):
    client.force_login(owner)
    response = client.post(
        url(topic, "settings/"),
        settings(
            topic,
            retention="36",
            retention_unit="hours",
            cleanup_policy="compact",
            **{"segment.ms": "700000"},
        ),
    )
    assert response.status_code == 302
    assert response["Location"] == f"{url(topic)}#topic-settings"

    changed = stored(topic)
    assert changed.retention_ms == 36 * 3_600_000
    assert changed.cleanup_policy == "compact"
    assert changed.configs == {**topic.configs, "segment.ms": "700000"}

    html = client.get(url(topic)).content.decode()
    assert "Topic orders.v1&#x27;s settings are saved." in html
    assert "<td>36 hours</td>" in html
    assert "<code>segment.ms</code></td><td><code>700000</code>" in html
    assert "<code>compact</code>" in html


def test_an_emptied_config_goes_back_to_kafkas_default(client, owner, topic):
    client.force_login(owner)
    client.post(url(topic, "settings/"), settings(topic, **{"max.message.bytes": ""}))
    assert "max.message.bytes" not in stored(topic).configs


def test_a_bad_value_is_a_form_error_that_keeps_what_was_typed(client, owner, topic):
    client.force_login(owner)
    response = client.post(
        url(topic, "settings/"), settings(topic, retention="2", **{"max.message.bytes": "lots"})
    )
    assert response["Location"] == f"{url(topic)}#topic-settings"
    assert stored(topic).configs == topic.configs  # nothing was changed
    assert stored(topic).retention_ms == 7 * DAY_MS

    html = client.get(url(topic)).content.decode()
    assert 'name="max.message.bytes" value="lots"' in html
    assert 'name="retention" value="2"' in html
    # The rule the API states, on the field.
    assert "max.message.bytes is an integer from 1 to 8388608" in html
    # Shown once: a reload is the page afresh.
    assert 'value="lots"' not in client.get(url(topic)).content.decode()


def test_a_refusal_by_the_service_is_shown_on_its_field(client, owner, topic):
    client.force_login(owner)
    too_long = topic.cluster.tier.max_retention_hours + 1
    client.post(
        url(topic, "settings/"), settings(topic, retention=str(too_long), retention_unit="hours")
    )
    assert stored(topic).retention_ms == 7 * DAY_MS

    html = client.get(url(topic)).content.decode()
    assert f'name="retention" value="{too_long}"' in html
    assert "retention_ms is 60000 to" in html


def test_a_retention_left_as_shown_is_kept_exactly(client, owner, topic):
    """A retention of no whole minutes (set through the API) is shown rounded; saving other
    settings does not round it."""
    with tenant_scope(topic.organization):
        services.topic_update(topic=topic, actor=Actor(system="tests"), retention_ms=90_500)
    client.force_login(owner)
    html = client.get(url(topic)).content.decode()
    assert 'name="retention" value="2"' in html
    client.post(
        url(topic, "settings/"),
        settings(topic, retention="2", retention_unit="minutes", cleanup_policy="compact"),
    )
    assert stored(topic).retention_ms == 90_500
    assert stored(topic).cleanup_policy == "compact"


def test_partitions_added_on_the_topic_page_return_to_it(client, owner, topic):
    client.force_login(owner)
    response = client.post(url(topic, "partitions/"), {"partitions": "5", "back": "topic"})
    assert response["Location"] == f"{url(topic)}#topic-settings"
    assert "Topic orders.v1 now has 5 partitions." in client.get(url(topic)).content.decode()

    refused = client.post(url(topic, "partitions/"), {"partitions": "2", "back": "topic"})
    assert refused["Location"] == f"{url(topic)}#topic-settings"
    assert "Kafka cannot take partitions away" in client.get(url(topic)).content.decode()

    from_cluster_page = client.post(url(topic, "partitions/"), {"partitions": "6"})
    assert from_cluster_page["Location"].endswith("#topic-orders.v1")
    assert stored(topic).partitions == 6


def test_a_viewer_sees_the_values_but_cannot_change_them(client, topic):
    client.force_login(add_member(topic.organization, Role.VIEWER).user)
    html = client.get(url(topic)).content.decode()
    assert "topic-settings-form" not in html
    assert "<td>7 days</td>" in html

    response = client.post(url(topic, "settings/"), settings(topic, cleanup_policy="compact"))
    assert response.status_code == 403
    assert stored(topic).cleanup_policy == "delete"


def test_a_developer_may_change_them(client, topic):
    client.force_login(add_member(topic.organization, Role.DEVELOPER).user)
    client.post(url(topic, "settings/"), settings(topic, cleanup_policy="compact"))
    assert stored(topic).cleanup_policy == "compact"


def test_another_organization_gets_404(client, topic):
    client.force_login(UserFactory())
    response = client.post(url(topic, "settings/"), settings(topic, cleanup_policy="compact"))
    assert response.status_code == 404
    assert stored(topic).cleanup_policy == "delete"


def test_a_reload_of_the_settings_route_is_the_topic_page(client, owner, topic):
    client.force_login(owner)
    response = client.get(url(topic, "settings/"))
    assert response["Location"] == f"{url(topic)}#topic-settings"


def test_saving_the_settings_as_they_are_changes_nothing(client, owner, topic):
    client.force_login(owner)
    generation = topic.cluster.generation
    client.post(url(topic, "settings/"), settings(topic))
    html = client.get(url(topic)).content.decode()
    assert "Nothing was changed: those are topic orders.v1&#x27;s settings already." in html
    topic.cluster.refresh_from_db()
    assert topic.cluster.generation == generation
