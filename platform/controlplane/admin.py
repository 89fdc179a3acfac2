from django.contrib import admin

from .models import ServiceHeartbeat


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["service", "seen_at", "hostname"]
    readonly_fields = ["service", "seen_at", "hostname"]

    def has_add_permission(self, request) -> bool:
        return False
