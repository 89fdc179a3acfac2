"""Budget alerts posted to a real HTTP endpoint on 127.0.0.1 (an http.server thread that records
each request and answers the statuses it is told): the signature checked with the README's
algorithm, the retry after a 500 once the backoff has passed, giving up, the delivery log in
the API and on the page, claims under concurrent runs, the SSRF guard (when the URL is saved
and again at each post, connecting to the address checked), the secret sealed and shown once,
and one organization never seeing another's endpoint or deliveries.

Loopback is refused unless ``SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS`` lets it in: the tests
that post to the local endpoint set it to 127.0.0.1/32 explicitly; the others leave it empty,
as production has it. E-mail goes through Django's locmem backend (no mail server here)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing import webhook_outbox
from billing.budgets import budget_set, budgets_evaluate
from billing.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.webhook_http import Target, post
from foundation import secretbox
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.billing.budget_support import (
    organization_with_cluster,
    serve_endpoint,
    standings_at,
    write_ingress,
)
from tests.factories import add_member
from tests.support.clients import session_client
from tests.support.feedback import refused_page

pytestmark = pytest.mark.django_db(transaction=True)

H = timedelta(hours=1)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
LATE = NOVEMBER + 708 * H
SYSTEM = Actor(system="tests")


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """The README's check of a post, as a customer writes it."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


@pytest.fixture
def endpoint():
    yield from serve_endpoint()


@pytest.fixture
def loopback_allowed(settings):
    settings.SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ("127.0.0.1/32",)


@pytest.fixture
def acme():
    organization, cluster = organization_with_cluster("Acme")
    with tenant_scope(organization):
        budget_set(organization=organization, actor=SYSTEM, monthly_micros=100_000_000)
    owner = add_member(organization, Role.OWNER).user
    return organization, cluster, session_client(owner)


def webhook_url(organization, tail: str = "") -> str:
    return f"/api/v1/orgs/{organization.public_id}/billing/webhook/{tail}"


def set_endpoint(client, organization, url: str) -> str:
    response = client.put(webhook_url(organization), {"url": url}, format="json")
    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    return response.json()["secret"]


def fire_fifty_percent(organization, cluster) -> None:
    write_ingress(cluster, NOVEMBER + 10 * H, 700)  # $56 of $100
    assert budgets_evaluate(standings_at(LATE, organization), now=LATE) == 1


def test_an_alert_is_posted_signed_and_the_signature_verifies(acme, endpoint, loopback_allowed):
    organization, cluster, client = acme
    secret = set_endpoint(client, organization, endpoint.url)
    assert secret.startswith("whsec_")
    fire_fifty_percent(organization, cluster)
    [request] = endpoint.received
    assert request.path == "/hooks/sluice"
    assert request.headers["Content-Type"] == "application/json"
    header = request.headers["Sluice-Signature"]
    assert header.startswith("t=")
    assert verify(secret, header, request.body)
    assert not verify(secret, header, request.body + b" ")
    assert not verify("whsec_another", header, request.body)
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(time.time() - timestamp) < 60
    body = json.loads(request.body)
    assert body == {
        "id": body["id"],
        "type": "budget.threshold_reached",
        "created": "2026-11-30T12:00:00Z",
        "organization": {"id": organization.public_id, "name": "Acme"},
        "period": {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        "threshold_percent": 50,
        "currency": "USD",
        "budget_usd": "100.000000",
        "month_to_date_usd": "56.000000",
        "forecast_usd": "56.949152",
    }
    assert request.headers["Sluice-Event-Id"] == body["id"]
    delivery = WebhookDelivery.unscoped_all_tenants.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 1)
    [attempt] = WebhookAttempt.unscoped_all_tenants.all()
    assert (attempt.status_code, attempt.error, attempt.url) == (200, "", endpoint.url)


def test_a_500_is_retried_after_the_backoff_and_each_attempt_is_logged(
    acme, endpoint, loopback_allowed
):
    organization, cluster, client = acme
    secret = set_endpoint(client, organization, endpoint.url)
    endpoint.statuses.append(500)
    fire_fifty_percent(organization, cluster)
    delivery = WebhookDelivery.unscoped_all_tenants.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    assert delivery.last_error == "The endpoint answered 500"
    wait = delivery.next_attempt_at - WebhookAttempt.unscoped_all_tenants.get().attempted_at
    assert wait == timedelta(seconds=30)  # the first backoff
    assert webhook_outbox.deliveries_post_due() == 0  # not due yet: nothing posted
    assert len(endpoint.received) == 1
    assert webhook_outbox.deliveries_post_due(now=timezone.now() + timedelta(seconds=31)) == 1
    assert len(endpoint.received) == 2
    assert all(verify(secret, r.headers["Sluice-Signature"], r.body) for r in endpoint.received)
    assert endpoint.received[0].body == endpoint.received[1].body  # the same event again
    # The delivery log, in the API and on the page.
    listed = client.get(webhook_url(organization, "deliveries/")).json()["results"]
    assert [(d["state"], d["attempts"]) for d in listed] == [("delivered", 2)]
    log = listed[0]["attempt_log"]
    assert [(a["status_code"], a["error"]) for a in log] == [
        (500, "The endpoint answered 500"),
        (200, ""),
    ]
    assert all(isinstance(a["duration_ms"], int) and a["attempted_at"] for a in log)
    page = client.get(f"/orgs/{organization.public_id}/billing/alerts/").content.decode()
    assert "The endpoint answered 500" in page
    assert listed[0]["event_id"] in page


