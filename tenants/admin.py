"""The operators' view of tenancy. Operators see every tenant, so these admin classes read
through the unscoped managers on purpose."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from foundation.admin import ReadOnlyAdminMixin

from .forms import AdminLoginForm
from .models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from .scoping import tenant_scope

# The operators' sign-in says so when failed sign-ins have locked it out (tenants.backends).
admin.site.login_form = AdminLoginForm


class AllTenantsMixin:
    """Admin lists and forms for tenant-owned models span every organization."""

    def get_queryset(self, request):
        queryset = self.model.unscoped_all_tenants.get_queryset()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["public_id", "created_at"]


class OrganizationStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("closed", "Closed")]

    def queryset(self, request, queryset):
        if self.value() in ("open", "closed"):
            return queryset.filter(closed_at__isnull=self.value() == "open")
        return queryset


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "created_at", "closed_at"]
    list_filter = [OrganizationStateFilter]
    search_fields = ["name", "public_id"]
    # Closing is the owner's act, through the product (it revokes keys and checks clusters).
    readonly_fields = ["public_id", "created_at", "closed_at", "closed_by"]
    inlines = [MembershipInline]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # members join a saved organization

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # One organization's page is that tenant's business: its inlines (members) are read
        # and validated inside its scope, like any request of the tenant's own.
        organization = Organization.objects.filter(pk=object_id).first() if object_id else None
        if organization is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with tenant_scope(organization):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # templates render lazily: do it while in scope
            return response


@admin.register(Invitation)
class InvitationAdmin(AllTenantsMixin, admin.ModelAdmin):
    list_display = ["email", "organization", "role", "state", "created_at", "expires_at"]
    list_filter = ["state", "role"]
    search_fields = ["email", "organization__name", "organization__public_id"]
    readonly_fields = [f.name for f in Invitation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # invitations carry a mailed token: they are made by the product only


@admin.register(ApiKey)
class ApiKeyAdmin(AllTenantsMixin, admin.ModelAdmin):
    list_display = ["name", "public_id", "organization", "role", "prefix", "last_used_at"]
    list_filter = ["role"]
    search_fields = ["name", "public_id", "prefix", "organization__name"]
    readonly_fields = [f.name for f in ApiKey._meta.fields if f.name != "revoked_at"]
    exclude = ["key_digest"]

    def has_add_permission(self, request) -> bool:
        return False  # the key is shown once, to whoever creates it: tenants make their own


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, AllTenantsMixin, admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_label", "action", "target_type"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor_label", "action", "target_id", "request_id", "organization__name"]
    date_hierarchy = "created_at"
