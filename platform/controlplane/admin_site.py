"""The operators' admin site: Django's, with the fleet dashboard as its first page after the
sign-in (linked from the index) and the dashboard's inline retry."""

from django.contrib import admin
from django.urls import path


class SluiceAdminSite(admin.AdminSite):
    site_header = "Sluice operations"
    site_title = "Sluice operations"
    index_title = "Fleet"
    index_template = "admin/sluice_index.html"

    def get_urls(self):
        from clusters import fleet_views  # the site is made while the apps load

        return [
            path("fleet/", self.admin_view(fleet_views.dashboard), name="fleet"),
            path(
                "fleet/clusters/<str:public_id>/retry/",
                self.admin_view(fleet_views.retry),
                name="fleet-retry",
            ),
            *super().get_urls(),
        ]
