from django.urls import include, path

from .views import ApiRootView

urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("", include("tenants.api.urls")),
    path("", include("clusters.api.urls")),
    path("", include("billing.api.urls")),
]
