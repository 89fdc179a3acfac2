import os

import pytest
from django.conf import settings

from tests.support.browser import (  # noqa: F401 - the browser tests' fixtures
    base_url,
    browser_context_args,
    browser_type_launch_args,
    page_problems,
    watched_page,
)
from tests.support.processes import clean_environment, database_url
from tests.support.workers import CeleryWorker

# pytest-playwright starts Playwright once per session, and its sync API leaves an event loop
# marked running in this thread from then on: every later ORM call, in any test, would be
# refused as "from an async context". None of the code under test is async; the guard is off.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_configure(config: pytest.Config) -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.exit(
            "The tests run against a real PostgreSQL and Redis: use `make test` "
            "(or `python -m tests.support.runner [pytest args]`), which starts them.",
            returncode=2,
        )


@pytest.fixture
def worker_environment(django_db_setup) -> dict[str, str]:
    """The environment of a process that should see the test database and Redis."""
    from django.db import connection

    return clean_environment(
        DJANGO_SETTINGS_MODULE="controlplane.settings.test",
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,
    )


@pytest.fixture
def start_celery_worker(worker_environment):
    """Starts real `celery worker` processes (with extra environment if given) for one test,
    and sends this process's tasks to them through Redis instead of running them inline."""
    from contextlib import ExitStack

    from celery._state import _set_task_join_will_block

    from controlplane.celery import app

    # Eager tasks run from several threads at once (the concurrency tests) can leave Celery's
    # process-wide "inside a task" flag set: denied_join_result() saves and restores it without
    # a lock. The test itself is not inside a task, so it may wait for results.
    _set_task_join_will_block(False)
    app.conf.task_always_eager = False
    with ExitStack() as stack:

        def start(**extra_env: str) -> CeleryWorker:
            return stack.enter_context(CeleryWorker(env={**worker_environment, **extra_env}))

        try:
            yield start
        finally:
            app.conf.task_always_eager = True


@pytest.fixture
def celery_worker(start_celery_worker):
    """A real `celery worker` process on the test Redis and the test database. Tests using it
    must commit what the worker reads (``django_db(transaction=True)``)."""
    return start_celery_worker()


# Kubernetes -----------------------------------------------------------------------------------

TEST_OWNED_LABEL = "sluice.test/owned"


@pytest.fixture(scope="session")
def kube_environment(request):
    """etcd, kube-apiserver and kube-controller-manager for the whole session (started on the
    first test that needs them, stopped at the end, also when tests fail)."""
    from tests.support.kubeenv import KubeTestEnvironment

    with KubeTestEnvironment() as environment:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"kube test environment: kube-apiserver on 127.0.0.1:{environment.port}, "
                f"etcd on 127.0.0.1:{environment.etcd_port} "
                f"({environment.timings['ready']:.1f}s to start)"
            )
        yield environment


@pytest.fixture
def kube(kube_environment):
    """The test API server. Namespaces a test creates, and cluster-wide objects it labels
    ``sluice.test/owned``, are deleted after it."""
    from tests.support.kubeenv import delete_test_leftovers, namespace_names

    before = namespace_names(kube_environment, terminating=False)
    yield kube_environment
    delete_test_leftovers(kube_environment, keep_namespaces=before, owned_label=TEST_OWNED_LABEL)


@pytest.fixture
def strimzi_emulator(kube):
    """Test support standing in for the Strimzi operators (see tests/support/strimzi_emulator)."""
    from tests.support.strimzi_emulator import StrimziEmulator

    with StrimziEmulator(kube.api_client()) as emulator:
        yield emulator


@pytest.fixture
def strimzi_emulator_on_kafka(kube, kafka_environment):
    """The emulator with the Kafka test broker behind it: KafkaUsers and KafkaTopics are applied
    to the broker (credentials, ACLs, quotas, topics) before they are Ready, as Strimzi's user
    and topic operators apply them. Instead of ``strimzi_emulator``, not beside it."""
    from tests.support.strimzi_emulator import StrimziEmulator

    with StrimziEmulator(kube.api_client(), kafka=kafka_environment) as emulator:
        yield emulator


# Kafka and Prometheus -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_environment(request):
    """A Kafka broker (KRaft, SASL/SCRAM, ACLs, Strimzi's JMX exporter rules) and Prometheus
    scraping it every second, for the whole session (started on the first test that needs them,
    stopped at the end, also when tests fail)."""
    from tests.support.kafkaenv import KafkaTestEnvironment

    # Labelled as Strimzi's PodMonitor labels a broker of a cell's shared Kafka (the defaults of
    # a Cell), which is what metering attributes series by.
    labels = {"namespace": "sluice-shared", "strimzi_io_cluster": "shared"}
    with KafkaTestEnvironment(scrape_labels=labels) as environment:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"kafka test environment: broker on {environment.bootstrap_servers}, "
                f"Prometheus on {environment.prometheus_url} "
                f"({environment.timings['ready']:.1f}s to start)"
            )
        yield environment


# Stripe ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stripe_mock(request):
    """stripe-mock (Stripe's mock of its API, which checks every request against the API
    description) for the whole session, started on the first test that needs it."""
    from tests.support.stripe_mock import StripeMockServer

    with StripeMockServer() as server:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"stripe-mock on {server.url}")
        yield server


@pytest.fixture
def stripe_standin():
    """A fresh stateful Stripe stand-in for one test (tests/support/stripe_standin.py)."""
    from tests.support.stripe_standin import StripeStandIn

    with StripeStandIn() as standin:
        yield standin


@pytest.fixture
def stripe_fault_proxy(stripe_standin):
    """The fault-injecting proxy in front of the stand-in; ``plan()`` the faults."""
    from tests.support.stripe_standin import FaultProxy

    with FaultProxy(stripe_standin.url) as proxy:
        yield proxy


# S3 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(request):
    """moto's S3 server for the whole session, started on the first test that needs it and
    stopped at the end; boto3 in this process reads its credentials from the standard AWS
    variables, set here for the session and put back after."""
    import os

    from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, MotoS3Server

    credentials = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
    saved = {name: os.environ.get(name) for name in credentials}
    os.environ.update(credentials)
    try:
        with MotoS3Server() as server:
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"moto S3 server on {server.url}")
            yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def export_bucket(s3_server, settings):
    """A new, empty bucket for one test, and the settings that send usage exports to it."""
    from foundation.ids import new_public_id

    bucket = new_public_id("exports").replace("_", "-")
    s3_server.client().create_bucket(Bucket=bucket)
    settings.SLUICE_EXPORT_BUCKET = bucket
    settings.SLUICE_EXPORT_ENDPOINT_URL = s3_server.url
    settings.SLUICE_EXPORT_REGION = "us-east-1"
    return bucket
