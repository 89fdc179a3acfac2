from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from tenants.navigation import OrganizationTab, register_organization_tab

        from .panels import register

        register()
        # After the clusters' tab, before the tenants' own (members, keys, audit: from 20).
        register_organization_tab(
            OrganizationTab("billing", "Billing", "billing:read", "billing:account", position=15)
        )
