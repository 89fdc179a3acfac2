"""The spend-caps page under the Billing tab (/orgs/{org}/billing/caps/), the throttled banner
on a cluster's page, and the ``spend_cap_reached`` refusal on the cluster forms. The caps are
reached as in test_spend_caps.py: bytes written this hour, then the spend check. Serverless
ingress is $0.08 per GB, so 12.5 GB is $1.00 exactly."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from billing.models import SpendCap
from billing.services import HourSnapshot, record_hours
from billing.spend_watch import spend_check
from clusters import reconciler
from clusters.models import ClusterSize, ClusterState, Dimension
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_cluster, make_org
from tests.support.browser import RECORD_VIOLATIONS
from tests.support.clients import session_client
from tests.support.feedback import refused_page

GB = 10**9


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Capped")


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def serverless(org, name="events"):
    cluster, _ = make_cluster(org, name=name)
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(
        since=datetime.now(UTC) - timedelta(days=40)
    )
    assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
    return cluster


def written(cluster, quantity: int) -> None:
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, this_hour(), quantity, False)])


def member(org, role):
    return session_client(add_member(org, role).user)


def caps_url(org) -> str:
    return f"/orgs/{org.public_id}/billing/caps/"


def text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def card(page: str, section_id: str) -> str:
    start = page.index(f'id="{section_id}"')
    return text(page[start : page.index("</section>", start)])


def caps_in(org) -> list[tuple[str | None, int]]:
    with tenant_scope(org):
        return [
            (cap.cluster.name if cap.cluster else None, cap.monthly_micros)
            for cap in SpendCap.objects.select_related("cluster").order_by("pk")
        ]


def reach(org, cluster, cap_usd: str, written_bytes: int, *, scope: str = "") -> None:
    """Set a cap through the page and write enough into ``cluster`` to reach it."""
    client = member(org, Role.OWNER)
    client.post(caps_url(org), {"action": "set", "cluster": scope, "monthly_cap": cap_usd})
    written(cluster, written_bytes)
    assert spend_check().holds_changed == 1


# Who sees what ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.OWNER, Role.BILLING])
def test_owners_and_billing_members_change_caps(org, role):
    serverless(org)
    page = member(org, role).get(caps_url(org))
    assert page.status_code == 200
    body = page.content.decode()
    assert "No cap is set. This month so far: $0.00." in text(body)
    assert "Set the cap" in body
    assert "Add the cap" in body  # a cluster without a cap may get one
    tab = member(org, role).get(f"/orgs/{org.public_id}/billing/").content.decode()
    assert "No organization cap; no cluster has a cap of its own." in card(tab, "spend-caps")
    assert f'href="{caps_url(org)}"' in tab


@pytest.mark.django_db
def test_admins_read_the_caps_without_forms(org):
    cluster = serverless(org)
    owner = member(org, Role.OWNER)
    owner.post(caps_url(org), {"action": "set", "cluster": "", "monthly_cap": "250"})
    owner.post(
        caps_url(org), {"action": "set", "cluster": cluster.public_id, "monthly_cap": "40.5"}
    )
    admin = member(org, Role.ADMIN)
    page = admin.get(caps_url(org)).content.decode()
    assert "Cap $250.00 a month This month so far $0.00 (0% of the cap)" in card(
        page, "organization-caps"
    )
    assert "events Serverless $40.50 $0.00 (0%)" in card(page, "clusters-caps")
    assert "Your role can read the spend caps" in page
    assert "<form" not in page[page.index('id="organization-caps"') :]
    refused = admin.post(caps_url(org), {"action": "set", "cluster": "", "monthly_cap": "1"})
    assert refused.status_code == 403
    assert caps_in(org) == [(None, 250_000_000), ("events", 40_500_000)]


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.DEVELOPER, Role.VIEWER])
def test_developers_and_viewers_do_not_see_the_caps(org, role):
    assert member(org, role).get(caps_url(org)).status_code == 403
    nav = member(org, role).get(f"/orgs/{org.public_id}/clusters/").content.decode()
    assert caps_url(org) not in nav


# Setting, changing, removing ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_organization_cap_is_set_changed_and_removed(org):
    owner = member(org, Role.OWNER)
    response = owner.post(caps_url(org), {"action": "set", "cluster": "", "monthly_cap": "250"})
    assert (response.status_code, response["Location"]) == (
        302,
        f"{caps_url(org)}#organization-caps",
    )
    page = owner.get(response["Location"]).content.decode()
    assert "The organization's cap is now $250.00 a month." in card(page, "organization-caps")
    assert 'value="250.00"' in page
    # Reloading the result shows the page again, without the note.
    again = owner.get(response["Location"])
    assert again.status_code == 200
    assert "is now" not in again.content.decode()

    owner.post(caps_url(org), {"action": "set", "cluster": "", "monthly_cap": "1234567.8"})
    page = owner.get(caps_url(org)).content.decode()
    assert "Cap $1,234,567.80 a month" in card(page, "organization-caps")
    assert caps_in(org) == [(None, 1_234_567_800_000)]

    # The API's rules: up to six decimals, and 0 (which stops all growth).
    owner.post(caps_url(org), {"action": "set", "cluster": "", "monthly_cap": "0.125"})
    page = owner.get(caps_url(org)).content.decode()
    assert "Cap $0.125 a month" in card(page, "organization-caps")
    assert 'value="0.125"' in page
    owner.post(caps_url(org), {"action": "set", "cluster": "", "monthly_cap": "0"})
    assert caps_in(org) == [(None, 0)]

    response = owner.post(caps_url(org), {"action": "remove", "cluster": ""})
    assert response.status_code == 302
    page = owner.get(response["Location"]).content.decode()
    assert "The organization's cap is removed." in card(page, "organization-caps")
    assert caps_in(org) == []
    with tenant_scope(org):
        actions = AuditEvent.objects.filter(action__startswith="spend_cap").order_by("pk")
        assert list(actions.values_list("action", flat=True)) == [
            "spend_cap.set",
            "spend_cap.set",
            "spend_cap.set",
            "spend_cap.set",
            "spend_cap.reached",  # at $0, at once
            "spend_cap.removed",
        ]


@pytest.mark.django_db
def test_a_cluster_cap_is_added_changed_and_removed(org):
    serverless(org, "alpha")
    beta = serverless(org, "beta")
    owner = member(org, Role.BILLING)
    response = owner.post(
        caps_url(org), {"action": "set", "cluster": beta.public_id, "monthly_cap": "75"}
    )
    assert response["Location"] == f"{caps_url(org)}#clusters-caps"
    page = owner.get(response["Location"]).content.decode()
    clusters = card(page, "clusters-caps")
    assert "The cap of beta is now $75.00 a month." in clusters
    assert "beta Serverless $75.00 $0.00 (0%)" in clusters
    # Only alpha is left to add a cap to.
    offered = page[page.index("Add a cluster") :]
    assert "alpha</option>" in offered
    assert "beta</option>" not in offered

    owner.post(caps_url(org), {"action": "set", "cluster": beta.public_id, "monthly_cap": "5000"})
    assert caps_in(org) == [("beta", 5_000_000_000)]
    assert "$5,000.00" in card(owner.get(caps_url(org)).content.decode(), "clusters-caps")

    response = owner.post(caps_url(org), {"action": "remove", "cluster": beta.public_id})
    assert response.status_code == 302
    page = owner.get(response["Location"]).content.decode()
    assert "The cap of beta is removed." in card(page, "clusters-caps")
    assert "No cluster has a cap of its own." in card(page, "clusters-caps")
    assert caps_in(org) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("-1", "The amount cannot be negative"),
        ("1.2345678", "At most six decimal places (a micro-dollar)"),
        ("\u0661\u0660\u0660", 'Not a decimal amount of US dollars, e.g. "250.00"'),
        ("1e3", 'Not a decimal amount of US dollars, e.g. "250.00"'),
        (" 100", 'Not a decimal amount of US dollars, e.g. "250.00"'),
        ("", "Write the monthly cap in US dollars, e.g. 250"),
        ("10000000.01", "At most 10000000 dollars"),
    ],
)
def test_a_bad_amount_is_a_form_error_and_saves_nothing(org, typed, error):
    cluster = serverless(org)
    owner = member(org, Role.OWNER)
    organization = owner.post(caps_url(org), {"action": "set", "cluster": "", "monthly_cap": typed})
    page = refused_page(owner, organization, caps_url(org), "organization-caps")
    assert error in card(page, "organization-caps")
    added = owner.post(
        caps_url(org), {"action": "set", "cluster": cluster.public_id, "monthly_cap": typed}
    )
    page = refused_page(owner, added, caps_url(org), "new-cap")
    assert error in text(page[page.index("Add a cluster") :])
    assert caps_in(org) == []


@pytest.mark.django_db
def test_a_refused_change_shows_in_its_row(org):
    cluster = serverless(org)
    owner = member(org, Role.OWNER)
    owner.post(caps_url(org), {"action": "set", "cluster": cluster.public_id, "monthly_cap": "9"})
    refused = owner.post(
        caps_url(org), {"action": "set", "cluster": cluster.public_id, "monthly_cap": "9,5"}
    )
    page = refused_page(owner, refused, caps_url(org), f"cap-{cluster.public_id}")
    row = page[
        page.index(f'id="cap-{cluster.public_id}"') : page.index(
            "</tr>", page.index(f'id="cap-{cluster.public_id}"')
        )
    ]
    assert 'Not a decimal amount of US dollars, e.g. "250.00"' in text(row)
    assert 'value="9,5"' in row
    assert caps_in(org) == [("events", 9_000_000)]


# Reached -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reached_cap_says_what_it_does_and_how_it_lifts(org):
    shared = serverless(org, "events")
    make_cluster(org, name="ledger", tier_slug="dedicated", capacity_units=1)
    reach(org, shared, "1", 12 * GB + 500_000_000)
    page = member(org, Role.ADMIN).get(caps_url(org)).content.decode()
    notice = card(page, "organization-caps")
    assert "The cap is reached (on " in notice
    assert (
        "Each credential of events may produce 1 KiB/s and consume 64 KiB/s (the throttle "
        "floors): clients keep working, slowly." in notice
    )
    assert "ledger (Dedicated) is not slowed" in notice
    assert "Creating clusters, topics, partitions and credentials" in notice
    assert (
        "Storage, partition-hours and cluster-hours still accrue, so the month can end above "
        "the cap:" in notice
    )
    assert "It lifts when the cap is raised above the month so far" in notice
    tab = member(org, Role.OWNER).get(f"/orgs/{org.public_id}/billing/").content.decode()
    assert "The spend cap of the organization ($1.00) is reached." in card(tab, "spend-caps")


@pytest.mark.django_db
def test_the_throttled_cluster_page_says_why_and_where_to_change_it(org):
    cluster = serverless(org)
    reach(org, cluster, "1", 12 * GB + 500_000_000, scope=cluster.public_id)
    assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
    cluster.refresh_from_db()
    assert cluster.state == ClusterState.THROTTLED
    detail = f"/orgs/{org.public_id}/clusters/{cluster.public_id}/"

    page = member(org, Role.OWNER).get(detail)
    body = page.content.decode()
    opened = body.index('<div class="alert alert-warning throttled"')
    banner = text(body[opened : body.index("</div>", opened)])
    assert banner.startswith("Throttled since ")
    assert cluster.throttle_reason in banner
    assert "Reached this cluster's spend cap of $1.00 a month" in banner
    assert f'<a href="{caps_url(org)}">Change the spend caps</a>' in body
    assert '<span class="status status-throttled">Throttled</span>' in body

    body = member(org, Role.DEVELOPER).get(detail).content.decode()
    assert cluster.throttle_reason in text(body)
    assert "Owners and billing members can change the spend caps." in body
    assert f'href="{caps_url(org)}"' not in body
    listing = member(org, Role.VIEWER).get(f"/orgs/{org.public_id}/clusters/").content.decode()
    assert '<span class="status status-throttled">Throttled</span>' in listing


@pytest.mark.django_db
def new_topic(client, cluster, name):
    return client.post(
        f"/orgs/{cluster.organization.public_id}/clusters/{cluster.public_id}/topics/",
        {
            "topic-name": name,
            "topic-partitions": "1",
            "topic-retention_unit": "days",
            "topic-cleanup_policy": "delete",
        },
    )


@pytest.mark.django_db
def test_growth_refused_by_a_cap_is_a_form_error(org):
    cluster = serverless(org)
    developer = member(org, Role.DEVELOPER)
    assert new_topic(developer, cluster, "orders").status_code == 302
    reach(org, cluster, "1", 12 * GB + 500_000_000)
    base = f"/orgs/{org.public_id}/clusters/"
    refusals = [
        lambda: new_topic(developer, cluster, "more"),
        lambda: developer.post(
            f"{base}{cluster.public_id}/topics/orders/partitions/", {"partitions": "2"}
        ),
        lambda: developer.post(f"{base}{cluster.public_id}/credentials/", {"credential-name": "a"}),
        lambda: developer.post(
            base, {"name": "second", "type": "serverless", "region": "eu-west-1"}
        ),
    ]
    for refuse in refusals:
        response = refuse()
        # Back to the form, by redirect (post/redirect/get), where the refusal is shown.
        assert response.status_code == 302
        assert (
            "This month&#x27;s spending reached the organization&#x27;s spend cap of $1.00: "
            "nothing new can be created until the cap is raised (Billing tab) or the month "
            "ends. What exists keeps running"
        ) in developer.get(response["Location"]).content.decode()


# Tenant isolation --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_organizations_member_cannot_see_or_set_these_caps(org):
    cluster = serverless(org)
    other = make_org(owner=UserFactory(), name="Other")
    stranger = member(other, Role.OWNER)
    assert stranger.get(caps_url(org)).status_code == 404
    posted = {"action": "set", "cluster": cluster.public_id, "monthly_cap": "1"}
    assert stranger.post(caps_url(org), posted).status_code == 404
    # Through their own organization's page, the cluster is not one they may choose.
    refused = stranger.post(caps_url(other), posted)
    assert "Select a valid choice." in refused_page(stranger, refused, caps_url(other), "new-cap")
    assert caps_in(org) == []
    assert caps_in(other) == []


# In a browser ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_in_a_real_browser_a_cap_is_set_reached_and_shown(watched_page, org, live_server, tmp_path):
    page = watched_page  # fails the test on any console error or CSP violation
    cluster = serverless(org)
    login = Client()
    login.force_login(add_member(org, Role.OWNER).user)
    session = login.cookies[settings.SESSION_COOKIE_NAME].value

    page.set_viewport_size({"width": 1100, "height": 900})
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on("console", lambda message: console.append(message.text))

    assert page.goto(f"{live_server.url}/orgs/{org.public_id}/billing/").ok
    page.click("#spend-caps a")
    page.fill("#id_organization_monthly_cap", "1250")
    page.click("#organization-caps button[type=submit]")
    organization_card = page.locator("#organization-caps")
    organization_card.get_by_text("The organization's cap is now $1,250.00 a month.").wait_for()
    organization_card.get_by_text("$1,250.00 a month", exact=True).wait_for()

    page.fill("#id_organization_monthly_cap", "1")
    page.click("#organization-caps button[type=submit]")
    organization_card.get_by_text("The organization's cap is now $1.00 a month.").wait_for()
    written(cluster, 12 * GB + 500_000_000)
    assert spend_check().holds_changed == 1
    page.reload()
    organization_card.get_by_text("The cap is reached").wait_for()
    page.screenshot(path=tmp_path / "spend-caps.png", full_page=True)

    assert reconciler.reconcile(cluster.pk) == reconciler.Outcome.CONVERGED
    assert page.goto(f"{live_server.url}/orgs/{org.public_id}/clusters/{cluster.public_id}/").ok
    page.locator(".throttled").get_by_text(
        "Reached the organization's spend cap of $1.00"
    ).wait_for()
    page.locator(".status-throttled").get_by_text("Throttled").wait_for()
    page.click(".throttled a")
    page.locator("#organization-caps").wait_for()
    page.go_back()
    page.screenshot(path=tmp_path / "throttled-cluster.png", full_page=True)
    reported = page.evaluate("window.__violations")
    refused = [line for line in console if "Content Security Policy" in line]
    assert (reported, refused) == ([], [])
    # The ORM calls above ran inside Playwright's event loop, on a connection of that
    # context's own: closed here, or it outlives the test database.
    connections.close_all()
    print(f"screenshots in {tmp_path}")
