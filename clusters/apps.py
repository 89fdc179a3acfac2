from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Clusters"

    def ready(self) -> None:
        from django.urls import register_converter

        from tenants.closing_checks import register_closing_check
        from tenants.navigation import OrganizationTab, register_organization_tab
        from tenants.settings_panels import SettingsPanel, register_settings_panel

        from . import metrics
        from .consumer_groups import GroupNameConverter
        from .quota_use import quota_panel
        from .services import refuse_closing_with_clusters

        # Before the URLs are read: consumer groups are named by their name in the URL.
        register_converter(GroupNameConverter, "group_name")

        metrics.register()
        register_closing_check(refuse_closing_with_clusters, url_name="clusters:list")

        # The first tab of an organization's pages.
        register_organization_tab(
            OrganizationTab("clusters", "Clusters", "clusters:read", "clusters:list", position=10)
        )
        register_settings_panel(
            SettingsPanel("quota", "clusters/_quota_panel.html", quota_panel, position=10)
        )
