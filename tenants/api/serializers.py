from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from foundation.api.fields import NameField

from ..models import ApiKey, AuditEvent, Invitation, Membership, Organization
from ..roles import Role


class OrganizationSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    role = serializers.CharField(read_only=True, help_text="Your role in this organization")
    closed_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When an owner closed the organization: null while it is open (a closed one "
        "is not found any more), set only in the answer to the request that closed it",
    )

    class Meta:
        model = Organization
        fields = ["id", "name", "role", "created_at", "closed_at"]
        read_only_fields = ["created_at"]


class OrganizationListSerializer(serializers.Serializer):
    """Not paginated: a caller belongs to few organizations (an API key to one)."""

    results = OrganizationSerializer(many=True)


class OrganizationInputSerializer(serializers.Serializer):
    name = NameField(max_length=100)


class OrganizationCloseQuerySerializer(serializers.Serializer):
    confirm = serializers.CharField(
        max_length=200,
        help_text="The organization's name, exactly as it is, to confirm closing it",
    )


class UserSummarySerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(source="get_full_name")


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    user = UserSummarySerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]
        read_only_fields = ["created_at"]


class MemberUpdateSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    state = serializers.CharField(source="effective_state", read_only=True)
    invited_by = serializers.EmailField(
        source="invited_by.email",
        read_only=True,
        default=None,
        allow_null=True,
        help_text="Who sent it; null when an API key or the system did",
    )

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "state", "invited_by", "created_at", "expires_at"]
        read_only_fields = ["created_at", "expires_at"]


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, trim_whitespace=False)  # as sent, or refused
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationResponseSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=128, trim_whitespace=False)


class ApiKeySerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    created_by = serializers.EmailField(
        source="created_by.email",
        read_only=True,
        default=None,
        allow_null=True,
        help_text=(
            "The person the key acts for: who made it, or for a key made with a key, the person "
            "that key acts for; null when that account no longer exists"
        ),
    )
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "role",
            "prefix",
            "active",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = NameField(max_length=100)
    role = serializers.ChoiceField(choices=Role.choices)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The whole key. Shown once: Sluice keeps only a digest. Null in an "
        "Idempotency-Key replay, which withholds it (Secret-Withheld header).",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditActorSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField(allow_null=True)
    label = serializers.CharField()


class AuditTargetSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField()


class AuditEventSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    actor = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = ["id", "actor", "action", "target", "request_id", "before", "after", "created_at"]
        read_only_fields = fields

    @extend_schema_field(AuditActorSerializer)
    def get_actor(self, event: AuditEvent) -> dict:
        if event.actor_api_key_id is not None:
            kind, ident = "api_key", event.actor_api_key.public_id
        elif event.actor_user_id is not None:
            kind, ident = "user", event.actor_user.email if event.actor_user else None
        else:
            kind, ident = "system", None
        return {"type": kind, "id": ident, "label": event.actor_label}

    @extend_schema_field(AuditTargetSerializer)
    def get_target(self, event: AuditEvent) -> dict:
        return {"type": event.target_type, "id": event.target_id}