def test_backoff_doubles_and_a_delivery_is_given_up_after_the_last_attempt(
    acme, endpoint, loopback_allowed, settings
):
    settings.SLUICE_WEBHOOK_MAX_ATTEMPTS = 3
    assert [webhook_outbox.backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [
        30,
        60,
        120,
        3600,
        3600,
    ]
    organization, cluster, client = acme
    set_endpoint(client, organization, endpoint.url)
    endpoint.statuses.extend([503, 500, 502, 500])
    fire_fifty_percent(organization, cluster)
    later = timezone.now()
    for _ in range(4):
        later += timedelta(hours=1)
        webhook_outbox.deliveries_post_due(now=later)
    delivery = WebhookDelivery.unscoped_all_tenants.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 3)
    assert len(endpoint.received) == 3
    statuses = WebhookAttempt.unscoped_all_tenants.values_list("status_code", flat=True)
    assert list(statuses) == [503, 500, 502]


def test_concurrent_runs_post_each_delivery_once(acme, endpoint, loopback_allowed, monkeypatch):
    organization, cluster, client = acme
    set_endpoint(client, organization, endpoint.url)
    # The firing queues no task here (its e-mails and posts), so the four runs below are the
    # only ones posting.
    monkeypatch.setattr("billing.budgets.enqueue_on_commit", lambda *args, **kwargs: None)
    write_ingress(cluster, NOVEMBER + 10 * H, 1250)  # 50, 80, 100% and the forecast
    assert budgets_evaluate(standings_at(LATE, organization), now=LATE) == 4
    pending = WebhookDelivery.unscoped_all_tenants.filter(state=DeliveryState.PENDING).count()
    assert pending == 4
    barrier, errors = threading.Barrier(4), []

    def run():
        try:
            barrier.wait(timeout=10)
            webhook_outbox.deliveries_post_due()
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(endpoint.received) == 4
    assert len({json.loads(r.body)["id"] for r in endpoint.received}) == 4
    assert WebhookAttempt.unscoped_all_tenants.count() == 4


# SSRF -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",  # a name resolving to loopback
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",  # loopback written as IPv6
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://100.64.0.1/hook",  # shared address space
    ],
)
def test_a_url_resolving_to_a_non_public_address_is_refused_when_saved(acme, url):
    organization, _, client = acme
    response = client.put(webhook_url(organization), {"url": url}, format="json")
    assert response.status_code == 400
    problem = response.json()
    assert (problem["code"], problem["field"]) == ("webhook_url_refused", "url")
    assert "Sluice posts only to public internet addresses" in problem["detail"]
    assert not WebhookEndpoint.unscoped_all_tenants.exists()


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "https://user:pw@example.com/", "https:///x", "not a url"]
)
def test_a_url_of_another_shape_is_refused(acme, url):
    organization, _, client = acme
    response = client.put(webhook_url(organization), {"url": url}, format="json")
    assert response.json()["code"] == "webhook_url_refused"


def test_plain_http_is_refused_where_the_installation_requires_https(acme, settings):
    settings.SLUICE_WEBHOOK_ALLOW_HTTP = False
    organization, _, client = acme
    response = client.put(webhook_url(organization), {"url": "http://example.com/"}, format="json")
    assert response.json()["detail"] == "The URL must start with https://"


def test_the_address_is_checked_again_at_each_post(acme, endpoint, settings):
    organization, cluster, client = acme
    settings.SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ("127.0.0.1/32",)
    set_endpoint(client, organization, endpoint.url)
    settings.SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ()  # as if the name now resolved there
    fire_fifty_percent(organization, cluster)
    assert endpoint.received == []
    delivery = WebhookDelivery.unscoped_all_tenants.get()
    assert delivery.state == DeliveryState.PENDING
    [attempt] = WebhookAttempt.unscoped_all_tenants.filter(delivery=delivery)
    assert attempt.status_code is None
    assert "resolves to 127.0.0.1, a loopback address" in attempt.error


