from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from foundation.api.secrets import SHOWN_ONCE_DESCRIPTION, ShownOnce
from foundation.api.validation import validated_data
from foundation.errors import NotFound

from .. import selectors, services
from ..models import ApiKey, AuditEvent, Invitation, Membership
from ..roles import read_write_scope_map
from ..scoping import tenant_scope
from . import serializers as s
from .base import CallerRateThrottle, OrganizationScopedView, OrganizationScopedViewSet
from .filters import AuditEventFilter

# Account level: the caller's organizations, and answering invitations -----------------------


class AccountView(APIView):
    """Account-level endpoints: no organization in the URL, rate-limited per caller."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [CallerRateThrottle]


class OrganizationListView(AccountView):
    """The organizations you belong to; create one (you become its owner)."""

    @extend_schema(operation_id="v1_orgs_list", responses=s.OrganizationListSerializer)
    def get(self, request):
        if isinstance(request.auth, ApiKey):
            organization = request.auth.organization
            organization.role = selectors.api_key_role(api_key=request.auth)
            organizations = [organization]
        else:
            organizations = selectors.organizations_for_user(user=request.user)
        return Response({"results": s.OrganizationSerializer(organizations, many=True).data})

    @extend_schema(request=s.OrganizationInputSerializer, responses={201: s.OrganizationSerializer})
    def post(self, request):
        if isinstance(request.auth, ApiKey):
            raise PermissionDenied("API keys belong to one organization and cannot create one")
        data = validated_data(s.OrganizationInputSerializer, request.data)
        organization = services.organization_create(name=data["name"], owner=request.user)
        organization.role = "owner"
        return Response(s.OrganizationSerializer(organization).data, status=201)


class _InvitationResponseView(AccountView):
    def _token(self, request) -> str:
        if isinstance(request.auth, ApiKey):
            raise PermissionDenied("Invitations are answered by a person, not an API key")
        return validated_data(s.InvitationResponseSerializer, request.data)["token"]


class InvitationAcceptView(_InvitationResponseView):
    """Accept an invitation with the token from its e-mail: you become a member."""

    @extend_schema(request=s.InvitationResponseSerializer, responses={201: s.MemberSerializer})
    def post(self, request):
        membership = services.invitation_accept(token=self._token(request), user=request.user)
        with tenant_scope(membership.organization):
            body = s.MemberSerializer(membership).data
        body["organization"] = membership.organization.public_id
        return Response(body, status=201)


class InvitationDeclineView(_InvitationResponseView):
    """Decline an invitation with the token from its e-mail."""

    @extend_schema(request=s.InvitationResponseSerializer, responses={204: None})
    def post(self, request):
        services.invitation_decline(token=self._token(request), user=request.user)
        return Response(status=204)


# Organization level -------------------------------------------------------------------------


class OrganizationDetailView(OrganizationScopedView):
    """The organization in the URL; rename it; close it."""

    # Closing is the owners' alone.
    scope_map = {**read_write_scope_map("org"), "DELETE": "org:owner"}
    serializer_class = s.OrganizationSerializer

    def get(self, request, org):
        return Response(self._body())

    @extend_schema(request=s.OrganizationInputSerializer, responses=s.OrganizationSerializer)
    def patch(self, request, org):
        data = validated_data(s.OrganizationInputSerializer, request.data)
        services.organization_update(
            organization=self.organization, actor=self.actor, name=data["name"]
        )
        return Response(self._body())

    @extend_schema(
        parameters=[s.OrganizationCloseQuerySerializer],
        responses={200: s.OrganizationSerializer},
        description="Close the organization for good (owners only), confirmed by its name in "
        "`confirm`. It takes effect at once: from the answer on the organization is not found "
        "(404) for every member and its API keys are revoked (401), its pending invitations "
        "too; nothing is deleted. Its final invoice, for the month up to now, is made once "
        "metering has caught up, and is sent as every invoice is. Refused with a 409 "
        "`organization_has_clusters` problem (`clusters`: how many) while any cluster is not "
        "deleted, one whose deletion is still running included; a `confirm` other than the "
        "organization's name is a 400 `confirmation_mismatch` problem (`field`: `confirm`). "
        "The answer is the organization as it was closed, with `closed_at`.",
    )
    def delete(self, request, org):
        query = validated_data(s.OrganizationCloseQuerySerializer, request.query_params)
        self.organization = services.organization_close(
            organization=self.organization,
            actor=self.actor,
            actor_role=self.role,
            confirm_name=query["confirm"],
        )
        return Response(self._body())

    def _body(self) -> dict:
        self.organization.role = self.role
        return s.OrganizationSerializer(self.organization).data


class MyMembershipView(OrganizationScopedView):
    """Your own membership: see your role, or leave the organization."""

    scope_map = {"GET": "org:read", "DELETE": "org:read"}
    serializer_class = s.MemberSerializer

    def get(self, request, org):
        return Response(s.MemberSerializer(self._mine()).data)

    @extend_schema(responses={204: None})
    def delete(self, request, org):
        services.membership_remove(membership=self._mine(), actor=self.actor, actor_role=self.role)
        return Response(status=204)

    def _mine(self) -> Membership:
        membership = None
        if not isinstance(self.request.auth, ApiKey):
            membership = selectors.membership_of(
                user=self.request.user, organization=self.organization
            )
        if membership is None:
            raise NotFound("API keys are not members: there is no membership to show or leave")
        return membership


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """The organization's members and their roles."""

    model = Membership
    scope_map = read_write_scope_map("members")
    serializer_class = s.MemberSerializer
    ordering = ("created_at", "id")

    def scope_queryset(self, queryset):
        return queryset.select_related("user")

    @extend_schema(request=s.MemberUpdateSerializer, responses=s.MemberSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()  # a foreign id is 404 before the body is read
        data = validated_data(s.MemberUpdateSerializer, request.data)
        membership = services.membership_change_role(
            membership=membership, role=data["role"], actor=self.actor, actor_role=self.role
        )
        return Response(s.MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.membership_remove(
            membership=self.get_object(), actor=self.actor, actor_role=self.role
        )
        return Response(status=204)


@extend_schema_view(
    create=extend_schema(
        request=s.InvitationCreateSerializer, responses={201: s.InvitationSerializer}
    ),
    destroy=extend_schema(description="Revoke a pending invitation.", responses={204: None}),
)
class InvitationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """Invitations to join the organization, mailed to the invitee."""

    model = Invitation
    scope_map = read_write_scope_map("invitations")
    serializer_class = s.InvitationSerializer

    def scope_queryset(self, queryset):
        return queryset.select_related("invited_by")

    def create(self, request, org):
        data = validated_data(s.InvitationCreateSerializer, request.data)
        invitation, _token = services.invitation_create(
            organization=self.organization,
            email=data["email"],
            role=data["role"],
            actor=self.actor,
            actor_role=self.role,
            accept_url_base=request.build_absolute_uri("/invitations/"),
        )
        return Response(s.InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        services.invitation_revoke(invitation=self.get_object(), actor=self.actor)
        return Response(status=204)


@extend_schema_view(
    create=extend_schema(
        request=s.ApiKeyCreateSerializer,
        responses={201: s.ApiKeyCreatedSerializer},
        description=f"A new key, bound to the organization and a role. {SHOWN_ONCE_DESCRIPTION}",
    ),
    destroy=extend_schema(
        description="Revoke the key: it stops working at once and stays listed.",
        responses={204: OpenApiResponse(description="Revoked")},
    ),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """API keys: bearer credentials bound to the organization and a role.

    A key acts for the member who created it (a key created with a key: for the member behind
    that key), with the lesser of its own role and that member's current role, and stops
    working (401) when the member leaves or is removed. A key can create keys up to the role it
    acts with now.
    """

    model = ApiKey
    scope_map = read_write_scope_map("apikeys")
    serializer_class = s.ApiKeySerializer

    def scope_queryset(self, queryset):
        return queryset.select_related("created_by")

    def create(self, request, org):
        data = validated_data(s.ApiKeyCreateSerializer, request.data)
        api_key, key = services.api_key_create(
            organization=self.organization,
            name=data["name"],
            role=data["role"],
            expires_at=data.get("expires_at"),
            actor=self.actor,
            actor_role=self.role,
        )
        api_key.key = key
        return ShownOnce(
            s.ApiKeyCreatedSerializer(api_key).data,
            secret_fields=("key",),
            status=status.HTTP_201_CREATED,
        )

    def destroy(self, request, *args, **kwargs):
        services.api_key_revoke(api_key=self.get_object(), actor=self.actor, actor_role=self.role)
        return Response(status=204)


class AuditEventViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet
):
    """The organization's audit trail, newest first. Filter by actor, action, target, time."""

    model = AuditEvent
    scope_map = read_write_scope_map("audit")
    serializer_class = s.AuditEventSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter

    def scope_queryset(self, queryset):
        return queryset.select_related("actor_user", "actor_api_key")
