"""Tasks that work for one organization run inside its tenant scope, in a real worker."""

import pytest

from tenants.models import Invitation
from tenants.scoping import TenantScopeMissing, current_tenant_or_none
from tenants.tasks import send_invitation_email
from tests.factories import UserFactory, make_org
from tests.support.clients import session_client
from tests.support.services import wait_for


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_mails_the_invitation_inside_the_tenant_scope(start_celery_worker, tmp_path):
    start_celery_worker(
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        DJANGO_EMAIL_FILE_PATH=str(tmp_path),
    )
    owner = UserFactory()
    organization = make_org(owner=owner, name="Mailers")
    response = session_client(owner).post(
        f"/api/v1/orgs/{organization.public_id}/invitations/",
        {"email": "newcomer@example.com", "role": "developer"},
        format="json",
    )
    assert response.status_code == 201

    wait_for(lambda: any(tmp_path.iterdir()), timeout=30, what="the invitation e-mail")
    message = next(tmp_path.iterdir()).read_text()
    assert "To: newcomer@example.com" in message
    assert "invites you to join Mailers on Sluice as Developer" in message
    assert "http://testserver/invitations/" in message


@pytest.mark.django_db
def test_a_tenant_task_needs_its_organization():
    with pytest.raises(TypeError, match="organization"):
        send_invitation_email(invitation="inv_x", inviter="x", accept_url="http://x/")
    assert current_tenant_or_none() is None


@pytest.mark.django_db
def test_a_tenant_task_sees_only_its_tenant():
    """Called for another organization, the task cannot find this one's invitation."""
    owner = UserFactory()
    victim, other = make_org(owner=owner, name="Victim"), make_org(owner=owner, name="Other")
    from django.core import mail

    session_client(owner).post(
        f"/api/v1/orgs/{victim.public_id}/invitations/",
        {"email": "x@example.com", "role": "viewer"},
        format="json",
    )
    mail.outbox.clear()
    invitation = Invitation.unscoped_all_tenants.get(organization=victim)
    send_invitation_email(
        organization=other.public_id,
        invitation=invitation.public_id,
        inviter="someone",
        accept_url="http://testserver/invitations/t/",
    )
    assert mail.outbox == []
    send_invitation_email(  # the same call for the right organization does send it
        organization=victim.public_id,
        invitation=invitation.public_id,
        inviter="someone",
        accept_url="http://testserver/invitations/t/",
    )
    assert [m.to for m in mail.outbox] == [["x@example.com"]]
    with pytest.raises(TenantScopeMissing):
        Invitation.objects.count()  # and the scope ended with the task
