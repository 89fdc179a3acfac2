from django.contrib import admin

from .models import ServiceHeartbeat

admin.site.site_header = "Sluice operations"
admin.site.site_title = "Sluice operations"
admin.site.index_title = "Fleet"


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["service", "seen_at", "hostname"]
    readonly_fields = ["service", "seen_at", "hostname"]

    def has_add_permission(self, request) -> bool:
        return False
