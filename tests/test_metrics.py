"""The control plane's own /metrics: read behind its bearer token; each request timed by the
name of its view, its method and its status class, never by a path or a tenant; every app's
scrape-time figures served, one failing source marked down without hiding the others; the
Celery queues' lengths from the real test Redis; and under gunicorn, the request figures of
every process summed through PROMETHEUS_MULTIPROC_DIR."""

import concurrent.futures
import uuid

import pytest
import requests
from kombu import Queue

from controlplane import fleet, task_metrics
from controlplane.celery import app
from controlplane.tasks import ping
from foundation import metrics
from tests.bench.server import GunicornServer
from tests.factories import UserFactory, make_org
from tests.support.metrics import scraped, value

TOKEN = "scrape-token-for-the-tests"
DURATION = "sluice_http_request_duration_seconds"


@pytest.fixture
def token(settings):
    settings.SLUICE_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token: str = TOKEN) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return scraped(response.content.decode())


def requests_counted(found: dict, **labels: str) -> float:
    return found.get((f"{DURATION}_count", frozenset(labels.items())), 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
    ids=["none", "wrong", "not-bearer", "longer", "empty"],
)
def test_without_the_token_nothing_is_told(client, token, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"sluice_" not in response.content


@pytest.mark.django_db
def test_with_no_token_configured_anyone_reads_them(client, settings):
    settings.SLUICE_METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"sluice_reconcile_lag_seconds" in response.content
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_scrapes_are_never_rate_limited(client, token, settings):
    settings.SLUICE_RATE_LIMIT_ORG_PER_MINUTE = 1
    settings.SLUICE_RATE_LIMIT_CALLER_PER_MINUTE = 1
    settings.SLUICE_RATE_LIMIT_ADDRESS_PER_MINUTE = 1
    for _ in range(5):
        scrape(client)


@pytest.mark.django_db
def test_requests_are_timed_by_view_name_method_and_status_class_never_by_path(client, token):
    organization = make_org(owner=UserFactory(), name="Secretive Org")
    before = scrape(client)
    client.get("/healthz")
    client.get("/healthz")
    client.post("/healthz")  # not allowed: 405
    client.get(f"/api/v1/orgs/{organization.public_id}/clusters/")  # not signed in
    client.get(f"/no/such/{organization.public_id}/page")
    client.generic("BREW", "/healthz")
    after_response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    text = after_response.content.decode()
    after = scraped(text)

    def added(**labels):
        return requests_counted(after, **labels) - requests_counted(before, **labels)

    assert added(view="healthz", method="GET", status="2xx") == 2
    assert added(view="healthz", method="POST", status="4xx") == 1
    assert added(view="healthz", method="other", status="4xx") == 1
    assert added(view="cluster-list", method="GET", status="4xx") == 1
    assert added(view="unrouted", method="GET", status="4xx") == 1
    assert added(view="metrics", method="GET", status="2xx") == 1  # the first scrape
    # No path, organization or anything a tenant named is a label.
    assert organization.public_id not in text
    assert "Secretive" not in text
    assert "/api/v1" not in text
    views = {
        dict(labels)["view"] for name, labels in after if name == f"{DURATION}_count" and labels
    }
    assert all("/" not in view for view in views)


@pytest.mark.django_db
def test_every_apps_figures_are_served_and_one_failure_hides_no_other(client, token):
    found = scrape(client)
    collectors = ("celery_queues", "celery_tasks", "clusters", "ledger", "metering", "outboxes")
    for collector in collectors:
        assert value(found, "sluice_metrics_collector_up", collector=collector) == 1
    assert value(found, "sluice_ledger_default_partition_rows") == 0

    def broken():
        raise RuntimeError("the source is down")

    metrics.register_scrape_collector("broken", broken)
    try:
        found = scrape(client)
    finally:
        metrics._scrape_collectors.pop("broken")
    assert value(found, "sluice_metrics_collector_up", collector="broken") == 0
    assert value(found, "sluice_metrics_collector_up", collector="clusters") == 1
    assert value(found, "sluice_reconcile_unconverged_clusters") == 0


def test_a_queues_length_is_what_waits_in_it_in_redis(monkeypatch):
    """Against the test Redis: the queues named by the Celery configuration, each as long as
    what waits in it."""
    waiting, empty = (f"metrics-test-{uuid.uuid4().hex[:8]}" for _ in range(2))
    monkeypatch.setattr(fleet, "queue_names", lambda: [empty, waiting])
    with app.connection_for_write() as connection:  # no worker consumes these queues
        producer = connection.Producer(serializer="json")
        for number in range(4):
            producer.publish({"number": number}, routing_key=waiting, declare=[Queue(waiting)])
    try:
        found = scraped(metrics.exposition().decode())
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(waiting)
    assert value(found, "sluice_celery_queue_length", queue=waiting) == 4
    assert value(found, "sluice_celery_queue_length", queue=empty) == 0
    assert value(found, "sluice_metrics_collector_up", collector="celery_queues") == 1


def test_the_queues_are_the_configured_ones_and_the_default(monkeypatch):
    monkeypatch.setitem(app.conf, "task_queues", [Queue("provisioning"), Queue("billing")])
    assert fleet.queue_names() == sorted({"billing", "provisioning", app.conf.task_default_queue})


def test_an_unreachable_broker_marks_the_queues_down(monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    found = scraped(metrics.exposition().decode())
    assert value(found, "sluice_metrics_collector_up", collector="celery_queues") == 0
    assert not [name for name, _ in found if name == "sluice_celery_queue_length"]


def task_counts(task: str) -> dict[str, float]:
    found = scraped(metrics.exposition().decode())
    prefix = "sluice_celery_task_duration_seconds"
    return {
        "SUCCESS": found.get(
            ("sluice_celery_tasks_total", frozenset({("task", task), ("state", "SUCCESS")})), 0
        ),
        "FAILURE": found.get(
            ("sluice_celery_tasks_total", frozenset({("task", task), ("state", "FAILURE")})), 0
        ),
        "count": found.get((f"{prefix}_count", frozenset({("task", task)})), 0),
        "sum": found.get((f"{prefix}_sum", frozenset({("task", task)})), 0),
        "under 5s": found.get((f"{prefix}_bucket", frozenset({("task", task), ("le", "5.0")})), 0),
    }


@pytest.mark.django_db(transaction=True)
def test_a_workers_tasks_are_counted_by_name_state_and_run_time(celery_worker):
    """A real worker counts each task's end in the test Redis; /metrics reads it from there."""
    ping_before = task_counts("controlplane.tasks.ping")
    heartbeat_before = task_counts("controlplane.tasks.record_heartbeat")

    ping.delay().get(timeout=30)
    ping.delay().get(timeout=30)
    # Sent by name without its argument: the task fails in the worker (TypeError).
    failing = app.send_task("controlplane.tasks.record_heartbeat", kwargs={})
    with pytest.raises(TypeError):
        failing.get(timeout=30)

    pinged = task_counts("controlplane.tasks.ping")
    assert pinged["SUCCESS"] - ping_before["SUCCESS"] == 2
    assert pinged["count"] - ping_before["count"] == 2
    assert pinged["under 5s"] - ping_before["under 5s"] == 2
    assert pinged["sum"] > ping_before["sum"]
    failed = task_counts("controlplane.tasks.record_heartbeat")
    assert failed["FAILURE"] - heartbeat_before["FAILURE"] == 1
    assert failed["SUCCESS"] == heartbeat_before["SUCCESS"]


def test_counting_a_task_never_fails_it_when_redis_is_down(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    task_metrics.record("controlplane.tasks.ping", "SUCCESS", 0.01)  # no exception
    assert "could not count the end of task controlplane.tasks.ping" in caplog.text


def healthz_served(url: str) -> float:
    response = requests.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    return requests_counted(scraped(response.text), view="healthz", method="GET", status="2xx")


@pytest.mark.django_db
def test_under_gunicorn_every_process_counts_into_one_figure(worker_environment, tmp_path):
    """Two gunicorn processes (production's gunicorn settings), each counting into the
    multiprocess directory: whichever serves the scrape reports the requests of both. A
    restarted server starts from an emptied directory."""
    environment = {
        **worker_environment,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "2",
        "SLUICE_METRICS_TOKEN": TOKEN,
    }
    with GunicornServer(env=environment) as server:
        started = healthz_served(server.url)  # the start's own health checks
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(lambda _: requests.get(f"{server.url}/healthz", timeout=10), range(60))
            )
        assert {answer.status_code for answer in answers} == {200}
        # Several scrapes, served by either process, all see every request.
        assert {healthz_served(server.url) for _ in range(10)} == {started + 60}
        counting = {path.name.rsplit("_", 1)[1] for path in tmp_path.glob("histogram_*.db")}
        assert len(counting) == 2, counting  # both processes counted into the directory

    with GunicornServer(env=environment) as restarted:
        assert healthz_served(restarted.url) < started + 60
