from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("operations", views.OperationViewSet, basename="operation")

urlpatterns = [
    path("catalog/", views.CatalogView.as_view(), name="catalog"),
    path("orgs/<str:org>/", include(router.urls)),
]
