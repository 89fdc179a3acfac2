from django.apps import AppConfig

# The tabs of this app's organization pages, in order after those of the apps above it (from
# position 20), with the scope each needs to be shown.
ORGANIZATION_TABS = [
    ("members", "Members", "members:read", "tenants:members"),
    ("invitations", "Invitations", "invitations:read", "tenants:invitations"),
    ("api_keys", "API keys", "apikeys:read", "tenants:api-keys"),
    ("audit", "Audit log", "audit:read", "tenants:audit"),
]


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from .api import schema  # noqa: F401 - registers the OpenAPI authentication scheme
        from .navigation import OrganizationTab, register_organization_tab

        for position, (key, label, scope, url_name) in enumerate(ORGANIZATION_TABS, start=20):
            register_organization_tab(OrganizationTab(key, label, scope, url_name, position))
        # The owners' settings (closing the organization) come last, after every app's tabs.
        register_organization_tab(
            OrganizationTab("settings", "Settings", "org:owner", "tenants:settings", position=90)
        )
