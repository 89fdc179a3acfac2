"""A topic's settings changed on its page in a real browser: the page comes back scrolled to
the settings card, with the new retention shown and the success message beside the form."""

import pytest

from clusters import services
from clusters.models import ClusterState
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, make_cluster, make_org
from tests.support.browser import in_viewport, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_retention_changed_on_the_topic_page_shows_there(watched_page, base_url):
    owner = UserFactory(email="owner@topic-settings.example")
    cluster, _ = make_cluster(make_org(owner=owner, name="Topic settings"), name="events")
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.READY  # the simulated data plane, run eagerly
    with tenant_scope(cluster.organization):
        services.topic_create(
            cluster=cluster, actor=Actor(system="tests"), name="orders", partitions=1
        )
    topic_path = (
        f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/topics/orders/"
    )
    page = watched_page
    sign_in(page, owner, base_url)
    page.goto(topic_path)
    assert page.locator("#topic-settings td", has_text="7 days").count() == 1

    page.fill("#id_retention", "2")
    page.select_option("#id_retention_unit", "days")
    with page.expect_navigation():
        page.click("#topic-settings-form button[type=submit]")

    assert page.url.endswith(f"{topic_path}#topic-settings")
    assert page.locator("#topic-settings td", has_text="2 days").count() == 1
    success = "#topic-settings .alert-success"
    assert page.locator(success).inner_text() == "Topic orders's settings are saved."
    assert in_viewport(page, success)
    assert page.input_value("#id_retention") == "2"
