"""Accounts: sign-up by e-mail link (nothing is stored until the link is followed), and
the limits on failed sign-ins per account and per network address."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse

from foundation import ratelimit
from foundation.errors import Conflict, InvalidInput, NotFound
from foundation.tasks import enqueue_on_commit

from .. import tokens
from ..models import User

SIGNUP_LINK_LIFETIME = timedelta(days=1)
_SIGNUP_SALT = "tenants.signup"


def signup_request(
    *, email: str, first_name: str = "", last_name: str = "", next_url: str = "", site_url: str
) -> str:
    """Start a sign-up: a worker mails the address a link to finish it or, when the address
    already has an account, a note saying so. The caller's answer is the same either way, so
    sign-up does not tell who has an account. Returns the normalised address."""
    email = User.objects.normalize_email(email).strip().lower()
    details = {
        "email": email,
        "first_name": first_name.strip(),
        "last_name": last_name.strip(),
        "next_url": next_url,
        "site_url": site_url,
    }
    enqueue_on_commit("tenants.tasks.send_signup_email", **details)
    return email


def signup_send_email(
    *, email: str, first_name: str, last_name: str, next_url: str, site_url: str
) -> None:
    """Mail the sign-up link, or tell the owner of a taken address that someone tried. The link
    carries the details, signed; nothing is stored until the address's owner follows it."""
    site_url = site_url.rstrip("/")
    if User.objects.filter(email__iexact=email).exists():
        subject = "Someone tried to sign up to Sluice with your address"
        template = "tenants/email/signup_taken.txt"
        context = {
            "login_url": site_url + reverse("login"),
            "reset_url": site_url + reverse("password_reset"),
        }
    else:
        token = signing.dumps(
            {"email": email, "first_name": first_name, "last_name": last_name, "next": next_url},
            salt=_SIGNUP_SALT,
            compress=True,
        )
        subject = "Finish signing up to Sluice"
        template = "tenants/email/signup.txt"
        context = {
            "confirm_url": site_url + reverse("tenants:signup-confirm", args=[token]),
            "hours": int(SIGNUP_LINK_LIFETIME.total_seconds() // 3600),
        }
    send_mail(
        subject=subject,
        message=render_to_string(template, {"email": email, **context}),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[email],
    )


def signup_details(*, token: str) -> dict:
    """What a mailed sign-up link says: e-mail, names and where to go next."""
    try:
        return signing.loads(token, salt=_SIGNUP_SALT, max_age=SIGNUP_LINK_LIFETIME.total_seconds())
    except signing.SignatureExpired:
        raise InvalidInput("This sign-up link has expired: sign up again") from None
    except signing.BadSignature:
        raise NotFound("This is not a sign-up link of ours: sign up again") from None


def user_signup(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create the account of a confirmed address (see ``signup_request``)."""
    email = User.objects.normalize_email(email).lower()
    taken = Conflict("An account with this e-mail address already exists", field="email")
    if User.objects.filter(email__iexact=email).exists():
        raise taken
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email, password, first_name=first_name.strip(), last_name=last_name.strip()
            )
    except IntegrityError:  # signed up twice at once
        raise taken from None


def login_lockout(*, email: str, client_address: str | None) -> int:
    """Seconds until this account may sign in again from this address; 0 when it may now."""
    return ratelimit.locked_for([key for key, _ in _login_failure_limits(email, client_address)])


def login_failure_record(*, email: str, client_address: str | None) -> None:
    """Count a failed sign-in against the account and the address; the one that reaches its
    limit within the window is locked for the window."""
    window = settings.SLUICE_LOGIN_LOCKOUT_SECONDS
    limits = _login_failure_limits(email, client_address)
    # A limit of N - 1 is exceeded by the Nth failure.
    decisions = ratelimit.hit_all([(key, limit - 1) for key, limit in limits], window=window)
    for (key, _), decision in zip(limits, decisions, strict=True):
        if not decision.allowed:
            ratelimit.lock(key, seconds=window)


def _login_failure_limits(email: str, client_address: str | None) -> list[tuple[str, int]]:
    # The e-mail address is hashed: the rate-limit store need not hold who tried to sign in.
    account = tokens.digest(User.objects.normalize_email(email or "").strip().lower())[:32]
    limits = [(f"login:account:{account}", settings.SLUICE_LOGIN_FAILURES_PER_ACCOUNT)]
    if client_address:
        per_address = settings.SLUICE_LOGIN_FAILURES_PER_ADDRESS
        limits.append((f"login:address:{client_address}", per_address))
    return limits
