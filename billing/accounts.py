"""An organization's billing account: who its invoices go to. Read and changed by the owner
and billing roles (admins read it); made the first time it is asked for, so no organization
is without one once anyone looks. The Stripe customer id and the payment status are the
system's to write: nothing here takes them from a tenant."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from foundation.errors import InvalidInput
from tenants.audit import Actor, audit_record, snapshot
from tenants.models import Organization

from .countries import COUNTRIES
from .models import BillingAccount, Currency, Invoice

# What a tenant may set, in the order forms and the API show them.
EDITABLE_FIELDS = (
    "email",
    "name",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "country",
    "tax_id",
    "currency",
)


def billing_account_of(*, organization: Organization) -> BillingAccount:
    """The organization's account, made (empty, in US dollars) on the first call."""
    account = BillingAccount.objects.filter(organization=organization).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():  # a savepoint: two first reads at once make one account
            return BillingAccount.objects.create(organization=organization)
    except IntegrityError:
        return BillingAccount.objects.get(organization=organization)


@transaction.atomic
def billing_account_update(
    *, organization: Organization, actor: Actor, **changes
) -> BillingAccount:
    """Set some of ``EDITABLE_FIELDS``; the others keep their values. Audited with the values
    before and after, when anything changed."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]} cannot be set", field=sorted(unknown)[0])
    cleaned = {name: _clean(name, value) for name, value in changes.items()}
    billing_account_of(organization=organization)
    account = BillingAccount.objects.select_for_update().get(organization=organization)
    before = snapshot(account, list(EDITABLE_FIELDS))
    for name, value in cleaned.items():
        setattr(account, name, value)
    after = snapshot(account, list(EDITABLE_FIELDS))
    if after == before:
        return account
    account.save()
    changed = [name for name in EDITABLE_FIELDS if before[name] != after[name]]
    audit_record(
        organization=organization,
        actor=actor,
        action="billing_account.updated",
        target=organization,
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
    )
    return account


_MAX_LENGTHS = {name: BillingAccount._meta.get_field(name).max_length for name in EDITABLE_FIELDS}


def _clean(name: str, value) -> str:
    """The rules whatever the caller (API, web form, admin): text within the column, a real
    e-mail address, an ISO 3166-1 alpha-2 country, a currency Sluice bills in."""
    if not isinstance(value, str) or "\x00" in value:
        raise InvalidInput("Must be text", field=name)
    value = value.strip()
    if len(value) > _MAX_LENGTHS[name]:
        raise InvalidInput(f"At most {_MAX_LENGTHS[name]} characters", field=name)
    if name == "email" and value:
        try:
            validate_email(value)
        except ValidationError:
            raise InvalidInput("Enter a valid e-mail address", field=name) from None
    if name == "country":
        value = value.upper()
        if value and value not in COUNTRIES:
            raise InvalidInput(
                "Not an ISO 3166-1 alpha-2 country code (e.g. US, DE, FR)", field=name
            )
    if name == "currency" and value not in Currency.values:
        raise InvalidInput(f"Sluice bills in {', '.join(Currency.values)} only", field=name)
    return value


def billed_to_snapshot(account: BillingAccount) -> dict[str, str]:
    """Who an invoice is addressed to, as the account says now: kept on the invoice when its
    month closes, so a later change of address does not rewrite an issued invoice."""
    return {field: getattr(account, field) for field in EDITABLE_FIELDS}


def billed_to_of(invoice: Invoice, *, organization: Organization) -> BillingAccount:
    """Who the invoice is addressed to: as it was at the close, or (a draft) as it is now. An
    unsaved account, for display only."""
    if invoice.billed_to:
        known = {k: v for k, v in invoice.billed_to.items() if k in EDITABLE_FIELDS}
        return BillingAccount(organization=organization, **known)
    return billing_account_of(organization=organization)
