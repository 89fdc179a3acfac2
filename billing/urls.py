from django.urls import path

from . import budget_views, cap_views, views, webhooks

app_name = "billing"

urlpatterns = [
    path("orgs/<str:org>/billing/", views.billing, name="account"),
    path("webhooks/stripe/", webhooks.stripe_webhook, name="stripe-webhook"),
    path("orgs/<str:org>/billing/payment-method/", views.payment_method, name="payment-method"),
    path("orgs/<str:org>/billing/estimate/", views.estimate, name="estimate"),
    path("orgs/<str:org>/billing/alerts/", budget_views.budget_alerts, name="budget"),
    path("orgs/<str:org>/billing/caps/", cap_views.spend_caps, name="caps"),
    path("orgs/<str:org>/billing/invoices/<str:invoice_id>/", views.invoice, name="invoice"),
    path("orgs/<str:org>/billing/exports/", views.export_request, name="export-request"),
    path(
        "orgs/<str:org>/billing/exports/<str:export_id>/download/",
        views.export_file,
        name="export-file",
    ),
]
