"""Stripe, which collects what Sluice rates (billing/stripe_gateway.py makes every call)."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env

# A secret (sk_…) or restricted (rk_…) key. Empty: Stripe is not configured, and Sluice rates
# and shows invoices but sends nothing to Stripe.
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
# The signing secret of the webhook endpoint (whsec_…), which Stripe's events are checked with.
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Where Stripe's API is: tests point it at stripe-mock or the stand-in on 127.0.0.1.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
# Seconds to wait for one answer of Stripe's API (no answer is retried later, with the same key).
SLUICE_STRIPE_TIMEOUT_SECONDS = env.float("SLUICE_STRIPE_TIMEOUT_SECONDS", default=30.0)
# How long a worker holds an invoice's push between two of its steps (each step renews it): a
# worker that dies loses it after this, and another goes on. Several times the timeout, so a
# worker still waiting for Stripe keeps it.
SLUICE_STRIPE_OUTBOX_LEASE_SECONDS = env.float("SLUICE_STRIPE_OUTBOX_LEASE_SECONDS", default=120.0)

STRIPE_SECRET_KEY_PREFIXES = ("sk_live_", "sk_test_", "rk_live_", "rk_test_")
if STRIPE_API_KEY and not STRIPE_API_KEY.startswith(STRIPE_SECRET_KEY_PREFIXES):
    raise ImproperlyConfigured(
        "STRIPE_API_KEY is not a secret key (sk_live_…, sk_test_…) or restricted key (rk_…):"
        " a publishable key (pk_…) cannot create invoices"
    )
if STRIPE_WEBHOOK_SECRET and not STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
    raise ImproperlyConfigured(
        "STRIPE_WEBHOOK_SECRET is not a webhook signing secret (whsec_…, shown with the"
        " endpoint in Stripe's dashboard)"
    )
# Live mode charges cards; test mode (a test key) moves no money. Pages may say which.
STRIPE_LIVE_MODE = STRIPE_API_KEY.startswith(("sk_live_", "rk_live_"))
# Without a payment method on file (and only when Stripe is configured), an organization may
# use Serverless up to this much a month, in micro-dollars ($10 by default); past it, and for
# tiers charged by the hour at any amount, a payment method is required (billing/payment_policy.py).
SLUICE_NO_CARD_ALLOWANCE_MICROS = env.int("SLUICE_NO_CARD_ALLOWANCE_MICROS", default=10_000_000)
if SLUICE_NO_CARD_ALLOWANCE_MICROS < 0:
    raise ImproperlyConfigured("SLUICE_NO_CARD_ALLOWANCE_MICROS is an amount: 0 or more")
