"""The Content-Security-Policy: every response carries it, and a real browser (Debian's
chromium, driven by Playwright) clicking through the web UI, the API docs and the admin reports
no violation of it."""

import pytest
from django.urls import reverse

from clusters.models import Cluster
from tenants.scoping import tenant_scope
from tests.factories import PASSWORD, UserFactory, make_cell, make_cluster, make_org
from tests.support.browser import RECORD_VIOLATIONS


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/", "/healthz", "/no/such/page/"])
def test_every_response_carries_a_policy_without_inline_script_or_style(client, path):
    policy = client.get(path)["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


@pytest.mark.django_db(transaction=True)
def test_the_ui_runs_under_the_policy_in_a_real_browser(page, live_server):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Policy Co")
    make_cell()
    ready, _ = make_cluster(organization, name="events")
    provisioning, _ = make_cluster(organization, name="big", tier_slug="dedicated")
    operator = UserFactory(is_staff=True, is_superuser=True)
    with tenant_scope(organization):
        assert Cluster.objects.get(pk=provisioning.pk).state == "provisioning"  # it polls
    org = organization.public_id

    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on("console", lambda message: console.append(message.text))
    checked = []

    def check(what: str) -> None:
        page.wait_for_load_state("networkidle")
        reported = page.evaluate("window.__violations")
        refused = [text for text in console if "Content Security Policy" in text]
        assert (reported, refused) == ([], []), f"{what}: {reported} {refused}"
        checked.append(what)

    def visit(path: str) -> None:
        response = page.goto(live_server.url + path)
        assert response.ok, f"{path}: {response.status}"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        check(path)

    visit("/accounts/signup/")
    visit("/accounts/login/")
    page.fill("#id_username", owner.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    check("home")

    visit(reverse("tenants:members", args=[org]))
    visit(reverse("tenants:invitations", args=[org]))
    page.fill("#id_email", "invitee@example.com")
    page.click("form[novalidate] button[type=submit]")
    page.wait_for_selector("text=invitee@example.com")
    check("invitation sent")
    visit(reverse("tenants:api-keys", args=[org]))
    page.fill("#id_name", "deploys")
    page.click("form[novalidate] button[type=submit]")
    assert "slk_" in page.content()
    check("API key created")
    visit(reverse("tenants:audit", args=[org]))

    visit(reverse("clusters:list", args=[org]))
    visit(reverse("clusters:detail", args=[org, ready.public_id]))
    page.fill("#id_topic-name", "orders")
    page.click("form[action$='/topics/'] button[type=submit]")
    page.wait_for_selector("text=orders")
    check("topic created")
    page.fill("#id_credential-name", "shop")
    page.click("form[action$='/credentials/'] button[type=submit]")
    page.wait_for_selector("text=SCRAM")
    check("credential created, password shown")
    visit(reverse("clusters:detail", args=[org, provisioning.public_id]))
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true", timeout=6000):
        pass  # htmx polls the provisioning cluster's status every 2 s
    check("htmx poll")

    visit(reverse("api-docs"))
    page.wait_for_selector(".swagger-ui .info", timeout=15_000)
    check("API docs rendered")

    page.context.clear_cookies()
    visit("/admin/login/")
    page.fill("#id_username", operator.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(live_server.url + "/admin/")
    check("admin index")
    visit("/admin/clusters/cluster/")
    visit(f"/admin/clusters/cluster/{ready.pk}/change/")

    # The detector works: an inline style is refused and reported.
    page.evaluate("document.head.insertAdjacentHTML('beforeend', '<style>b{}</style>')")
    page.wait_for_function("window.__violations.length > 0")
    assert page.evaluate("window.__violations")[0].startswith("style-src")

    assert len(checked) == 21
