from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Clusters"

    def ready(self) -> None:
        from tenants.navigation import OrganizationTab, register_organization_tab

        # The first tab of an organization's pages.
        register_organization_tab(
            OrganizationTab("clusters", "Clusters", "clusters:read", "clusters:list", position=10)
        )
