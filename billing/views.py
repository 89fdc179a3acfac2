"""The organization's Billing tab: its billing account (owners and billing members change it,
admins read it), what its clusters cost this month so far, and its invoices, each with its
lines as CSV; above them, a warning for each unpaid invoice whose payment Stripe failed to
collect; and, with Stripe configured, the way to Stripe's portal to add a payment method.
Each invoice has a page of its own, printable, for whoever may read the tab. Below the
invoices, the organization's usage exports: each object is downloaded through a pre-signed link
made at the click, and a closed month may be exported again. The cost estimate the cluster
forms fetch as they change is a fragment of this app too (clusters link to it by URL name
only)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse

from foundation.errors import DomainError
from tenants.access import OrganizationAccess
from tenants.forms import add_domain_error
from tenants.views.base import organization_page_context, organization_view
from tenants.views.feedback import back_with_refused, notify, refused_form

from . import (
    accounts,
    cap_presentation,
    costs,
    estimates,
    exports,
    invoices,
    payment_methods,
    payment_policy,
    presentation,
    stripe_events,
)
from .forms import BillingAccountForm, EstimateForm
from .rating import MICROS_PER_CENT
from .stripe_gateway import StripeCallFailed, stripe_configured

EXPORTS_SHOWN = 24  # the tab shows the newest; the API lists them all
EXPORT_FILE_LABELS = {
    "usage-hours": "Hours",
    "usage-adjustments": "Adjustments",
    "invoice-lines": "Invoice lines",
    "manifest.json": "Manifest",
}


@organization_view(scopes={"GET": "billing:read", "POST": "billing:write"})
def billing(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    organization = access.organization
    account = accounts.billing_account_of(organization=organization)
    may_edit = access.can("billing:write")
    initial = {name: getattr(account, name) for name in accounts.EDITABLE_FIELDS}

    def account_form(data) -> BillingAccountForm:
        return BillingAccountForm(data, initial=initial, read_only=not may_edit)

    if request.method == "POST":
        form = account_form(request.POST)
        if form.is_valid():
            try:
                accounts.billing_account_update(
                    organization=organization, actor=access.actor(request), **form.cleaned_data
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                notify(request, "The billing account is saved.", place="account")
                return redirect(f"{request.path}#account")
        return back_with_refused(request, form, request.path, place="account", key="account")
    form = refused_form(request, "account", account_form) or account_form(None)
    context = {
        **organization_page_context(access, "billing"),
        "form": form,
        "account": account,
        "may_edit": may_edit,
        "failed_payments": [
            _invoice_row(organization, invoice)
            for invoice in stripe_events.failed_payments(organization=organization)
        ],
        "month_to_date": presentation.month_to_date_table(
            costs.month_to_date(organization=organization)
        ),
        "payments": _payments(account, may_edit=may_edit),
        "spend_caps": cap_presentation.caps_summary(organization),
        "invoices": [
            _invoice_row(organization, invoice)
            for invoice in invoices.invoices_of(organization=organization)
        ],
        **_exports_context(organization),
    }
    return render(request, "billing/org_billing.html", context)


def _exports_context(organization) -> dict:
    return {
        "exports_configured": exports.store.store_configured(),
        "export_months": [
            exports.month_label(month)
            for month in exports.exportable_months(organization=organization)
        ],
        "exports": [
            {
                "export": export,
                "files": [
                    {
                        "name": name,
                        "label": EXPORT_FILE_LABELS.get(name, name),
                        "url": reverse(
                            "billing:export-file",
                            kwargs={"org": organization.public_id, "export_id": export.public_id},
                        )
                        + "?"
                        + urlencode({"file": name}),
                    }
                    for name in exports.export_file_names(export)
                ],
            }
            for export in exports.exports_of(organization=organization)[:EXPORTS_SHOWN]
        ],
    }


@organization_view(scopes={"POST": "billing:read"}, reload="billing:account#exports")
def export_request(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    """Export a closed month again (any member who may read invoices), back to the tab."""
    organization = access.organization
    try:
        export = exports.export_request(
            organization=organization,
            period_start=exports.month_parse(request.POST.get("month")),
            actor=access.actor(request),
        )
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request, f"The export of {exports.month_label(export.period_start)} is on its way."
        )
    return redirect(reverse("billing:account", kwargs={"org": organization.public_id}) + "#exports")


@organization_view(scopes={"GET": "billing:read"})
def export_file(request: HttpRequest, access: OrganizationAccess, export_id: str) -> HttpResponse:
    """To a pre-signed link of one object of an export (``?file=`` its name), made now: it
    lives a few minutes."""
    found = exports.export_of(organization=access.organization, public_id=export_id)
    name = request.GET.get("file", "")
    url = exports.export_download_url(found, name) if found is not None else None
    if url is None:
        raise Http404("No such export file")
    return HttpResponseRedirect(url)


@organization_view(scopes={"GET": "billing:read"})
def invoice(request: HttpRequest, access: OrganizationAccess, invoice_id: str) -> HttpResponse:
    organization = access.organization
    found = invoices.invoice_of(organization=organization, public_id=invoice_id)
    if found is None:
        raise Http404("No such invoice")
    context = {
        **organization_page_context(access, "billing"),
        **presentation.invoice_page(found, invoices.lines_of(found)),
        "invoice": found,
        "csv_url": _invoice_row(organization, found)["csv_url"],
        "account": accounts.billed_to_of(found, organization=organization),
        "collected": stripe_configured(),
    }
    return render(request, "billing/invoice.html", context)


def _invoice_row(organization, invoice) -> dict:
    return {
        "invoice": invoice,
        "total": presentation.usd(invoice.total_cents),
        "url": reverse(
            "billing:invoice",
            kwargs={"org": organization.public_id, "invoice_id": invoice.public_id},
        ),
        "csv_url": reverse(
            "invoice-lines-csv", kwargs={"org": organization.public_id, "id": invoice.public_id}
        ),
    }


@organization_view(scopes={"POST": "billing:write"}, reload="billing:account")
def payment_method(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    """To Stripe's customer portal (303), which comes back to the Billing tab."""
    organization = access.organization
    tab = reverse("billing:account", kwargs={"org": organization.public_id})
    if not stripe_configured():
        messages.error(request, "Payments are not collected here: Stripe is not configured.")
        return redirect(tab)
    try:
        portal = payment_methods.payment_portal_url(
            organization=organization,
            actor=access.actor(request),
            return_url=request.build_absolute_uri(tab),
        )
    except StripeCallFailed:
        messages.error(
            request, "Stripe could not be reached to manage the payment method. Try again."
        )
        return redirect(tab)
    return HttpResponseRedirect(portal, status=303)


def _payments(account, *, may_edit: bool) -> dict:
    """Whether payments are collected here (and so whether the payment method may be managed
    from the tab), and the no-card allowance when the account is held to it."""
    return {
        "collected": stripe_configured(),
        "may_manage": stripe_configured() and may_edit,
        "allowance_applies": payment_policy.policy_applies(account),
        "allowance": presentation.usd(settings.SLUICE_NO_CARD_ALLOWANCE_MICROS // MICROS_PER_CENT),
    }


@organization_view(scopes={"GET": "clusters:read"})
def estimate(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    """The cost estimate of the tier, capacity units and workload in the query, as an HTML
    fragment. Always a 200 (htmx swaps it in): a refusal is shown in it, as a form error."""
    form = EstimateForm(request.GET)
    table = None
    if form.is_valid() and form.cleaned_data["type"]:
        data = form.cleaned_data
        workload = estimates.Workload.of(data)
        try:
            table = presentation.estimate_table(
                estimates.estimate(tier_slug=data["type"], workload=workload)
            )
        except DomainError as error:
            add_domain_error(form, error)
    return render(request, "billing/_estimate.html", {"form": form, "estimate": table})
