"""Failed sign-ins are counted in Redis per account and per client address; past either limit,
sign-in is refused for the lockout window even with the right password, on the web UI's sign-in
page (429 and a form error) and on the operators' (a form error)."""

import secrets
import time

import pytest
import redis
from django.test import Client

from tenants.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "harbour-crane-velvet-17"
WINDOW = 2


@pytest.fixture
def throttle(settings):
    assert settings.REDIS_URL.startswith("redis://"), "these tests count in the real Redis"
    settings.SLUICE_LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.SLUICE_LOGIN_FAILURES_PER_ADDRESS = 5
    settings.SLUICE_LOGIN_LOCKOUT_SECONDS = WINDOW
    return settings


def address() -> str:
    """A client address of its own for each test: counts in Redis outlive a test."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def person() -> User:
    return User.objects.create_user(f"p{secrets.token_hex(4)}@example.com", PASSWORD)


def log_in(client: Client, email: str, password: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": email, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_failures_lock_the_account_even_for_the_right_password_until_the_window_ends(throttle):
    user = person()
    here = Client(REMOTE_ADDR=address())
    for _ in range(3):
        assert log_in(here, user.email, "wrong-password").status_code == 200
    locked_at = time.monotonic()
    store = redis.Redis.from_url(throttle.REDIS_URL)
    # This account's lock, for the window, under a digest: no key names the address in clear.
    ttls = [store.pttl(key) for key in store.keys("sluice:lock:login:account:*")]
    assert any(0 < ttl <= WINDOW * 1000 for ttl in ttls), ttls
    assert not [key for key in store.keys("*") if user.email.encode() in key]

    locked = log_in(here, user.email, PASSWORD)
    assert locked.status_code == 429
    assert 1 <= int(locked["Retry-After"]) <= WINDOW
    assert "Too many failed sign-ins" in locked.content.decode()
    assert not signed_in(here)
    # The account is locked wherever the attempt comes from.
    elsewhere = Client(REMOTE_ADDR=address())
    assert log_in(elsewhere, user.email, PASSWORD).status_code == 429
    # Another account from the same address is not.
    other = person()
    assert log_in(here, other.email, PASSWORD).status_code == 302

    locks = store.keys("sluice:lock:login:account:*")
    assert locks
    assert user.email.encode() not in b"".join(locks)  # the store holds no address in clear

    started = time.monotonic()
    while time.monotonic() - started < WINDOW + 3:
        response = log_in(Client(REMOTE_ADDR=address()), user.email, PASSWORD)
        if response.status_code == 302:
            break
        assert response.status_code == 429
        time.sleep(0.25)
    assert response.status_code == 302, "the lockout never ended"
    assert time.monotonic() - locked_at >= WINDOW - 1, "the lockout ended before its window"


def test_failures_from_one_address_lock_that_address_for_every_account(throttle):
    throttle.SLUICE_LOGIN_FAILURES_PER_ACCOUNT = 100
    here = Client(REMOTE_ADDR=address())
    for index in range(5):
        log_in(here, f"guess{index}-{secrets.token_hex(3)}@example.com", "guess")

    user = person()
    locked = log_in(here, user.email, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert log_in(Client(REMOTE_ADDR=address()), user.email, PASSWORD).status_code == 302


def test_right_passwords_do_not_count(throttle):
    user = person()
    here = Client(REMOTE_ADDR=address())
    for _ in range(5):
        assert log_in(here, user.email, PASSWORD).status_code == 302
        here.logout()
    assert log_in(here, user.email, "wrong-password").status_code == 200
    assert log_in(here, user.email, PASSWORD).status_code == 302


def test_the_operators_sign_in_is_throttled_too(throttle):
    operator = User.objects.create_superuser(f"op{secrets.token_hex(4)}@example.com", PASSWORD)
    here = Client(REMOTE_ADDR=address())
    for _ in range(3):
        log_in(here, operator.email, "wrong-password", path="/admin/login/")
    locked = log_in(here, operator.email, PASSWORD, path="/admin/login/")
    assert "Too many failed sign-ins" in locked.content.decode()
    assert not signed_in(here)
