"""The browser harness itself: Debian's chromium opens a signed-in page, and the watch on the
page's reports fails a test on a console error (shown here by provoking one)."""

import pytest

from tests.factories import UserFactory, make_org
from tests.support.browser import PageProblems, in_viewport, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_signed_in_owner_sees_the_organizations_clusters(watched_page, base_url):
    owner = UserFactory()
    organization = make_org(owner=owner, name="Harness Org")
    sign_in(watched_page, owner, base_url)

    response = watched_page.goto(f"/orgs/{organization.public_id}/clusters/")

    assert response.status == 200
    assert watched_page.get_by_role("heading", name="Clusters").first.is_visible()
    assert in_viewport(watched_page, "h1")
    assert "chromium" in watched_page.context.browser.browser_type.name


def test_the_watch_catches_a_console_error(page, base_url):
    problems = PageProblems()
    problems.watch(page)
    page.goto(f"{base_url}/accounts/login/")
    page.evaluate("console.error('provoked')")
    page.wait_for_timeout(50)
    assert any("provoked" in line for line in problems.errors)
