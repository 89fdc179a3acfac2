from datetime import timedelta

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone

from foundation.ids import new_public_id

from .roles import Role
from .scoping import TenantOwnedModel

__all__ = [
    "ApiKey",
    "AuditEvent",
    "IdempotencyRecord",
    "Invitation",
    "Membership",
    "Organization",
    "Role",
    "User",
]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("A user needs an e-mail address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A person. Signs in with an e-mail address; belongs to organizations by membership."""

    username = None
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    def __str__(self) -> str:
        return self.email


# Defaults of public ids (module-level functions, as migrations need).
def new_organization_id() -> str:
    return new_public_id("org")


def new_membership_id() -> str:
    return new_public_id("mem")


def new_invitation_id() -> str:
    return new_public_id("inv")


def new_api_key_id() -> str:
    return new_public_id("key")


def new_audit_event_id() -> str:
    return new_public_id("evt")


class Organization(models.Model):
    """A tenant: owns members, API keys, clusters, credentials and usage.

    A closed organization (``closed_at`` set, by an owner once its clusters were deleted) is
    gone for its members and keys, as if it had never existed; its rows stay, for its final
    invoice and for the records kept after it (invoices, ledger, audit trail)."""

    public_id = models.CharField(max_length=32, unique=True, default=new_organization_id)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        "User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class Membership(TenantOwnedModel):
    public_id = models.CharField(max_length=32, unique=True, default=new_membership_id)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.organization}"


def invitation_expiry():
    return timezone.now() + timedelta(days=7)


class Invitation(TenantOwnedModel):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    public_id = models.CharField(max_length=32, unique=True, default=new_invitation_id)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    # SHA-256 of the token mailed to the invitee; the token itself is never stored.
    token_digest = models.CharField(max_length=64, unique=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=invitation_expiry)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(state="pending"),
                name="one_pending_invitation_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.state})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def effective_state(self) -> str:
        if self.state == self.State.PENDING and self.is_expired:
            return self.State.EXPIRED
        return self.state


class ApiKey(TenantOwnedModel):
    """A bearer credential for automation, bound to one organization and one role."""

    public_id = models.CharField(max_length=32, unique=True, default=new_api_key_id)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices)
    # The key reads slk_<prefix>_<secret>; only the prefix (for lookup) and a digest are kept.
    prefix = models.CharField(max_length=16, unique=True)
    key_digest = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuditEvent(TenantOwnedModel):
    """Who did what to which object, when, from which request. Append-only: rows are never
    updated or deleted (a database trigger enforces it on PostgreSQL)."""

    public_id = models.CharField(max_length=32, unique=True, default=new_audit_event_id)
    # No foreign-key constraints: the trail outlives the users, keys and objects it names.
    organization = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor_user = models.ForeignKey(
        User, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        ApiKey, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+"
    )
    actor_label = models.CharField(max_length=255)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    # The target's name when the event was recorded, to show it by name (the object may since
    # have been renamed or deleted).
    target_name = models.CharField(max_length=200, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_time"),
            models.Index(fields=["organization", "action"], name="audit_org_action"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target_type}:{self.target_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only")


class IdempotencyRecord(TenantOwnedModel):
    """The first response to a POST with an Idempotency-Key, replayed for 24 hours."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # Who sent it, what they sent: the same key with another body or caller is refused. The
    # caller is a user's e-mail address (up to 254 characters) or an API key's label.
    principal = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="one_record_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"
