"""The billing account: one per organization, made when first read, set by the owner and
billing roles through the API and the Billing tab, read by admins, audited; the Stripe
customer id and the payment status are never a tenant's to set."""

import pytest

from billing import accounts
from billing.models import BillingAccount, PaymentStatus
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_org
from tests.support.clients import session_client
from tests.support.feedback import refused_page

pytestmark = pytest.mark.django_db

FULL = {
    "email": "ap@acme.example",
    "name": "Acme GmbH",
    "address_line1": "Hauptstraße 1",
    "address_line2": "3. OG",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "tax_id": "DE123456789",
    "currency": "usd",
}
EMPTY = dict.fromkeys(FULL, "") | {"currency": "usd"}


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Acme")


def client_as(org, role: str):
    return session_client(add_member(org, role).user)


def url(org) -> str:
    return f"/api/v1/orgs/{org.public_id}/billing-account/"


def test_the_account_is_made_on_first_read_with_nothing_set(org):
    response = client_as(org, Role.BILLING).get(url(org))

    assert response.status_code == 200, response.content
    body = response.json()
    updated_at = body.pop("updated_at")
    assert body == {**EMPTY, "stripe_customer_id": "", "payment_status": "none"}
    assert updated_at.endswith("Z")
    assert BillingAccount.unscoped_all_tenants.filter(organization=org).count() == 1
    # A second read finds the same one.
    with tenant_scope(org):
        first = accounts.billing_account_of(organization=org)
        assert accounts.billing_account_of(organization=org).pk == first.pk


def test_put_sets_every_field_and_is_audited_with_before_and_after(org):
    client = client_as(org, Role.BILLING)

    response = client.put(url(org), FULL, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert {name: body[name] for name in FULL} == FULL
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="billing_account.updated")
    assert event.target_id == org.public_id
    changed = {name for name in FULL if name != "currency"}
    assert event.before == dict.fromkeys(changed, "")
    assert event.after == {name: FULL[name] for name in changed}


def test_patch_changes_only_what_it_names(org):
    client = client_as(org, Role.OWNER)
    client.put(url(org), FULL, format="json")

    response = client.patch(url(org), {"city": "Hamburg", "postal_code": "20095"}, format="json")

    assert response.status_code == 200, response.content
    assert {name: response.json()[name] for name in FULL} == {
        **FULL,
        "city": "Hamburg",
        "postal_code": "20095",
    }
    with tenant_scope(org):
        last = AuditEvent.objects.filter(action="billing_account.updated").first()
    assert (last.before, last.after) == (
        {"city": "Berlin", "postal_code": "10115"},
        {"city": "Hamburg", "postal_code": "20095"},
    )


def test_a_change_that_changes_nothing_is_not_audited(org):
    client = client_as(org, Role.OWNER)
    client.put(url(org), FULL, format="json")
    client.patch(url(org), {"city": "Berlin"}, format="json")
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="billing_account.updated").count() == 1


