"""The self-service web UI of the tenancy layer, driven as a browser would: forms posted, mails
read from the outbox, pages read for what a person sees."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tenants import services, tokens
from tenants.audit import Actor
from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.support.feedback import refused_page

pytestmark = pytest.mark.django_db

PASSWORD = "tidal-basin-lantern-42"
INVITATION_LINK = re.compile(r"http://testserver(/invitations/[A-Za-z0-9_-]+/)")


def make_user(email: str) -> User:
    return User.objects.create_user(email, PASSWORD)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_org(owner: User, name: str = "Acme") -> Organization:
    return services.organization_create(name=name, owner=owner)


def add_member(organization: Organization, user: User, role: str) -> Membership:
    with tenant_scope(organization):
        return Membership.objects.create(organization=organization, user=user, role=role)


def org_url(name: str, organization: Organization, **kwargs) -> str:
    return reverse(f"tenants:{name}", kwargs={"org": organization.public_id, **kwargs})


def html(response) -> str:
    return response.content.decode()


def invite(client: Client, organization: Organization, email: str, role: str = Role.DEVELOPER):
    return client.post(org_url("invitations", organization), {"email": email, "role": role})


@pytest.fixture
def invite_and_mail(owner_client, org, django_capture_on_commit_callbacks):
    """The owner invites someone; the mail, sent once the transaction commits, goes out."""

    def send(email: str, role: str = Role.DEVELOPER):
        with django_capture_on_commit_callbacks(execute=True):
            response = invite(owner_client, org, email, role)
        assert response.status_code == 302, response.content.decode()
        return response

    return send


def mailed_invitation_path(email: str) -> str:
    sent = [m for m in mail.outbox if email in m.to]
    assert sent, f"no mail to {email}"
    match = INVITATION_LINK.search(sent[-1].body)
    assert match, sent[-1].body
    return match.group(1)


@pytest.fixture
def owner():
    return make_user("owner@acme.example")


@pytest.fixture
def org(owner):
    return make_org(owner)


@pytest.fixture
def owner_client(owner, org):
    return client_for(owner)


# Accounts -----------------------------------------------------------------------------------


SIGNUP_LINK = re.compile(r"http://testserver(/accounts/signup/[A-Za-z0-9_:.-]+/)")


@pytest.fixture
def sign_up(client, django_capture_on_commit_callbacks):
    """Post the sign-up form; the mail, sent once the transaction commits, goes out."""

    def post(email: str, *, browser: Client | None = None, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            return (browser or client).post("/accounts/signup/", {"email": email, **fields})

    return post


def mailed_signup_path(email: str) -> str:
    sent = [m for m in mail.outbox if m.to == [email]]
    assert sent, f"no mail to {email}"
    match = SIGNUP_LINK.search(sent[-1].body)
    assert match, sent[-1].body
    return match.group(1)


def test_signup_mails_a_link_that_creates_the_account_and_logs_in(client, sign_up):
    login_page = html(client.get("/accounts/login/"))
    assert reverse("tenants:signup") in login_page

    response = sign_up("New.Person@Example.com", first_name="Ada", last_name="Byron")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/signup/sent/"
    sent = client.get(response["Location"])
    assert "Check your e-mail" in html(sent)
    assert "new.person@example.com" in html(sent)
    # Reloading the answer is a GET: no second mail.
    assert "Check your e-mail" in html(client.get(response["Location"]))
    assert len([m for m in mail.outbox if m.to == ["new.person@example.com"]]) == 1
    assert not User.objects.filter(email="new.person@example.com").exists()
    path = mailed_signup_path("new.person@example.com")

    page = client.get(path)
    assert page.status_code == 200
    assert "new.person@example.com" in html(page)
    response = client.post(path, {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(email="new.person@example.com")
    assert (user.first_name, user.last_name) == ("Ada", "Byron")
    assert user.check_password(PASSWORD)

    home = client.get("/")
    assert home.status_code == 200
    assert "new.person@example.com" in html(home)
    assert "Create an organization" in html(home)

    # The link creates one account, once.
    again = Client().post(path, {"password1": PASSWORD, "password2": PASSWORD})
    assert "An account with this e-mail address already exists" in html(again)
    assert User.objects.filter(email="new.person@example.com").count() == 1


def test_signup_runs_the_password_validators_inline(client, sign_up):
    sign_up("weak@example.com")
    path = mailed_signup_path("weak@example.com")
    response = client.post(path, {"password1": "password", "password2": "password"})
    assert response.status_code == 200
    body = html(response)
    assert "This password is too common." in body
    assert 'class="field has-error"' in body

    response = client.post(path, {"password1": PASSWORD, "password2": PASSWORD + "x"})
    assert "The two password fields didn\u2019t match." in html(response)
    assert not User.objects.filter(email="weak@example.com").exists()


def test_signup_answers_a_taken_address_as_a_free_one_and_mails_its_owner(client, owner, sign_up):
    other = Client()
    taken = sign_up("OWNER@acme.example")
    free = sign_up("nobody@acme.example", browser=other)
    assert taken.status_code == free.status_code == 302
    assert taken["Location"] == free["Location"]
    taken, free = client.get(taken["Location"]), other.get(free["Location"])
    assert html(taken).replace("owner@", "nobody@") == html(free)
    assert "_auth_user_id" not in client.session
    assert User.objects.filter(email__iexact="owner@acme.example").count() == 1

    to_owner = [m for m in mail.outbox if m.to == ["owner@acme.example"]]
    assert len(to_owner) == 1
    assert "already has an account" in to_owner[0].body
    assert "http://testserver/accounts/login/" in to_owner[0].body
    assert "http://testserver/accounts/password_reset/" in to_owner[0].body
    assert not SIGNUP_LINK.search(to_owner[0].body)
    mailed_signup_path("nobody@acme.example")  # the free address gets the link


def test_a_forged_signup_link_is_refused(client):
    response = client.get("/accounts/signup/eyJlbWFpbCI6ImFAYi5jIn0:1abc:forged/")
    assert response.status_code == 404
    assert "not a sign-up link of ours" in html(response)
    response = client.post(
        "/accounts/signup/eyJlbWFpbCI6ImFAYi5jIn0:1abc:forged/",
        {"password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 404
    assert not User.objects.filter(email="a@b.c").exists()


def test_signup_returns_to_a_safe_next_only(sign_up):
    sign_up("a@example.com", next="/invitations/abc/")
    browser = Client()
    data = {"password1": PASSWORD, "password2": PASSWORD}
    response = browser.post(mailed_signup_path("a@example.com"), data)
    assert response["Location"] == "/invitations/abc/"

    sign_up("b@example.com", browser=Client(), next="https://evil.example/")
    response = Client().post(mailed_signup_path("b@example.com"), data)
    assert response["Location"] == "/"


def test_login_with_the_right_password_reaches_home(client, owner, org):
    response = client.post(
        "/accounts/login/", {"username": "owner@acme.example", "password": PASSWORD}, follow=True
    )
    assert response.status_code == 200
    body = html(response)
    assert "Acme" in body
    assert org_url("members", org) in body  # each organization links to its page
    assert reverse("password_change") in body


def test_password_reset_by_mail(client, owner):
    page = client.get(reverse("password_reset"))
    assert "Reset your password" in html(page)
    response = client.post(reverse("password_reset"), {"email": "owner@acme.example"})
    assert response.status_code == 302
    assert "Check your e-mail" in html(client.get(response["Location"]))

    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in html(form_page)
    new_password = "quiet-harbour-engine-77"
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
        follow=True,
    )
    assert "Your password is set" in html(done)
    owner.refresh_from_db()
    assert owner.check_password(new_password)
    assert "This link does not work" in html(client.get(link, follow=True))  # used once


def test_password_change(owner_client, owner):
    page = owner_client.get(reverse("password_change"))
    assert "Change your password" in html(page)
    wrong = owner_client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "x", "new_password2": "x"},
    )
    assert "Your old password was entered incorrectly" in html(wrong)
    new_password = "copper-kettle-meadow-19"
    response = owner_client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
        follow=True,
    )
    assert "Password changed" in html(response)
    owner.refresh_from_db()
    assert owner.check_password(new_password)


# Organizations ------------------------------------------------------------------------------


def test_create_organization_from_home(client, owner):
    client.force_login(owner)
    response = client.post("/", {"name": "  Globex  "})
    organization = Organization.objects.get(name="Globex")
    assert response.status_code == 302
    # It opens on its first tab, the clusters, where the first steps are.
    assert response["Location"] == reverse("clusters:list", args=[organization.public_id])
    with tenant_scope(organization):
        assert Membership.objects.get(user=owner).role == Role.OWNER

    page = client.get(response["Location"])
    body = html(page)
    assert "Globex is ready: you are its owner." in body
    assert organization.public_id in body
    assert "owner@acme.example" in html(client.get(org_url("members", organization)))


def test_create_organization_without_a_name_is_a_form_error(client, owner):
    client.force_login(owner)
    response = client.post("/", {"name": "   "})
    assert "This field is required." in refused_page(client, response, "/", "create")
    assert not Organization.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, org):
    response = client.get(org_url("members", org))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/orgs/")


TAB = re.compile(r'<a href="(/orgs/[^"]+)"( class="active" aria-current="page")?>([^<]+)</a>')


def tabs(body: str) -> list[str]:
    """The organization tabs, in order, the current one starred."""
    nav = body.split('<nav class="tabs"', 1)[1].split("</nav>", 1)[0]
    return [label + ("*" if current else "") for _url, current, label in TAB.findall(nav)]


def test_the_tabs_of_each_app_show_in_order_to_whoever_may_open_them(owner_client, org):
    # The apps register their tabs; the clusters tab comes first whatever the app order.
    assert tabs(html(owner_client.get(org_url("audit", org)))) == [
        "Clusters",
        "Members",
        "Invitations",
        "API keys",
        "Audit log*",
        "Billing",
        "Settings",  # the owners' only
    ]
    admin = make_user("admin@acme.example")
    add_member(org, admin, Role.ADMIN)
    assert "Settings" not in tabs(html(client_for(admin).get(org_url("members", org))))
    viewer = make_user("viewer@acme.example")
    add_member(org, viewer, Role.VIEWER)
    assert tabs(html(client_for(viewer).get(org_url("members", org)))) == ["Clusters", "Members*"]
    billing = make_user("billing@acme.example")
    add_member(org, billing, Role.BILLING)
    assert tabs(html(client_for(billing).get(org_url("members", org)))) == ["Members*", "Billing"]


# Invitations --------------------------------------------------------------------------------


def test_invitation_mail_link_accepted_by_the_invitee(owner_client, org, invite_and_mail):
    invite_and_mail("New.Hire@Example.com", Role.DEVELOPER)
    with tenant_scope(org):
        invitation = Invitation.objects.get()
    assert (invitation.email, invitation.state) == ("new.hire@example.com", "pending")
    assert "new.hire@example.com" in html(owner_client.get(org_url("invitations", org)))

    path = mailed_invitation_path("new.hire@example.com")
    invitee_client = Client()
    response = invitee_client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"

    invitee = make_user("new.hire@example.com")
    response = invitee_client.post(
        "/accounts/login/",
        {"username": "new.hire@example.com", "password": PASSWORD, "next": path},
    )
    assert response["Location"] == path
    page = html(invitee_client.get(path))
    assert "Join Acme" in page
    assert "Developer" in page

    response = invitee_client.post(path, {"answer": "accept"}, follow=True)
    assert response.redirect_chain[-1][0] == org_url("members", org)
    assert "You joined Acme as developer." in html(response)
    with tenant_scope(org):
        assert Membership.objects.get(user=invitee).role == Role.DEVELOPER
        invitation.refresh_from_db()
    assert invitation.state == Invitation.State.ACCEPTED


def test_invitation_link_leads_a_newcomer_to_sign_up(
    owner_client, org, client, invite_and_mail, sign_up
):
    invite_and_mail("fresh@example.com")
    path = mailed_invitation_path("fresh@example.com")
    login_page = html(client.get(path, follow=True))
    assert f"/accounts/signup/?next={path}" in login_page

    sign_up("fresh@example.com", next=path)
    response = client.post(
        mailed_signup_path("fresh@example.com"),
        {"password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )
    assert "Join Acme" in html(response)


def test_invitation_declined(owner_client, org, invite_and_mail):
    invite_and_mail("maybe@example.com")
    path = mailed_invitation_path("maybe@example.com")
    invitee = make_user("maybe@example.com")
    response = client_for(invitee).post(path, {"answer": "decline"}, follow=True)
    assert "You declined the invitation to Acme." in html(response)
    with tenant_scope(org):
        assert Invitation.objects.get().state == Invitation.State.DECLINED
        assert not Membership.objects.filter(user=invitee).exists()


def test_invitation_opened_by_the_wrong_account_is_refused_clearly(
    owner_client, org, invite_and_mail
):
    invite_and_mail("right@example.com")
    path = mailed_invitation_path("right@example.com")
    intruder_client = client_for(make_user("wrong@example.com"))

    page = intruder_client.get(path)
    assert page.status_code == 404
    assert "No such invitation for your account" in html(page)
    assert "Acme" not in html(page)
    response = intruder_client.post(path, {"answer": "accept"})
    assert response.status_code == 404
    with tenant_scope(org):
        assert Membership.objects.count() == 1
        assert Invitation.objects.get().state == Invitation.State.PENDING


def test_invitation_revoked_then_refused(owner_client, org, invite_and_mail):
    invite_and_mail("gone@example.com")
    path = mailed_invitation_path("gone@example.com")
    with tenant_scope(org):
        invitation = Invitation.objects.get()
    response = owner_client.post(
        org_url("invitation-revoke", org, invitation_id=invitation.public_id), follow=True
    )
    assert "was revoked" in html(response)
    invitation.refresh_from_db()
    assert invitation.state == Invitation.State.REVOKED

    invitee_client = client_for(make_user("gone@example.com"))
    page = invitee_client.get(path)
    assert page.status_code == 409
    assert "The invitation is revoked" in html(page)
    invitee_client.post(path, {"answer": "accept"})
    with tenant_scope(org):
        assert Membership.objects.count() == 1

    again = owner_client.post(
        org_url("invitation-revoke", org, invitation_id=invitation.public_id), follow=True
    )
    assert "The invitation is revoked, not pending" in html(again)


def test_inviting_a_member_again_shows_the_service_error_on_the_field(
    owner_client, org, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(owner_client, org, "owner@acme.example")
    page = refused_page(owner_client, response, org_url("invitations", org), "invite")
    email_field = page[page.index('for="id_email"') :][:1500]
    assert "owner@acme.example is already a member" in email_field
    with tenant_scope(org):
        assert not Invitation.objects.exists()
    assert not mail.outbox


# API keys -----------------------------------------------------------------------------------


def test_api_key_is_shown_once_and_only_its_digest_is_stored(owner_client, org):
    response = owner_client.post(
        org_url("api-keys", org), {"name": "CI deploys", "role": Role.DEVELOPER}
    )
    assert response.status_code == 200
    body = html(response)
    key = re.search(r"slk_[A-Za-z0-9]+_[A-Za-z0-9]+", body).group(0)
    assert "it will not be shown again" in body
    assert "no-store" in response["Cache-Control"]

    with tenant_scope(org):
        api_key = ApiKey.objects.get()
    assert api_key.name == "CI deploys"
    assert api_key.role == Role.DEVELOPER
    assert api_key.expires_at is None
    assert api_key.key_digest == tokens.digest(key)
    assert key.split("_")[2] not in {api_key.prefix, api_key.key_digest, api_key.name}

    listing = html(owner_client.get(org_url("api-keys", org)))
    assert f"slk_{api_key.prefix}_" in listing
    assert key not in listing


def test_api_key_with_expiry_then_revoked(owner_client, org):
    owner_client.post(
        org_url("api-keys", org),
        {"name": "temporary", "role": Role.VIEWER, "expires_in_days": "30"},
    )
    with tenant_scope(org):
        api_key = ApiKey.objects.get()
    assert api_key.expires_at is not None
    assert 29 <= (api_key.expires_at - api_key.created_at).days <= 30

    response = owner_client.post(
        org_url("api-key-revoke", org, key_id=api_key.public_id), follow=True
    )
    assert "was revoked" in html(response)
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert "Revoked" in html(response)


def test_developer_cannot_create_an_owner_key(org):
    developer = make_user("dev@acme.example")
    add_member(org, developer, Role.DEVELOPER)
    client = client_for(developer)
    page = html(client.get(org_url("api-keys", org)))
    assert 'value="owner"' not in page
    response = client.post(org_url("api-keys", org), {"name": "sneaky", "role": Role.OWNER})
    assert "Select a valid choice" in refused_page(
        client, response, org_url("api-keys", org), "create"
    )
    with tenant_scope(org):
        assert not ApiKey.objects.exists()


# Members and roles --------------------------------------------------------------------------


def test_viewer_sees_no_invitations_and_cannot_invite(org, django_capture_on_commit_callbacks):
    viewer = make_user("viewer@acme.example")
    add_member(org, viewer, Role.VIEWER)
    client = client_for(viewer)

    members_page = html(client.get(org_url("members", org)))
    assert "owner@acme.example" in members_page
    assert org_url("invitations", org) not in members_page
    assert org_url("api-keys", org) not in members_page
    assert org_url("audit", org) not in members_page
    assert "Remove</button>" not in members_page
    assert 'name="role"' not in members_page

    assert client.get(org_url("invitations", org)).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client, org, "friend@example.com", Role.VIEWER)
    assert response.status_code == 403
    assert "invitations:write" in html(response)
    with tenant_scope(org):
        assert not Invitation.objects.exists()
    assert not mail.outbox

    owner_membership = Membership.unscoped_all_tenants.get(organization=org, role=Role.OWNER)
    response = client.post(
        org_url("member-remove", org, member_id=owner_membership.public_id),
    )
    assert response.status_code == 403
    assert Membership.unscoped_all_tenants.filter(pk=owner_membership.pk).exists()


def test_owner_changes_a_role_and_removes_a_member(owner_client, org):
    member = make_user("member@acme.example")
    membership = add_member(org, member, Role.DEVELOPER)
    page = html(owner_client.get(org_url("members", org)))
    assert org_url("member-role", org, member_id=membership.public_id) in page

    response = owner_client.post(
        org_url("member-role", org, member_id=membership.public_id),
        {"role": Role.ADMIN},
        follow=True,
    )
    assert "member@acme.example is now admin." in html(response)
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN

    response = owner_client.post(
        org_url("member-remove", org, member_id=membership.public_id), follow=True
    )
    assert "member@acme.example was removed." in html(response)
    assert not Membership.unscoped_all_tenants.filter(pk=membership.pk).exists()


def test_admin_cannot_demote_an_owner_and_is_told_why(owner, org):
    admin = make_user("admin@acme.example")
    add_member(org, admin, Role.ADMIN)
    owner_membership = Membership.unscoped_all_tenants.get(user=owner)
    client = client_for(admin)

    page = html(client.get(org_url("members", org)))
    assert org_url("member-role", org, member_id=owner_membership.public_id) not in page

    response = client.post(
        org_url("member-role", org, member_id=owner_membership.public_id),
        {"role": Role.VIEWER},
        follow=True,
    )
    assert "An admin cannot change an owner into a viewer" in html(response)
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


def test_last_owner_cannot_leave_and_sees_why(owner_client, owner, org):
    refused = owner_client.post(org_url("leave", org))
    body = refused_page(owner_client, refused, org_url("members", org), "leave")
    leave_form = body[
        body.index(org_url("leave", org)) : body.index("</form>", body.index(org_url("leave", org)))
    ]
    assert "last owner: make someone else an owner first" in leave_form
    assert Membership.unscoped_all_tenants.filter(user=owner, organization=org).exists()


def test_member_leaves(org):
    developer = make_user("dev@acme.example")
    add_member(org, developer, Role.DEVELOPER)
    client = client_for(developer)
    response = client.post(org_url("leave", org), follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "You left Acme." in html(response)
    assert not Membership.unscoped_all_tenants.filter(user=developer).exists()
    assert client.get(org_url("members", org)).status_code == 404
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="member.left").count() == 1


# Audit log ----------------------------------------------------------------------------------


def test_audit_log_newest_first_filtered_and_paginated(owner_client, owner, org):
    with tenant_scope(org):
        for n in range(30):
            services.api_key_create(
                organization=org,
                name=f"key {n:02d}",
                role=Role.VIEWER,
                actor=Actor(user=owner),
                actor_role=Role.OWNER,
            )
    first = html(owner_client.get(org_url("audit", org)))
    assert first.count("<code>api_key.created</code>") == 25
    assert "Page 1 of 2" in first
    assert first.index("key 29") < first.index("key 28")  # newest first

    second = html(owner_client.get(org_url("audit", org), {"page": 2}))
    assert "organization.created" in second
    assert "key 00" in second

    only_created = html(owner_client.get(org_url("audit", org), {"action": "organization.created"}))
    assert "<code>organization.created</code>" in only_created
    assert "<code>api_key.created</code>" not in only_created

    by_someone_else = html(owner_client.get(org_url("audit", org), {"actor": "x@y.example"}))
    assert "No events match." in by_someone_else
    by_owner = html(
        owner_client.get(org_url("audit", org), {"actor": "owner@acme.example", "page": 2})
    )
    assert "organization.created" in by_owner


# Tenant isolation ---------------------------------------------------------------------------
# Every organization page's 404 to outsiders is checked by the web walk of the isolation tests
# (tests/tenants/test_isolation.py), which reads the URLconf.


def test_home_lists_only_the_users_own_organizations(owner, org):
    outsider = make_user("outsider@globex.example")
    make_org(outsider, name="Globex")
    body = html(client_for(outsider).get("/"))
    assert "Globex" in body
    assert "Acme" not in body
    assert org.public_id not in body
