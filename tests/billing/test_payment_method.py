"""Managing the payment method from the Billing tab: a button for owners and billing members
when Stripe is configured, which makes the organization's Stripe customer once and sends the
person to a session of Stripe's customer portal (303). Stripe is stripe-mock here, behind the
recording proxy (which counts the calls and can fail one)."""

import pytest

from billing.models import BillingAccount
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_org
from tests.support.clients import session_client
from tests.support.stripe_mock import API_KEY
from tests.support.stripe_standin import Fault, FaultProxy

pytestmark = pytest.mark.django_db

BUTTON = "Manage payment method</button>"


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Paying")


@pytest.fixture
def proxy(stripe_mock, settings):
    with FaultProxy(stripe_mock.url) as proxy:
        settings.STRIPE_API_KEY = API_KEY
        settings.STRIPE_API_BASE = proxy.url
        yield proxy


def tab(org) -> str:
    return f"/orgs/{org.public_id}/billing/"


def manage(org) -> str:
    return f"/orgs/{org.public_id}/billing/payment-method/"


def calls(proxy, path: str) -> int:
    return sum(1 for r in proxy.log if r.method == "POST" and r.path.split("?")[0] == path)


def customer_id(org) -> str:
    return BillingAccount.unscoped_all_tenants.get(organization=org).stripe_customer_id


def test_owners_go_to_stripes_portal_with_a_customer_made_once(org, proxy):
    client = session_client(add_member(org, Role.OWNER).user)
    assert BUTTON in client.get(tab(org)).content.decode()

    first = client.post(manage(org))
    second = client.post(manage(org))

    for response in (first, second):
        assert response.status_code == 303
        assert response["Location"].startswith("https://")
    assert customer_id(org).startswith("cus_")
    assert calls(proxy, "/v1/customers") == 1
    assert calls(proxy, "/v1/billing_portal/sessions") == 2
    with tenant_scope(org):
        created = AuditEvent.objects.get(action="billing_account.stripe_customer_created")
    assert created.after == {"stripe_customer_id": customer_id(org)}


@pytest.mark.parametrize(
    ("role", "shown", "status"),
    [(Role.BILLING, True, 303), (Role.ADMIN, False, 403), (Role.DEVELOPER, False, 403)],
)
def test_only_the_roles_that_change_billing_manage_it(org, proxy, role, shown, status):
    client = session_client(add_member(org, role).user)
    page = client.get(tab(org))
    assert (BUTTON in page.content.decode()) is shown
    assert client.post(manage(org)).status_code == status


def test_when_stripe_fails_the_tab_says_so_and_nothing_is_kept(org, proxy):
    client = session_client(add_member(org, Role.OWNER).user)
    proxy.plan(Fault.SERVER_ERROR, method="POST", path_prefix="/v1/customers")

    response = client.post(manage(org), follow=True)

    assert response.redirect_chain == [(tab(org), 302)]
    assert "Stripe could not be reached" in response.content.decode()
    assert customer_id(org) == ""


def test_without_stripe_there_is_no_button_and_payments_are_not_collected(org, settings):
    settings.STRIPE_API_KEY = ""
    client = session_client(add_member(org, Role.OWNER).user)

    page = client.get(tab(org)).content.decode()
    assert BUTTON not in page
    assert "Payments are not collected here" in page

    response = client.post(manage(org), follow=True)
    assert response.redirect_chain == [(tab(org), 302)]
    assert customer_id(org) == ""
