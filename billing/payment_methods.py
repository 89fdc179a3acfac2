"""Adding a payment method: the organization's customer in Stripe (created once, its id kept
on the billing account) and a session of Stripe's customer portal, where an owner or billing
member adds or changes the card. Sluice never sees the card: Stripe tells it, by webhook, that
the customer has a payment method (the account's ``payment_status``).

Only with Stripe configured; the Billing tab offers it to the roles that may change billing.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from tenants.audit import Actor, audit_record
from tenants.models import Organization

from .accounts import billing_account_of
from .models import BillingAccount
from .stripe_gateway import StripeGateway


def stripe_customer_of(
    *, organization: Organization, actor: Actor, gateway: StripeGateway | None = None
) -> str:
    """The organization's Stripe customer id, the customer created first if it has none.

    Creating it is keyed by the organization (``sluice:customer:<org>``), so two clicks at
    once, or a retry, make one customer; the first id saved is kept."""
    account = billing_account_of(organization=organization)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    gateway = gateway or StripeGateway.from_settings()
    customer = gateway.create_customer(
        organization=organization.public_id, name=account.name, email=account.email
    )
    with transaction.atomic():
        saved = BillingAccount.objects.filter(pk=account.pk, stripe_customer_id="").update(
            stripe_customer_id=customer, updated_at=timezone.now()
        )
        if saved:
            audit_record(
                organization=organization,
                actor=actor,
                action="billing_account.stripe_customer_created",
                target=organization,
                after={"stripe_customer_id": customer},
            )
    return BillingAccount.objects.get(pk=account.pk).stripe_customer_id


def payment_portal_url(*, organization: Organization, actor: Actor, return_url: str) -> str:
    """Where to send the person to add or change the organization's payment method: a fresh
    session of Stripe's customer portal, which comes back to ``return_url``."""
    gateway = StripeGateway.from_settings()
    customer = stripe_customer_of(organization=organization, actor=actor, gateway=gateway)
    return gateway.create_portal_session(customer=customer, return_url=return_url)
