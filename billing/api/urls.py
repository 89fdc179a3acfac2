from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import budget_views, caps, exports, views

router = SimpleRouter(trailing_slash=True)
router.register("invoices", views.InvoiceViewSet, basename="invoice")
router.register("billing/exports", exports.UsageExportViewSet, basename="usage-export")
router.register(
    "billing/webhook/deliveries", budget_views.WebhookDeliveryViewSet, basename="webhook-delivery"
)

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
        "orgs/<public_id:org>/clusters/<public_id:cluster>/recommendation/",
        views.ClusterRecommendationView.as_view(),
        name="cluster-recommendation",
    ),
    path(
        "orgs/<public_id:org>/billing-account/",
        views.BillingAccountView.as_view(),
        name="billing-account",
    ),
    path("orgs/<public_id:org>/costs/", views.CostsView.as_view(), name="organization-costs"),
    path("orgs/<public_id:org>/spend-caps/", caps.SpendCapsView.as_view(), name="spend-caps"),
    path(
        "orgs/<public_id:org>/spend-caps/organization/",
        caps.OrganizationCapView.as_view(),
        name="spend-cap-organization",
    ),
    path(
        "orgs/<public_id:org>/spend-caps/clusters/<public_id:cluster>/",
        caps.ClusterCapView.as_view(),
        name="spend-cap-cluster",
    ),
    path("orgs/<public_id:org>/billing/budget/", budget_views.BudgetView.as_view(), name="budget"),
    path(
        "orgs/<public_id:org>/billing/webhook/",
        budget_views.WebhookEndpointView.as_view(),
        name="webhook-endpoint",
    ),
    path("orgs/<public_id:org>/", include(router.urls)),
    path(
        "orgs/<public_id:org>/invoices/<public_id:id>/lines.csv",
        views.InvoiceLinesCsvView.as_view(),
        name="invoice-lines-csv",
    ),
]
