from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from clusters.first_steps import register_traffic_check
        from clusters.guards import register_creation_guard
        from tenants.navigation import OrganizationTab, register_organization_tab

        from . import fleet, metrics
        from .caps import spend_cap_guard
        from .panels import register
        from .payment_policy import payment_method_guard
        from .selectors import has_traffic

        register()
        fleet.register()
        metrics.register()
        register_creation_guard(payment_method_guard)
        register_creation_guard(spend_cap_guard)
        register_traffic_check(has_traffic)
        # The last tab: after the tenants' own (members, invitations, keys, audit: 20 to 23).
        register_organization_tab(
            OrganizationTab("billing", "Billing", "billing:read", "billing:account", position=40)
        )