def test_a_post_connects_to_the_address_checked_not_to_the_name_again(endpoint):
    """The connection goes to the resolved address; the name is only the Host header (and
    TLS's server name): a second lookup, which DNS rebinding would answer differently, never
    happens."""
    port = int(endpoint.url.split(":")[2].split("/")[0])
    target = Target(
        scheme="http", host="hooks.example.invalid", port=port, path="/x", address="127.0.0.1"
    )
    answer = post(target, body=b"{}", headers={"Content-Type": "application/json"})
    assert answer.status == 200
    assert endpoint.received[0].headers["Host"] == f"hooks.example.invalid:{port}"


# The endpoint and its secret ------------------------------------------------------------------


def test_the_secret_is_sealed_shown_once_and_rotated(acme, endpoint, loopback_allowed):
    organization, _, client = acme
    secret = set_endpoint(client, organization, endpoint.url)
    stored = WebhookEndpoint.unscoped_all_tenants.get()
    assert secret.encode() not in bytes(stored.secret_sealed)
    assert secretbox.unseal(stored.secret_sealed) == secret
    shown = client.get(webhook_url(organization)).json()
    assert "secret" not in shown
    assert shown["url"] == endpoint.url
    same = client.put(webhook_url(organization), {"url": endpoint.url}, format="json")
    assert (same.status_code, same.json()["secret"]) == (200, None)
    rotated = client.put(
        webhook_url(organization), {"url": endpoint.url, "rotate_secret": True}, format="json"
    ).json()["secret"]
    assert rotated.startswith("whsec_")
    assert rotated != secret
    with tenant_scope(organization):
        events = list(
            AuditEvent.objects.filter(action__startswith="webhook_endpoint").order_by("id")
        )
    assert [e.action for e in events] == ["webhook_endpoint.created", "webhook_endpoint.updated"]
    assert all(secret not in json.dumps([e.before, e.after]) for e in events)
    assert all(rotated not in json.dumps([e.before, e.after]) for e in events)


def test_removing_the_endpoint_gives_up_its_pending_deliveries(acme, endpoint, loopback_allowed):
    organization, cluster, client = acme
    set_endpoint(client, organization, endpoint.url)
    endpoint.statuses.append(500)
    fire_fifty_percent(organization, cluster)
    assert client.delete(webhook_url(organization)).status_code == 204
    webhook_outbox.deliveries_post_due(now=timezone.now() + timedelta(minutes=5))
    delivery = WebhookDelivery.unscoped_all_tenants.get()
    assert (delivery.state, delivery.last_error) == (
        DeliveryState.FAILED,
        "The webhook endpoint was removed",
    )
    assert len(endpoint.received) == 1


def test_one_organization_never_sees_anothers_endpoint_or_deliveries(
    acme, endpoint, loopback_allowed
):
    organization, cluster, client = acme
    set_endpoint(client, organization, endpoint.url)
    fire_fifty_percent(organization, cluster)
    delivery = WebhookDelivery.unscoped_all_tenants.get()
    other, _ = organization_with_cluster("Other")
    outsider = session_client(add_member(other, Role.OWNER).user)
    assert outsider.get(webhook_url(organization)).status_code == 404
    assert outsider.get(webhook_url(organization, "deliveries/")).status_code == 404
    assert outsider.get(webhook_url(other, "deliveries/")).json()["results"] == []
    own_path = webhook_url(other, f"deliveries/{delivery.public_id}/")
    assert outsider.get(own_path).status_code == 404
    own = client.get(webhook_url(organization, f"deliveries/{delivery.public_id}/"))
    assert own.json()["event_id"] == delivery.alert.public_id
    assert outsider.get(webhook_url(other)).status_code == 404
    page = outsider.get(f"/orgs/{other.public_id}/billing/alerts/").content.decode()
    assert own.json()["event_id"] not in page
    assert endpoint.url not in page


def test_the_page_shows_a_new_secret_once_and_refuses_a_private_url(acme, endpoint, settings):
    organization, _, client = acme
    page = f"/orgs/{organization.public_id}/billing/alerts/"
    refused = client.post(page, {"action": "endpoint", "url": endpoint.url})
    assert "127.0.0.1, a loopback address" in refused_page(client, refused, page, "endpoint")
    settings.SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS = ("127.0.0.1/32",)
    made = client.post(page, {"action": "endpoint", "url": endpoint.url})
    assert made.status_code == 200
    assert "no-store" in made["Cache-Control"]
    secret = secretbox.unseal(WebhookEndpoint.unscoped_all_tenants.get().secret_sealed)
    assert secret in made.content.decode()
    again = client.post(page, {"action": "endpoint", "url": endpoint.url})
    assert again.status_code == 302
    assert secret not in client.get(page).content.decode()
