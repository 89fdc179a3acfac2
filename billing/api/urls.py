from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("invoices", views.InvoiceViewSet, basename="invoice")
router.register("billing/exports", views.UsageExportViewSet, basename="usage-export")

urlpatterns = [
    # Public, beside the catalog it prices.
    path("catalog/estimate/", views.EstimateView.as_view(), name="catalog-estimate"),
    path(
        "orgs/<public_id:org>/usage/",
        views.OrganizationUsageView.as_view(),
        name="organization-usage",
    ),
    path(
        "orgs/<public_id:org>/clusters/<public_id:cluster>/usage/",
        views.ClusterUsageView.as_view(),
        name="cluster-usage",
    ),
    path(
        "orgs/<public_id:org>/billing-account/",
        views.BillingAccountView.as_view(),
        name="billing-account",
    ),
    path("orgs/<public_id:org>/costs/", views.CostsView.as_view(), name="organization-costs"),
    path("orgs/<public_id:org>/", include(router.urls)),
    path(
        "orgs/<public_id:org>/invoices/<public_id:id>/lines.csv",
        views.InvoiceLinesCsvView.as_view(),
        name="invoice-lines-csv",
    ),
]
