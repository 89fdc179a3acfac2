"""The fleet dashboard's background services against the real test Redis and a real worker:
a queue's length is what waits in it, and a running worker answers the ping."""

import uuid

import pytest
from kombu import Queue

from controlplane import fleet
from controlplane.celery import app


def test_a_queues_length_is_what_waits_in_it(monkeypatch):
    queue = f"fleet-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(fleet, "queue_names", lambda: [queue])
    assert fleet.queue_lengths() == [{"name": queue, "length": 0, "error": ""}]
    with app.connection_for_write() as connection:  # no worker consumes this queue
        producer = connection.Producer(serializer="json")
        for number in range(3):
            producer.publish({"number": number}, routing_key=queue, declare=[Queue(queue)])
    try:
        assert fleet.queue_lengths() == [{"name": queue, "length": 3, "error": ""}]
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def test_an_unreachable_broker_is_shown_not_raised(monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    rows = fleet.queue_lengths()
    assert [row["name"] for row in rows] == ["billing", "celery", "metering", "provisioning"]
    for row in rows:
        assert row["length"] is None
        assert row["error"]


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_answers_the_ping(celery_worker, settings):
    settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS = 3.0
    answer = fleet.ping_workers()
    assert answer["error"] == ""
    assert len(answer["names"]) == 1
    assert "@" in answer["names"][0]  # the worker's node name
