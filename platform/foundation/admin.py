"""Admin building blocks shared by the apps' admin classes (no model of its own)."""


class ReadOnlyAdminMixin:
    """Operators may look, not touch: every field read-only, nothing added, changed or deleted
    (records whose history must stay as written: the audit trail, the usage ledger)."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
