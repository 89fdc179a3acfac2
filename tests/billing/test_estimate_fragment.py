"""The cost estimate on the cluster forms: the fragment ``/orgs/{org}/billing/estimate/`` that
the create and resize forms fetch with htmx as they change. Its amounts are worked out by hand
from the catalog's prices (as in test_estimates.py); bad input is a form error in a 200, never
a 500; only the organization's members may fetch it; and, in a real browser, choosing a tier
updates the figure under the Content-Security-Policy."""

import html
import re

import pytest
from django.conf import settings
from django.test import Client

from clusters.catalog import seed_catalog
from clusters.models import Tier, TierPrice
from tenants.roles import Role
from tests.factories import UserFactory, add_member, make_cell, make_cluster, make_org
from tests.support.browser import RECORD_VIOLATIONS
from tests.support.clients import session_client


@pytest.fixture
def org():
    seed_catalog(Tier, TierPrice)  # a transactional test before this one may have emptied it
    return make_org(owner=UserFactory(), name="Acme")


def fragment(org, role=Role.VIEWER, **query) -> str:
    client = session_client(add_member(org, role).user)
    response = client.get(f"/orgs/{org.public_id}/billing/estimate/", query)
    assert response.status_code == 200, response.content
    return response.content.decode()


def text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def table_rows(page: str) -> list[list[str]]:
    table = page[page.index('<table class="estimate-table">') : page.index("</table>")]
    return [
        [text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]


@pytest.mark.django_db
def test_serverless_by_dimension_written_out(org):
    page = fragment(
        org, type="serverless", ingress_mbps="1", egress_mbps="3", retention_hours="24",
        partitions="6", capacity_units="",
    )  # fmt: skip
    # ingress: 1 MB/s * 3,600 s * 730 h = 2,628 GB at $0.08     = $210.24
    # egress:  3 MB/s * 3,600 s * 730 h = 7,884 GB at $0.05     = $394.20
    # storage: 86.4 GB held 730 h = 63,072 GB-hours at $0.000137 = $8.640864 -> $8.64
    # partitions: 6 * 730 = 4,380 partition-hours at $0.0015   = $6.57
    assert table_rows(page) == [
        ["Dimension", "Quantity", "Cost"],
        ["Ingress (written)", "2,628 GB", "$210.24"],
        ["Egress (read)", "7,884 GB", "$394.20"],
        ["Storage", "63,072 GB-hours", "$8.64"],
        ["Partition hours", "4,380 partition-hours", "$6.57"],
        ["Total", "$619.65"],
    ]
    assert "≈ $619.65 a month at the throughput you enter, on Serverless." in text(page)
    assert "730 hours of steady use" in page


@pytest.mark.django_db
def test_dedicated_two_units_from_the_resize_form(org):
    # The resize form prefixes its field: resize-capacity_units.
    page = fragment(
        org, type="dedicated", **{"resize-capacity_units": "2"}, ingress_mbps="50",
        egress_mbps="150", retention_hours="24", partitions="100",
    )  # fmt: skip
    # egress: 150 MB/s * 3,600 s * 730 h = 394,200 GB at $0.02       = $7,884.00
    # storage: 4,320 GB held 730 h = 3,153,600 GB-hours at $0.000137 = $432.0432 -> $432.04
    # capacity-unit-hours: 2 * 730 = 1,460 at $1.50                  = $2,190.00
    # Ingress and partitions are included in Dedicated: no line.
    assert table_rows(page) == [
        ["Dimension", "Quantity", "Cost"],
        ["Egress (read)", "394,200 GB", "$7,884.00"],
        ["Storage", "3,153,600 GB-hours", "$432.04"],
        ["Capacity-unit hours", "1,460 capacity-unit-hours", "$2,190.00"],
        ["Total", "$10,506.04"],
    ]
    assert "≈ $10,506.04 a month" in text(page)
    assert "with 2 capacity units" in text(page)


@pytest.mark.django_db
def test_the_workload_defaults_to_one_mb_in_and_out_a_day_kept_six_partitions(org):
    page = fragment(org, type="serverless")
    # As above, but 1 MB/s read: 2,628 GB at $0.05 = $131.40.
    # 210.24 + 131.40 + 8.64 + 6.57 = $356.85.
    assert "≈ $356.85 a month" in text(page)
    for name, value in (("ingress_mbps", "1"), ("egress_mbps", "1"), ("retention_hours", "24")):
        assert f'name="{name}" value="{value}"' in page


@pytest.mark.django_db
def test_without_a_tier_the_fragment_asks_for_one(org):
    page = fragment(org, type="")
    assert "Choose a tier to see what it would cost." in page
    assert "estimate-table" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"ingress_mbps": "lots"}, "Enter a number."),
        ({"egress_mbps": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"retention_hours": "1e9"}, "Enter a whole number."),
        ({"partitions": ""}, "This field is required."),
        ({"type": "gold"}, "Tier: Select a valid choice. gold is not one of the available"),
        (
            {"ingress_mbps": "101"},
            "The ingress asked for (101 MB/s) is over the tier&#x27;s limit at this size "
            "(100 MB/s)",
        ),
        ({"type": "dedicated", "capacity_units": "99"}, "Capacity units: Ensure this value"),
        ({"type": "dedicated", "capacity_units": "0"}, "Capacity units: Ensure this value"),
    ],
)
def test_bad_input_is_a_form_error_not_a_failure(org, query, error):
    page = fragment(org, **{"type": "serverless", **query})
    assert error in page
    assert "estimate-table" not in page


