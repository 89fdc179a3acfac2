"""Feedback where the eye is, in a real browser: a refused form is shown again with its errors
inside the viewport (the page is scrolled to it), a success message is in the card of the form
that made it, and reloading the page a submission ended on is a 200, never a 405 nor a second
submission."""

import pytest

from clusters.models import ClusterState
from tenants.roles import Role
from tests.factories import UserFactory, add_member, make_cluster, make_org
from tests.support.browser import in_viewport, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def owner():
    return UserFactory(email="owner@feedback.example")


@pytest.fixture
def cluster(owner):
    organization = make_org(owner=owner, name="Feedback")
    cluster, _ = make_cluster(organization, name="events")
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.READY  # the simulated data plane, run eagerly
    return cluster


def cluster_path(cluster) -> str:
    return f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/"


def test_a_refused_form_is_shown_in_the_viewport_and_a_reload_shows_the_page(
    watched_page, base_url, owner, cluster
):
    page = watched_page
    sign_in(page, owner, base_url)
    page.goto(cluster_path(cluster))
    # The rename form is far below the fold, after topics, credentials and the activity.
    assert not in_viewport(page, "#rename")

    page.fill("#id_rename-name", "")
    with page.expect_navigation():
        page.click("#rename button[type=submit]")

    assert page.url.endswith(f"{cluster_path(cluster)}#rename")
    error = "#rename .field.has-error .errorlist"
    assert page.locator(error).inner_text() == "This field is required."
    assert in_viewport(page, error)

    reloaded = page.reload()
    assert reloaded.status == 200
    assert page.locator(error).count() == 0  # shown once: the reload is the page afresh


def test_a_refusal_by_the_service_and_a_success_are_shown_by_their_form(
    watched_page, base_url, owner, cluster
):
    page = watched_page
    sign_in(page, owner, base_url)
    page.goto(cluster_path(cluster))

    # Kafka cannot take partitions away: the row of the topic says so.
    page.fill("#id_topic-name", "orders")
    page.fill("#id_topic-partitions", "3")
    with page.expect_navigation():
        page.click("#topic button[type=submit]")
    created = "#topics .alert-success"
    assert page.locator(created).inner_text() == "Topic orders was created."
    assert in_viewport(page, created)

    page.fill("input[aria-label='Partitions of orders']", "1")
    with page.expect_navigation():
        page.click("#topic-orders button[type=submit]")
    refusal = "#topic-orders .alert-error"
    assert "cannot take partitions away" in page.locator(refusal).inner_text()
    assert in_viewport(page, refusal)
    assert page.reload().status == 200


def test_reloading_where_each_submission_ended_is_never_a_405(
    watched_page, base_url, owner, cluster
):
    page = watched_page
    organization = cluster.organization
    add_member(organization, Role.DEVELOPER, user=UserFactory(email="dev@feedback.example"))
    sign_in(page, owner, base_url)
    org_path = f"/orgs/{organization.public_id}"

    def submit(path: str, form: str, fill: dict[str, str] | None = None) -> None:
        page.goto(path)
        for selector, value in (fill or {}).items():
            page.fill(selector, value)
        with page.expect_navigation():
            page.click(f"{form} button[type=submit]")
        assert page.reload().status == 200, page.url

    submit(f"{org_path}/clusters/", "#create", {"#id_name": ""})
    submit(cluster_path(cluster), "#credential", {"#id_credential-name": ""})
    submit(cluster_path(cluster), "#delete", {"#id_delete-confirm_name": "not it"})
    submit(cluster_path(cluster), "#rename", {"#id_rename-name": "events-2"})
    submit(f"{org_path}/", "#leave")  # the last owner may not leave
    submit(f"{org_path}/invitations/", "#invite", {"#id_email": "not an address"})
    submit(f"{org_path}/api-keys/", "#create", {"#id_name": ""})
    submit(f"{org_path}/billing/", "#account", {"#id_email": "nope"})
    # A submit-only address typed in or left in the address bar lands on its page.
    answer = page.goto(f"{cluster_path(cluster)}resize/")
    assert answer.status == 200
    assert page.url.endswith(f"{cluster_path(cluster)}#resize")
