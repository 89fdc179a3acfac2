"""Numbers a person reads on the clusters' pages carry thousands separators (``intcomma``),
and never inside an attribute, where a form or a meter reads them as numbers."""

import pytest
from django.urls import reverse

from clusters.models import ClusterState, Topic
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_cell, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def orders(owner, django_capture_on_commit_callbacks):
    """A ready cluster's topic of 1,500 partitions (set in the database: no form needs to grow
    a topic that far for the page to show it)."""
    org = make_org(owner=owner, name="Wide")
    make_cell()
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(org)
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.READY
    owner_client = session_client(owner)
    owner_client.post(
        reverse(
            "clusters:topic-create", kwargs={"org": org.public_id, "cluster_id": cluster.public_id}
        ),
        {
            "topic-name": "orders",
            "topic-partitions": "6",
            "topic-retention": "36",
            "topic-retention_unit": "hours",
            "topic-cleanup_policy": "delete",
        },
    )
    with tenant_scope(org):
        assert Topic.objects.filter(name="orders").update(partitions=1500) == 1
    return cluster


def test_a_topics_partitions_read_with_separators(owner, orders):
    org = orders.organization
    kwargs = {"org": org.public_id, "cluster_id": orders.public_id}
    viewer = session_client(add_member(org, Role.VIEWER).user)

    topic_page = viewer.get(
        reverse("clusters:topic-detail", kwargs={**kwargs, "topic_name": "orders"})
    )
    cluster_page = viewer.get(reverse("clusters:detail", kwargs=kwargs))
    editable = session_client(owner).get(reverse("clusters:detail", kwargs=kwargs)).content.decode()

    assert topic_page.status_code == cluster_page.status_code == 200
    assert "1,500" in topic_page.content.decode()
    assert "1,500" in cluster_page.content.decode()
    # In the owner's form the number is an input's value: plain digits.
    assert 'value="1500" min="1500"' in editable
