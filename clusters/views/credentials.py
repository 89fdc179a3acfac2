"""A cluster's credentials: creating one, rotating its password and deleting it; the page that
shows a password once."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from foundation.errors import DomainError
from tenants.access import OrganizationAccess
from tenants.views.base import organization_view
from tenants.views.feedback import notify

from .. import connection, services, snippets
from ..forms import CredentialCreateForm, add_domain_error, explain
from ..models import Credential
from .base import (
    CONFIRM,
    WRITE,
    back_to_form,
    confirm_page,
    live_cluster,
    live_credential,
    render_page,
    to_cluster,
)


def _password_page(
    request: HttpRequest,
    access: OrganizationAccess,
    credential: Credential,
    password: str,
    *,
    rotated: bool,
) -> HttpResponse:
    cluster = credential.cluster
    response = render_page(
        request,
        access,
        "clusters/credential_password.html",
        {
            "cluster": cluster,
            "credential": credential,
            "password": password,
            "sasl_jaas_config": connection.sasl_jaas_config(credential.username, password),
            "client_properties": (
                connection.client_properties(cluster, credential.username, password)
                if cluster.bootstrap_servers
                else ""
            ),
            # The one page that shows the password: the snippets carry it too.
            "snippets": snippets.snippets(cluster, credential.username, password),
            "rotated": rotated,
        },
    )
    # The password is in this response and nowhere else: never cached.
    add_never_cache_headers(response)
    return response


# Reloading the page that showed a password lands on the credentials: it is shown once.
@organization_view(scopes=WRITE, reload="clusters:detail#credentials")
def credential_create(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = live_cluster(access, cluster_id)
    form = CredentialCreateForm(request.POST, prefix="credential")
    if form.is_valid():
        try:
            credential, password, _operation = services.credential_create(
                cluster=cluster,
                actor=access.actor(request),
                name=form.cleaned_data["name"],
                **form.rates(),
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            return _password_page(request, access, credential, password, rotated=False)
    return back_to_form(request, access, cluster, form, key="credential_form")


@organization_view(scopes=CONFIRM)
def credential_rotate(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, credential_id: str
):
    cluster = live_cluster(access, cluster_id)
    credential = live_credential(cluster, credential_id)
    if request.method == "GET":
        return confirm_page(
            request,
            access,
            cluster,
            title=f"Rotate the password of {credential.name}?",
            explanation=(
                f"{credential.username} gets a new password, shown once on the next page. "
                "Clients still using the old one are refused once the cluster has applied "
                "the change."
            ),
            action="Rotate password",
            danger=False,
        )
    try:
        credential, password, _operation = services.credential_rotate(
            credential=credential, actor=access.actor(request)
        )
    except DomainError as error:
        notify(request, explain(error), place="credentials", error=True)
        return to_cluster(access, cluster, "credentials")
    return _password_page(request, access, credential, password, rotated=True)


@organization_view(scopes=CONFIRM)
def credential_delete(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, credential_id: str
):
    cluster = live_cluster(access, cluster_id)
    credential = live_credential(cluster, credential_id)
    if request.method == "GET":
        return confirm_page(
            request,
            access,
            cluster,
            title=f"Delete the credential {credential.name}?",
            explanation=(
                f"Clients logging in as {credential.username} are refused once the cluster "
                "has applied the change. This cannot be undone."
            ),
            action="Delete credential",
            danger=True,
        )
    try:
        services.credential_delete(credential=credential, actor=access.actor(request))
    except DomainError as error:
        notify(request, explain(error), place="credentials", error=True)
    else:
        notify(request, f"The credential {credential.name} was deleted.", place="credentials")
    return to_cluster(access, cluster, "credentials")
