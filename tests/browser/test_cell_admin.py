"""An operator registers a cell in the admin in a real browser by pasting a kubeconfig for the
test API server: the connection is checked before saving, the page then says the credentials
are set (API server, fingerprint) and never holds the token; a malformed kubeconfig is an
error shown beside its field, left empty."""

import pytest
import yaml
from playwright.sync_api import expect

from clusters.models import Cell
from tests.factories import UserFactory
from tests.support.browser import sign_in
from tests.support.cells import kube_credentials

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.kube]


def test_an_operator_pastes_a_kubeconfig_and_sees_only_that_it_is_set(watched_page, base_url, kube):
    sign_in(watched_page, UserFactory(is_staff=True, is_superuser=True), base_url)
    page = watched_page

    page.goto("/admin/clusters/cell/add/")
    page.fill("#id_slug", "eu-west-1-k8s")
    page.select_option("#id_region", "eu-west-1")
    page.fill("#id_kubeconfig", "current-context: [unclosed")
    page.get_by_role("button", name="Save", exact=True).click()
    # Beside the field it is about, and the page scrolls to nothing else.
    expect(page.locator(".field-kubeconfig .errorlist")).to_have_text(
        "The kubeconfig is not valid YAML."
    )
    expect(page.locator(".errorlist.nonfield")).to_have_count(0)
    assert page.input_value("#id_kubeconfig") == ""

    page.fill("#id_kubeconfig", yaml.safe_dump(kube_credentials(kube)))
    assert page.is_checked("#id_test_connection")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    cell = Cell.objects.get(slug="eu-west-1-k8s")
    page.goto(f"/admin/clusters/cell/{cell.pk}/change/")
    shown = page.locator(".field-credentials .readonly").inner_text()
    assert shown == f"set: {kube.url}, sha256:{cell.credentials_fingerprint[:16]}"
    assert page.input_value("#id_kubeconfig") == ""
    assert page.input_value("#id_token") == ""
    assert kube.admin_token not in page.content()
