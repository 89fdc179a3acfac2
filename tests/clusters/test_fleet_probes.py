"""The fleet dashboard's cell probes against real servers: the test kube-apiserver and the
Kafka test environment's Prometheus answer; an API server that is not there is reported with
its reason, within the probe's timeout."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters import cell_credentials, cell_health
from tests.factories import make_cell

pytestmark = pytest.mark.django_db


def test_the_test_api_server_is_reachable_and_a_missing_one_is_not(dataplane, settings, kube):
    settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS = 2.0
    assert cell_health.probe_api_server(dataplane) == cell_health.Probe(True, "reachable")

    nowhere = cell_credentials.from_token(
        server="https://127.0.0.1:9", ca_certificate=kube.pki.ca_cert.read_text(), token="unused"
    )
    gone = make_cell(slug="gone-a", credentials=nowhere)
    started = timezone.now()
    probe = cell_health.probe_api_server(gone)
    assert not probe.ok
    assert "Error" in probe.text or "refused" in probe.text
    assert timezone.now() - started < timedelta(seconds=20)  # bounded, retries included


def test_the_cells_prometheus_is_reachable(kafka_environment):
    cell = make_cell(prometheus_url=kafka_environment.prometheus_url)
    assert cell_health.probe_prometheus(cell) == cell_health.Probe(True, "reachable")
