"""The web UI's front: the login page, logging in as the seeded demo user, and the seed."""

import pytest
from django.core.management import call_command

from clusters.models import Cell
from tenants.models import Membership, Organization, Role, User

pytestmark = pytest.mark.django_db


def test_login_page_is_served(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Log in to Sluice" in html
    assert 'name="username"' in html
    assert 'name="password"' in html


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_seed_is_idempotent_and_its_login_works(client, settings, capsys):
    settings.DEBUG = True
    call_command("seed")
    call_command("seed")
    printed = capsys.readouterr().out
    assert "demo@sluice.local / sluice-demo" in printed
    assert Organization.objects.count() == 1
    demo = User.objects.get(email="demo@sluice.local")
    assert Membership.unscoped_all_tenants.get(user=demo).role == Role.OWNER
    assert User.objects.get(email="operator@sluice.local").is_superuser
    # Clusters can be created at once: a simulated cell in each of two regions, seeded once.
    assert sorted(Cell.objects.values_list("region", flat=True)) == ["eu-west-1", "us-east-1"]

    response = client.post(
        "/accounts/login/",
        {"username": "demo@sluice.local", "password": "sluice-demo"},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your organizations" in html
    assert "Demo" in html
    assert settings.SLUICE_DATAPLANE_DRIVER == "simulated"
    assert "Simulated data plane" in html  # never mistaken for a real cluster


def test_seed_refuses_with_debug_off(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("seed")
    assert not User.objects.exists()


def test_wrong_password_is_a_form_error(client):
    User.objects.create_user("someone@example.com", "right-password-123")
    response = client.post(
        "/accounts/login/", {"username": "someone@example.com", "password": "wrong"}
    )
    assert response.status_code == 200
    assert "Please enter a correct e-mail address and password" in response.content.decode()