def test_stripe_customer_and_payment_status_are_not_a_tenants_to_set(org):
    client = client_as(org, Role.OWNER)

    response = client.patch(
        url(org),
        {"stripe_customer_id": "cus_forged", "payment_status": "ok", "city": "Paris"},
        format="json",
    )

    assert response.status_code == 200
    account = BillingAccount.unscoped_all_tenants.get(organization=org)
    assert (account.stripe_customer_id, account.payment_status, account.city) == (
        "",
        PaymentStatus.NONE,
        "Paris",
    )
    with tenant_scope(org), pytest.raises(Exception, match="stripe_customer_id cannot be set"):
        accounts.billing_account_update(
            organization=org, actor=Actor(system="tests"), stripe_customer_id="cus_x"
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "ZZ"}, "country"),  # not an assigned code
        ({"country": "de"}, "country"),  # codes are written in capitals
        ({"country": "DEU"}, "country"),  # alpha-3 is not alpha-2
        ({"email": "not-an-address"}, "email"),
        ({"tax_id": "X" * 65}, "tax_id"),
        ({"postal_code": "1" * 21}, "postal_code"),
        ({"currency": "eur"}, "currency"),
        ({"name": 7}, "name"),
    ],
)
def test_invalid_values_are_a_validation_problem_naming_the_field(org, change, field):
    client = client_as(org, Role.OWNER)
    client.put(url(org), FULL, format="json")

    response = client.patch(url(org), change, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation"
    assert list(problem["errors"]) == [field]
    assert BillingAccount.unscoped_all_tenants.get(organization=org).country == "DE"


def test_put_needs_every_field(org):
    response = client_as(org, Role.OWNER).put(url(org), {"city": "Berlin"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == set(FULL) - {"city"}


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.OWNER, 200, 200),
        (Role.BILLING, 200, 200),
        (Role.ADMIN, 200, 403),
        (Role.DEVELOPER, 403, 403),
        (Role.VIEWER, 403, 403),
    ],
)
def test_roles(org, role, read, write):
    client = client_as(org, role)
    assert client.get(url(org)).status_code == read
    assert client.patch(url(org), {"city": "Berlin"}, format="json").status_code == write
    assert client.put(url(org), FULL, format="json").status_code == write
    assert client.post(url(org), FULL, format="json").status_code in (403, 405)
    if write != 200:
        assert not BillingAccount.unscoped_all_tenants.filter(city="Berlin").exists()


# The Billing tab -------------------------------------------------------------------------------


def page(org) -> str:
    return f"/orgs/{org.public_id}/billing/"


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        (Role.OWNER, True),
        (Role.BILLING, True),
        (Role.ADMIN, True),
        (Role.DEVELOPER, False),
        (Role.VIEWER, False),
    ],
)
def test_the_billing_tab_is_shown_to_the_roles_that_read_billing(org, role, shown):
    client = client_as(org, role)
    members_page = client.get(f"/orgs/{org.public_id}/").content.decode()  # every role's
    assert (f'href="{page(org)}"' in members_page) is shown
    assert client.get(page(org)).status_code == (200 if shown else 403)


def test_billing_members_save_the_account_from_the_tab(org):
    client = client_as(org, Role.BILLING)

    response = client.post(page(org), FULL)

    assert response.status_code == 302
    assert response["Location"] == page(org) + "#account"
    followed = client.get(page(org)).content.decode()
    assert "The billing account is saved." in followed
    assert 'value="DE123456789"' in followed
    account = BillingAccount.unscoped_all_tenants.get(organization=org)
    assert (account.country, account.tax_id, account.email) == ("DE", "DE123456789", FULL["email"])
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="billing_account.updated").count() == 1


def test_form_errors_show_next_to_their_field(org):
    client = client_as(org, Role.OWNER)

    response = client.post(page(org), {**FULL, "country": "ZZ", "email": "nope"})

    html = refused_page(client, response, page(org), "account")
    assert html.count('class="field has-error"') == 2
    assert "Enter a valid email address." in html
    assert "Select a valid choice." in html
    assert not BillingAccount.unscoped_all_tenants.filter(organization=org, city="Berlin").exists()


def test_admins_see_the_account_read_only(org):
    owner = client_as(org, Role.OWNER)
    owner.put(url(org), FULL, format="json")
    admin = client_as(org, Role.ADMIN)

    html = admin.get(page(org)).content.decode()

    assert "Your role can read the billing account" in html
    assert 'value="DE123456789"' in html
    assert "disabled" in html
    assert ">Save</button>" not in html
    assert admin.post(page(org), {**FULL, "city": "Munich"}).status_code == 403
    assert BillingAccount.unscoped_all_tenants.get(organization=org).city == "Berlin"


def test_padding_cannot_carry_a_longer_address_past_its_limit(org):
    # 201 characters as sent, 199 once trimmed: the limit is of what was sent, as described.
    response = client_as(org, Role.OWNER).patch(
        url(org), {"address_line1": "  " + "x" * 199}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation"
    assert "address_line1" in response.json()["errors"]
