"""The payment-method policy: what an organization may create before it has a way to pay.

Like the peers that ask for a card before paid plans (Aiven) and give a little for free
(Confluent's credits): an organization whose billing account has no payment method on file
(``payment_status`` ``none``)

- may not create, nor reshape into, a tier charged by the hour (one with a cluster-hour or
  capacity-unit-hour price in force: Standard and Dedicated), nor make such a cluster larger,
  since such a cluster costs money from its first hour whatever it does (making one smaller,
  or changing it to Serverless, is never refused);
- may use Serverless up to a no-card allowance a month (``SLUICE_NO_CARD_ALLOWANCE_MICROS``, $10 by
  default); once the month's usage so far reaches it, creating clusters and topics is refused
  until a payment method is added or the month ends. Nothing is deleted or throttled: what
  runs keeps running (a spend cap is another matter).

A refusal is the problem ``payment_method_required`` (HTTP 402 Payment Required; a form error
in the web UI). A past-due account has a payment method: it is not refused here. The policy
applies only when Stripe is configured (``STRIPE_API_KEY``): without it Sluice collects no
payment, so it never asks for one, and rates all the same.

Registered with the clusters app's creation guards (``clusters.guards``) from
``BillingConfig.ready``.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from clusters.guards import CLUSTER_CREATE, CLUSTER_RESHAPE, TOPIC_CREATE, Creation
from clusters.models import TIME_DIMENSIONS, Tier, TierPrice
from foundation.errors import PaymentMethodRequired

from .accounts import billing_account_of
from .costs import month_to_date_micros
from .invoices import dollars
from .models import BillingAccount, PaymentStatus
from .stripe_gateway import stripe_configured

ADD_ONE = "Add a payment method on the organization's Billing tab"


def charged_by_the_hour(tier: Tier) -> bool:
    """Whether ``tier`` has a price per cluster-hour or capacity-unit-hour in force now."""
    prices = TierPrice.objects.filter(tier=tier, effective_from__lte=timezone.now())
    for dimension in TIME_DIMENSIONS:
        current = prices.filter(dimension=dimension).order_by("-effective_from").first()
        if current is not None and current.micros > 0:
            return True
    return False


def _adds_an_hourly_charge(creation: Creation) -> bool:
    """A new cluster, or a reshape, on a tier charged by the hour; a reshape that only makes
    a cluster smaller on its own tier lowers the charge and is not one."""
    if creation.action not in (CLUSTER_CREATE, CLUSTER_RESHAPE):
        return False
    cluster = creation.cluster
    if (
        creation.action == CLUSTER_RESHAPE
        and cluster.tier_id == creation.tier.pk
        and creation.capacity_units <= cluster.capacity_units
    ):
        return False
    return charged_by_the_hour(creation.tier)


def policy_applies(account: BillingAccount) -> bool:
    """Whether the account is held to the no-card allowance: Stripe collects, and it has no
    payment method on file."""
    return stripe_configured() and account.payment_status == PaymentStatus.NONE


def payment_method_guard(creation: Creation) -> None:
    """Refuse ``creation`` with ``PaymentMethodRequired`` when the policy says so."""
    if not stripe_configured():  # before any query: without Stripe, nothing to check
        return
    if not policy_applies(billing_account_of(organization=creation.organization)):
        return
    if _adds_an_hourly_charge(creation):
        raise PaymentMethodRequired(
            f"{creation.tier.name} clusters are charged by the hour and need a payment method "
            f"on file. {ADD_ONE}, or choose Serverless",
            field="type",
        )
    if creation.action not in (CLUSTER_CREATE, TOPIC_CREATE):
        return
    allowance = settings.SLUICE_NO_CARD_ALLOWANCE_MICROS
    used = month_to_date_micros(organization=creation.organization)
    if used >= allowance:
        raise PaymentMethodRequired(
            f"This month's usage (${dollars(used // 10_000, places=2)} so far) has reached the "
            f"no-card allowance of ${dollars(allowance // 10_000, places=2)} for organizations "
            f"without a payment method. {ADD_ONE} to create more",
            allowance_micros=allowance,
            used_micros=used,
        )