@pytest.mark.django_db
def test_the_create_and_resize_forms_fetch_the_fragment(org):
    make_cell()
    cluster, _ = make_cluster(org, tier_slug="dedicated", capacity_units=1, name="orders")
    client = session_client(add_member(org, Role.ADMIN).user)
    estimate_url = f"/orgs/{org.public_id}/billing/estimate/"

    create = client.get(f"/orgs/{org.public_id}/clusters/").content.decode()
    assert f'hx-get="{estimate_url}"' in create
    assert 'hx-trigger="load, change from:closest form"' in create
    detail = client.get(f"/orgs/{org.public_id}/clusters/{cluster.public_id}/").content.decode()
    assert f'hx-get="{estimate_url}?type=dedicated"' in detail


@pytest.mark.django_db
def test_another_organizations_member_gets_not_found(org):
    other = make_org(owner=UserFactory(), name="Other")
    stranger = session_client(add_member(other, Role.OWNER).user)
    response = stranger.get(f"/orgs/{org.public_id}/billing/estimate/", {"type": "serverless"})
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_in_a_real_browser_choosing_a_tier_updates_the_figure(
    watched_page, org, live_server, tmp_path
):
    page = watched_page  # fails the test on any console error or CSP violation
    make_cell()
    cluster, _ = make_cluster(org, tier_slug="dedicated", capacity_units=1, name="orders")
    login = Client()
    login.force_login(add_member(org, Role.ADMIN).user)
    session = login.cookies[settings.SESSION_COOKIE_NAME].value
    url = f"{live_server.url}/orgs/{org.public_id}/clusters/"

    page.set_viewport_size({"width": 1100, "height": 900})
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on("console", lambda message: console.append(message.text))

    assert page.goto(url).ok
    total = page.locator("#cost-estimate")
    # The form starts on Serverless.
    total.get_by_text("≈ $356.85 a month").wait_for()
    page.click("label[for=tier-dedicated]")
    # 730 capacity-unit-hours at $1.50 + 2,628 GB read at $0.02 + $8.64 of storage.
    total.get_by_text("≈ $1,156.20 a month").wait_for()
    page.fill("#estimate-egress_mbps", "2")
    page.press("#estimate-egress_mbps", "Tab")
    # 5,256 GB read at $0.02 = $105.12.
    total.get_by_text("≈ $1,208.76 a month").wait_for()
    page.screenshot(path=tmp_path / "estimate-create.png", full_page=True)

    # Resizing the Dedicated cluster from 1 unit to 2: 1,460 capacity-unit-hours at $1.50
    # = $2,190.00, + $52.56 read + $8.64 stored = $2,251.20.
    assert page.goto(f"{url}{cluster.public_id}/").ok
    total.get_by_text("≈ $1,156.20 a month").wait_for()
    page.fill("#id_resize-capacity_units", "2")
    page.press("#id_resize-capacity_units", "Tab")
    total.get_by_text("≈ $2,251.20 a month").wait_for()
    page.screenshot(path=tmp_path / "estimate-resize.png", full_page=True)
    reported = page.evaluate("window.__violations")
    refused = [text for text in console if "Content Security Policy" in text]
    assert (reported, refused) == ([], [])
