"""An organization's members and invitations pages: roles, removal, leaving, inviting and
revoking invitations."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from foundation.errors import DomainError

from .. import selectors, services
from ..access import OrganizationAccess
from ..forms import InvitationForm, MemberRoleForm, add_domain_error, grantable_role_choices
from ..models import Invitation, Membership
from ..roles import Role, can_grant
from .base import organization_view, render_section
from .feedback import back_with_refused, notify, refused_form


@organization_view(scopes={"GET": "members:read"})
def members(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    may_manage = access.can("members:write")
    rows = [
        {
            "membership": membership,
            "is_me": membership.pk == access.membership.pk,
            # Only a hint for what to show: the services decide.
            "manageable": may_manage
            and membership.pk != access.membership.pk
            and can_grant(access.role, membership.role),
        }
        for membership in selectors.members(organization=access.organization)
    ]
    context = {
        "rows": rows,
        "role_choices": grantable_role_choices(access.role),
    }
    return render_section(request, access, "members", context)


def _to_members(access: OrganizationAccess, place: str) -> HttpResponse:
    """Back to the members page, scrolled to the card whose form made the change."""
    return redirect(reverse("tenants:members", args=[access.organization.public_id]) + f"#{place}")


@organization_view(scopes={"POST": "members:write"}, reload="tenants:members")
def member_change_role(
    request: HttpRequest, access: OrganizationAccess, member_id: str
) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), public_id=member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        notify(request, "Choose one of the listed roles.", place="members", error=True)
        return _to_members(access, "members")
    try:
        services.membership_change_role(
            membership=membership,
            role=form.cleaned_data["role"],
            actor=access.actor(request),
            actor_role=access.role,
        )
    except DomainError as error:
        notify(request, error.detail, place="members", error=True)
    else:
        role = Role(form.cleaned_data["role"]).label
        notify(request, f"{membership.user.email} is now {role.lower()}.", place="members")
    return _to_members(access, "members")


@organization_view(scopes={"POST": "members:write"}, reload="tenants:members")
def member_remove(request: HttpRequest, access: OrganizationAccess, member_id: str) -> HttpResponse:
    membership = get_object_or_404(Membership.objects.select_related("user"), public_id=member_id)
    try:
        services.membership_remove(
            membership=membership, actor=access.actor(request), actor_role=access.role
        )
    except DomainError as error:
        notify(request, error.detail, place="members", error=True)
        return _to_members(access, "members")
    if membership.pk == access.membership.pk:
        messages.success(request, f"You left {access.organization.name}.")
        return redirect("home")
    notify(request, f"{membership.user.email} was removed.", place="members")
    return _to_members(access, "members")


# Leaving needs no more than membership: any member may leave (the last owner excepted).
@organization_view(scopes={"POST": "org:read"}, reload="tenants:members")
def leave(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    try:
        services.membership_remove(
            membership=access.membership, actor=access.actor(request), actor_role=access.role
        )
    except DomainError as error:
        notify(request, error.detail, place="leave", error=True)
        return _to_members(access, "leave")
    messages.success(request, f"You left {access.organization.name}.")
    return redirect("home")


# Invitations --------------------------------------------------------------------------------


@organization_view(scopes={"GET": "invitations:read", "POST": "invitations:write"})
def invitations(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    def invitation_form(data) -> InvitationForm:
        return InvitationForm(data, granter_role=access.role)

    if request.method == "POST":
        form = invitation_form(request.POST)
        if form.is_valid():
            try:
                invitation, _token = services.invitation_create(
                    organization=access.organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    actor=access.actor(request),
                    actor_role=access.role,
                    accept_url_base=request.build_absolute_uri("/invitations/"),
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                notify(request, f"Invitation sent to {invitation.email}.", place="invitations")
                return _to_invitations(access, "invitations")
        return back_with_refused(request, form, request.path, place="invite", key="invitation")
    form = refused_form(request, "invitation", invitation_form) or invitation_form(None)
    return render_section(
        request,
        access,
        "invitations",
        {"form": form, "invitations": selectors.invitations(organization=access.organization)},
    )


def _to_invitations(access: OrganizationAccess, place: str) -> HttpResponse:
    url = reverse("tenants:invitations", args=[access.organization.public_id])
    return redirect(f"{url}#{place}")


@organization_view(scopes={"POST": "invitations:write"}, reload="tenants:invitations")
def invitation_revoke(
    request: HttpRequest, access: OrganizationAccess, invitation_id: str
) -> HttpResponse:
    invitation = get_object_or_404(Invitation.objects, public_id=invitation_id)
    try:
        services.invitation_revoke(invitation=invitation, actor=access.actor(request))
    except DomainError as error:
        notify(request, error.detail, place="invitations", error=True)
    else:
        notify(request, f"The invitation to {invitation.email} was revoked.", place="invitations")
    return _to_invitations(access, "invitations")
