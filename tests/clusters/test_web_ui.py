"""The clusters web UI on the simulated data plane, driven as a browser would: forms posted,
pages read for what a person sees, the database checked for what happened."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from clusters import services
from clusters.models import (
    MB,
    Cell,
    Cluster,
    ClusterState,
    Credential,
    Operation,
    OrganizationQuota,
    Topic,
)
from foundation import secretbox
from tenants.audit import Actor
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_cell, make_cluster, make_org
from tests.support.clients import session_client
from tests.support.feedback import refused_page

pytestmark = pytest.mark.django_db

DAY_MS = 24 * 3_600_000


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def org(owner):
    organization = make_org(owner=owner, name="Streamers")
    make_cell()
    return organization


@pytest.fixture
def owner_client(client, owner, org):
    client.force_login(owner)
    return client


def url(name: str, organization, **kwargs) -> str:
    return reverse(f"clusters:{name}", kwargs={"org": organization.public_id, **kwargs})


def cluster_url(name: str, cluster, **kwargs) -> str:
    return url(name, cluster.organization, cluster_id=cluster.public_id, **kwargs)


def html(response) -> str:
    return response.content.decode()


def create_cluster(client, organization, **fields):
    data = {"name": "events", "type": "serverless", "region": "eu-west-1", **fields}
    return client.post(url("list", organization), data)


def live(model, organization, **filters):
    with tenant_scope(organization):
        return model.objects.filter(deleted_at__isnull=True, **filters)


@pytest.fixture
def ready_cluster(org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        cluster, _ = make_cluster(org)
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.READY
    return cluster


# The list and the create form ------------------------------------------------------------------


def test_the_clusters_tab_shows_the_catalog_with_limits_and_prices(owner_client, org):
    members_page = html(owner_client.get(reverse("tenants:members", args=[org.public_id])))
    assert url("list", org) in members_page  # the tab

    page = html(owner_client.get(url("list", org)))
    assert "No clusters yet." in page
    for tier in ("Serverless", "Standard", "Dedicated"):
        assert f'<span class="tier-name">{tier}</span>' in page
    assert "$0.08 / GB written" in page
    assert "$0.75 / cluster-hour" in page
    assert "$1.50 / capacity-unit-hour" in page
    assert "(≈ $0.10 / GB-month)" in page
    serverless_card = page[page.index('id="tier-serverless"') : page.index('id="tier-standard"')]
    assert "No hourly price" in serverless_card
    assert "100 MB/s in · 300 MB/s out" in serverless_card
    assert "2,048 partitions" in serverless_card
    assert "30 days retention" in serverless_card
    standard_card = page[page.index('id="tier-standard"') : page.index('id="tier-dedicated"')]
    assert "No hourly price" not in standard_card
    assert "per capacity unit (1\u201324 units)" in page
    assert '<option value="eu-west-1"' in page


def test_creating_a_serverless_cluster_makes_it_ready(
    owner_client, org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = create_cluster(owner_client, org, name="orders")
    cluster = live(Cluster, org).get()
    assert response.status_code == 302
    assert response["Location"] == cluster_url("detail", cluster)
    cluster.refresh_from_db()
    assert (cluster.name, cluster.tier.slug, cluster.state) == (
        "orders",
        "serverless",
        "ready",
    )

    listing = html(owner_client.get(url("list", org)))
    assert cluster_url("detail", cluster) in listing
    assert '<span class="status status-ready">Ready</span>' in listing
    assert 'hx-trigger="every 2s"' not in listing  # nothing to wait for
    assert "Cluster orders was requested." in listing

    page = owner_client.get(cluster_url("detail", cluster))
    body = html(page)
    assert cluster.bootstrap_servers in body
    assert "security.protocol=SASL_SSL" in body
    assert "sasl.mechanism=SCRAM-SHA-512" in body
    assert f"must start with <code>{cluster.public_id}.</code>" in body
    assert "1 desired · 1 observed" in body
    assert "Simulated data plane: no real Kafka runs for this cluster" in body  # conditions
    assert "<code>cluster.create</code>" in body
    assert '<span class="status status-succeeded">Succeeded</span>' in body
    assert 'hx-trigger="every 2s"' not in body


def test_a_dedicated_cluster_shows_provisioning_and_polls(
    owner_client, org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        create_cluster(owner_client, org, name="big", type="dedicated", capacity_units="2")
    cluster = live(Cluster, org).get()
    assert (cluster.state, cluster.capacity_units) == ("provisioning", 2)

    body = html(owner_client.get(cluster_url("detail", cluster)))
    assert '<span class="status status-provisioning">Provisioning</span>' in body
    assert f'hx-get="{cluster_url("detail", cluster)}" hx-trigger="every 2s"' in body
    assert "security.protocol" not in body  # no connection before it is ready
    assert "2 capacity units" in body
    assert "must start with" not in body  # a dedicated cluster's names are all its own

    fragment = owner_client.get(cluster_url("detail", cluster), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    part = html(fragment)
    assert part.startswith('<div id="cluster-status"')
    assert "Provisioning" in part
    assert 'id="cluster-activity" hx-swap-oob="true"' in part
    assert "<html" not in part
    assert "HX-Request" in fragment["Vary"]

    listing = html(owner_client.get(url("list", org)))
    assert 'hx-trigger="every 2s"' in listing
    assert "· 2 CU" in listing


def test_invalid_input_is_shown_on_the_field_and_creates_nothing(owner_client, org):
    response = create_cluster(owner_client, org, capacity_units="3")
    body = refused_page(owner_client, response, url("list", org), "create")
    units = body[body.index('for="id_capacity_units"') :]
    assert "Serverless clusters are not sized in capacity units" in units[:2000]
    assert not live(Cluster, org).exists()

    response = create_cluster(owner_client, org, name="")
    assert "This field is required." in refused_page(
        owner_client, response, url("list", org), "create"
    )
    assert not live(Cluster, org).exists()


def test_the_cluster_quota_error_shows_its_numbers(owner_client, org):
    OrganizationQuota.objects.create(organization=org, max_clusters=1)
    assert create_cluster(owner_client, org, name="first").status_code == 302
    response = create_cluster(owner_client, org, name="second")
    body = refused_page(owner_client, response, url("list", org), "create")
    assert "Quota exceeded: This would make 2 clusters, 1 over the limit of 1." in body
    assert "In use: 1 of 1 clusters; this asks for 1 more." in body
    assert list(live(Cluster, org).values_list("name", flat=True)) == ["first"]


def test_a_full_region_says_so(owner_client, org):
    Cell.objects.update(max_dedicated_units=1)
    response = create_cluster(owner_client, org, type="dedicated", capacity_units="2")
    body = refused_page(owner_client, response, url("list", org), "create")
    assert "No capacity: Every cell in eu-west-1 is full for Dedicated clusters" in body
    assert not live(Cluster, org).exists()


# The cluster page -----------------------------------------------------------------------------


def test_rename_resize_and_change_tier(owner_client, org):
    cluster, _ = make_cluster(org, tier_slug="dedicated")
    page = html(owner_client.get(cluster_url("detail", cluster)))
    # One word for it on every page: tier.
    assert "Change tier" in page
    assert not re.search(r"(?i)cluster type|change type", page)
    response = owner_client.post(cluster_url("rename", cluster), {"rename-name": "payments"})
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.name, cluster.generation) == ("payments", 1)

    # Resizing asks first, on a page of its own that shows what the new size costs.
    asked = owner_client.post(cluster_url("resize", cluster), {"resize-capacity_units": "3"})
    assert asked.status_code == 302
    assert asked["Location"] == cluster_url("resize", cluster) + "?resize-capacity_units=3"
    confirm = html(owner_client.get(asked["Location"]))
    assert "Resize payments to 3 capacity units?" in confirm
    assert "has 1 capacity unit now" in confirm
    assert 'name="resize-capacity_units" value="3"' in confirm
    assert "/billing/estimate/?type=dedicated" in confirm
    cluster.refresh_from_db()
    assert (cluster.capacity_units, cluster.generation) == (1, 1)  # asking changes nothing
    response = owner_client.post(
        asked["Location"], {"resize-capacity_units": "3", "confirmed": "1"}, follow=True
    )
    assert "changing to Dedicated, 3 capacity units" in html(response)
    cluster.refresh_from_db()
    assert (cluster.capacity_units, cluster.generation, cluster.state) == (3, 2, "updating")

    refused = owner_client.post(cluster_url("resize", cluster), {"resize-capacity_units": "99"})
    page = refused_page(owner_client, refused, cluster_url("detail", cluster), "resize")
    resize_form = page[page.index('id="resize"') :][:3000]
    assert "Dedicated clusters have 1 to 24 capacity units" in resize_form
    assert 'value="99"' in resize_form  # what was typed is kept
    assert "Dedicated clusters have 1 to 24" not in html(
        owner_client.get(cluster_url("detail", cluster))
    )  # shown once: a reload shows the page afresh

    owner_client.post(cluster_url("change-tier", cluster), {"type-type": "standard"})
    cluster.refresh_from_db()
    assert (cluster.tier.slug, cluster.capacity_units) == ("standard", 1)
    with tenant_scope(org):
        kinds = list(Operation.objects.filter(cluster=cluster).values_list("kind", flat=True))
    assert kinds.count("cluster.update") == 2


def test_a_failed_cluster_shows_why_and_retries(owner_client, org, ready_cluster):
    Cluster.unscoped_all_tenants.filter(pk=ready_cluster.pk).update(
        state=ClusterState.FAILED,
        failure_reason="KafkaError",
        failure_message="brokers could not start",
    )
    body = html(owner_client.get(cluster_url("detail", ready_cluster)))
    assert "<strong>KafkaError</strong>: brokers could not start" in body
    assert cluster_url("retry", ready_cluster) in body

    response = owner_client.post(cluster_url("retry", ready_cluster), follow=True)
    assert f"Trying {ready_cluster.name} again" in html(response)
    ready_cluster.refresh_from_db()
    assert (ready_cluster.failure_reason, ready_cluster.generation) == ("", 2)
    with tenant_scope(org):
        assert Operation.objects.filter(cluster=ready_cluster, kind="cluster.retry").exists()

    again = owner_client.post(cluster_url("retry", ready_cluster), follow=True)
    assert "Only failed clusters are retried" in html(again)


def test_deleting_needs_the_name_typed(
    owner_client, org, ready_cluster, django_capture_on_commit_callbacks
):
    response = owner_client.post(cluster_url("delete", ready_cluster), {"delete-confirm_name": "x"})
    page = refused_page(owner_client, response, cluster_url("detail", ready_cluster), "delete")
    assert "That is not the cluster&#x27;s name: type events exactly." in page
    ready_cluster.refresh_from_db()
    assert ready_cluster.delete_requested_at is None

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            cluster_url("delete", ready_cluster),
            {"delete-confirm_name": "events"},
            follow=True,
        )
    assert response.redirect_chain[-1][0] == url("list", org)
    assert "Cluster events is being deleted." in html(response)
    # The page was drawn before the transaction's reconcile ran: the cluster was deleting.
    assert '<span class="status status-deleting">Deleting</span>' in html(response)
    assert 'hx-trigger="every 2s"' in html(response)
    ready_cluster.refresh_from_db()
    assert ready_cluster.deleted_at is not None  # the simulated data plane removed it at once

    assert owner_client.get(cluster_url("detail", ready_cluster)).status_code == 404
    polled = owner_client.get(cluster_url("detail", ready_cluster), headers={"HX-Request": "true"})
    assert polled.status_code == 404
    assert polled["HX-Redirect"] == url("list", org)
    listing = html(owner_client.get(url("list", org)))
    assert "Cluster events was deleted." in listing
    assert "No clusters yet." in listing


# Topics ---------------------------------------------------------------------------------------


def test_topics_are_created_grown_and_deleted(owner_client, org, ready_cluster):
    response = owner_client.post(
        cluster_url("topic-create", ready_cluster),
        {
            "topic-name": "orders",
            "topic-partitions": "6",
            "topic-retention": "36",
            "topic-retention_unit": "hours",
            "topic-cleanup_policy": "compact",
        },
        follow=True,
    )
    body = html(response)
    assert "Topic orders was created." in body
    topic = live(Topic, org).get()
    assert (topic.partitions, topic.retention_ms, topic.cleanup_policy) == (
        6,
        36 * 3_600_000,
        "compact",
    )
    assert f"<code>{ready_cluster.public_id}.orders</code>" in body  # the Kafka name
    assert "36 hours" in body

    owner_client.post(
        cluster_url("topic-create", ready_cluster),
        {
            "topic-name": "audit",
            "topic-partitions": "1",
            "topic-retention": "3",
            "topic-retention_unit": "days",
            "topic-cleanup_policy": "delete",
        },
    )
    assert live(Topic, org).get(name="audit").retention_ms == 3 * DAY_MS

    response = owner_client.post(
        cluster_url("topic-partitions", ready_cluster, topic_name="orders"),
        {"partitions": "12"},
        follow=True,
    )
    assert "Topic orders now has 12 partitions." in html(response)
    topic.refresh_from_db()
    assert topic.partitions == 12

    shrink = owner_client.post(
        cluster_url("topic-partitions", ready_cluster, topic_name="orders"), {"partitions": "2"}
    )
    page = refused_page(owner_client, shrink, cluster_url("detail", ready_cluster), "topic-orders")
    row = page[page.index('<tr id="topic-orders">') :]
    assert "Kafka cannot take partitions away from a topic" in row[: row.index("</tr>")]
    topic.refresh_from_db()
    assert topic.partitions == 12

    confirm = owner_client.get(cluster_url("topic-delete", ready_cluster, topic_name="orders"))
    assert "Delete topic orders?" in html(confirm)
    assert live(Topic, org).filter(name="orders").exists()  # a GET only asks
    response = owner_client.post(
        cluster_url("topic-delete", ready_cluster, topic_name="orders"), follow=True
    )
    assert "Topic orders was deleted." in html(response)
    assert list(live(Topic, org).values_list("name", flat=True)) == ["audit"]


def test_topic_errors_are_shown_with_their_numbers(owner_client, org, ready_cluster):
    OrganizationQuota.objects.update_or_create(organization=org, defaults={"max_partitions": 4})
    response = owner_client.post(
        cluster_url("topic-create", ready_cluster),
        {
            "topic-name": "wide",
            "topic-partitions": "5",
            "topic-retention_unit": "days",
            "topic-cleanup_policy": "delete",
        },
    )
    page = refused_page(owner_client, response, cluster_url("detail", ready_cluster), "topic")
    assert "Quota exceeded: This would make 5 partitions, 1 over the limit of 4." in page

    response = owner_client.post(
        cluster_url("topic-create", ready_cluster),
        {
            "topic-name": "long",
            "topic-partitions": "1",
            "topic-retention": "90",
            "topic-retention_unit": "days",
            "topic-cleanup_policy": "delete",
        },
    )
    body = refused_page(owner_client, response, cluster_url("detail", ready_cluster), "topic")
    retention_field = body[body.index('for="id_topic-retention"') :][:1500]
    assert "retention_ms is 60000 to 2592000000 on Serverless clusters" in retention_field
    assert not live(Topic, org).exists()


# Credentials ----------------------------------------------------------------------------------


def test_a_credential_password_is_shown_once(owner_client, org, ready_cluster):
    response = owner_client.post(
        cluster_url("credential-create", ready_cluster),
        {
            "credential-name": "orders service",
            "credential-producer_mbps": "2.5",
            "credential-consumer_mbps": "",
            "credential-request_percentage": "20",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    credential = live(Credential, org).get()
    assert (credential.producer_byte_rate, credential.consumer_byte_rate) == (
        int(2.5 * MB),
        None,
    )
    assert credential.request_percentage == 20
    password = secretbox.unseal(credential.password_encrypted)
    body = html(response)
    assert "Copy the password now: it will not be shown again." in body
    assert password in body
    assert escape(f'username="{credential.username}" password="{password}";') in body
    assert f"bootstrap.servers={ready_cluster.bootstrap_servers}" in body

    page = html(owner_client.get(cluster_url("detail", ready_cluster)))
    assert credential.username in page
    assert "produce ≤ 2.5 MB/s" in page
    assert "requests ≤ 20%" in page
    assert password not in page


def test_a_listener_without_tls_is_shown_as_such(owner_client, org, ready_cluster):
    Cluster.unscoped_all_tenants.filter(pk=ready_cluster.pk).update(bootstrap_tls=False)
    page = html(owner_client.get(cluster_url("detail", ready_cluster)))
    assert "security.protocol=SASL_PLAINTEXT" in page
    assert "SASL_SSL" not in page
    shown = html(
        owner_client.post(
            cluster_url("credential-create", ready_cluster), {"credential-name": "plain"}
        )
    )
    assert "SASL_PLAINTEXT, SCRAM-SHA-512" in shown
    assert "security.protocol=SASL_PLAINTEXT" in shown


def test_credential_rates_out_of_range_are_refused_on_the_field(owner_client, org, ready_cluster):
    response = owner_client.post(
        cluster_url("credential-create", ready_cluster),
        {"credential-name": "greedy", "credential-producer_mbps": "5000"},
    )
    body = refused_page(owner_client, response, cluster_url("detail", ready_cluster), "credential")
    field = body[body.index('for="id_credential-producer_mbps"') :][:1500]
    assert "producer_byte_rate is 1 to 100000000 on this cluster" in field
    assert not live(Credential, org).exists()


def test_rotating_shows_the_new_password_once_and_delete_removes(owner_client, org, ready_cluster):
    with tenant_scope(org):
        credential, first_password, _ = services.credential_create(
            cluster=ready_cluster, actor=Actor(system="tests"), name="batch"
        )
    rotate_url = cluster_url("credential-rotate", ready_cluster, credential_id=credential.public_id)
    assert "Rotate the password of batch?" in html(owner_client.get(rotate_url))
    credential.refresh_from_db()
    assert credential.rotated_at is None

    response = owner_client.post(rotate_url)
    assert "no-store" in response["Cache-Control"]
    credential.refresh_from_db()
    new_password = secretbox.unseal(credential.password_encrypted)
    assert new_password != first_password
    assert credential.rotated_at is not None
    body = html(response)
    assert "New password for “batch”" in body
    assert new_password in body
    assert new_password not in html(owner_client.get(cluster_url("detail", ready_cluster)))

    delete_url = cluster_url("credential-delete", ready_cluster, credential_id=credential.public_id)
    assert "Delete the credential batch?" in html(owner_client.get(delete_url))
    response = owner_client.post(delete_url, follow=True)
    assert "The credential batch was deleted." in html(response)
    assert not live(Credential, org).exists()
    assert owner_client.post(rotate_url).status_code == 404


# Roles and isolation --------------------------------------------------------------------------


def test_a_viewer_reads_but_sees_no_forms_and_is_refused(org, ready_cluster):
    with tenant_scope(org):
        credential, _, _ = services.credential_create(
            cluster=ready_cluster, actor=Actor(system="tests"), name="reader"
        )
        services.topic_create(
            cluster=ready_cluster, actor=Actor(system="tests"), name="orders", partitions=1
        )
    viewer = session_client(add_member(org, Role.VIEWER).user)

    listing = html(viewer.get(url("list", org)))
    assert ready_cluster.name in listing
    assert "Create a cluster" not in listing
    page = html(viewer.get(cluster_url("detail", ready_cluster)))
    assert "security.protocol=SASL_SSL" in page
    assert "orders" in page
    assert "reader" in page
    assert "<form" not in page.split("<main>")[1]  # the header's log-out form is before it
    for name in ("topic-create", "credential-create", "delete", "rename", "retry"):
        # As a whole attribute value: the topic's own page (…/topics/orders/) is linked.
        assert f'"{cluster_url(name, ready_cluster)}"' not in page

    posts = {
        url("list", org): {"name": "x", "type": "serverless", "region": "eu-west-1"},
        cluster_url("rename", ready_cluster): {"rename-name": "renamed"},
        cluster_url("resize", ready_cluster): {"resize-capacity_units": "2"},
        cluster_url("change-tier", ready_cluster): {"type-type": "standard"},
        cluster_url("retry", ready_cluster): {},
        cluster_url("delete", ready_cluster): {"delete-confirm_name": ready_cluster.name},
        cluster_url("topic-create", ready_cluster): {"topic-name": "t", "topic-partitions": "1"},
        cluster_url("topic-partitions", ready_cluster, topic_name="orders"): {"partitions": "5"},
        cluster_url("topic-delete", ready_cluster, topic_name="orders"): {},
        cluster_url("credential-create", ready_cluster): {"credential-name": "c"},
        cluster_url("credential-rotate", ready_cluster, credential_id=credential.public_id): {},
        cluster_url("credential-delete", ready_cluster, credential_id=credential.public_id): {},
    }
    for target, data in posts.items():
        response = viewer.post(target, data)
        assert response.status_code == 403, target
        assert "clusters:write" in html(response)
    confirm = viewer.get(cluster_url("topic-delete", ready_cluster, topic_name="orders"))
    assert confirm.status_code == 403

    ready_cluster.refresh_from_db()
    assert (ready_cluster.name, ready_cluster.generation, ready_cluster.delete_requested_at) == (
        "events",
        3,  # the topic and the credential made above
        None,
    )
    assert live(Cluster, org).count() == 1
    assert live(Topic, org).get().partitions == 1
    credential.refresh_from_db()
    assert (credential.rotated_at, credential.deleted_at) == (None, None)


def test_the_billing_role_has_no_clusters_tab(org, ready_cluster):
    billing = session_client(add_member(org, Role.BILLING).user)
    members_page = html(billing.get(reverse("tenants:members", args=[org.public_id])))
    assert url("list", org) not in members_page
    assert billing.get(url("list", org)).status_code == 403
    assert billing.get(cluster_url("detail", ready_cluster)).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client, org):
    response = client.get(url("list", org))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/orgs/")


def test_no_page_loads_anything_from_elsewhere(owner_client, org, ready_cluster):
    htmx = "/static/vendor/htmx/htmx.min.js"
    charts = ["/static/vendor/chartjs/chart.umd.min.js", "/static/sluice/live-metrics.js"]
    copy = "/static/sluice/copy.js"  # the snippets' copy buttons
    for target, scripts in (
        (url("list", org), [htmx]),
        (cluster_url("detail", ready_cluster), [htmx, copy, *charts]),
    ):
        body = html(owner_client.get(target))
        assert re.findall(r'<script src="([^"]+)"', body) == scripts


def test_a_refused_form_comes_back_on_its_own_cluster_only(owner_client, org):
    first, _ = make_cluster(org, name="first")
    second, _ = make_cluster(org, name="second")
    refused = owner_client.post(cluster_url("rename", first), {"rename-name": ""})
    assert refused["Location"] == cluster_url("detail", first) + "#rename"
    assert "This field is required." not in html(owner_client.get(cluster_url("detail", second)))
    assert "This field is required." in html(owner_client.get(cluster_url("detail", first)))
