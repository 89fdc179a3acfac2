"""What the chart's pods run, run here as the pods would run it (no kubelet runs in the tests):
with the environment the chart gives a container (its ConfigMap, and a Secret holding the keys
the README lists) the production settings start; the init container every pod starts with
waits while the database lacks a migration, the migrations Job's command applies them, and the
wait ends; a worker group consumes only its own queues and passes its liveness probe's command;
and web answers the probes with the Host header the chart gives them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from django.conf import settings

from controlplane.celery import app
from tests.deploy.chart import FULL_VALUES, of_kind, pod_specs, render
from tests.support.processes import REPO_ROOT, clean_environment, database_url
from tests.support.services import LOOPBACK, free_port, wait_for

pytestmark = pytest.mark.celery_worker


@pytest.fixture
def empty_database(django_db_setup):
    """A database of its own on the test PostgreSQL, with no table in it."""
    server = settings.DATABASES["default"]
    name = f"sluice_chart_{uuid.uuid4().hex[:8]}"
    admin = {
        "host": server["HOST"],
        "port": server["PORT"],
        "user": server["USER"],
        "password": server["PASSWORD"],
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**admin) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url({**server, "NAME": name})
    finally:
        with psycopg.connect(**admin) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


METRICS_TOKEN = "chart-test-metrics-" + uuid.uuid4().hex


@pytest.fixture
def pod_environment(helm, empty_database):
    """A container's environment as the chart makes it: the ConfigMap's variables, then the
    Secret's (the keys the README says to put there), then the container's own ``env``."""
    documents = render(
        helm, "--values", str(FULL_VALUES), "--set", "waitForMigrations.intervalSeconds=1"
    )
    (config,) = of_kind(documents, "ConfigMap").values()
    secret = {
        "DATABASE_URL": empty_database,
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SECRET_KEY": "chart-test-" + uuid.uuid4().hex * 2,
        "SLUICE_SECRETS_KEYS": Fernet.generate_key().decode(),
        "SLUICE_METRICS_TOKEN": METRICS_TOKEN,
    }
    environment = clean_environment(
        **config["data"],
        **secret,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        SLUICE_DATA_DIR=tempfile.mkdtemp(prefix="sluice-chart-data-"),
    )
    return documents, environment


def start(argv: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as output:
        return subprocess.Popen(
            argv,
            env=environment,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    """Stops the process and whatever it started (a shell's children, a server's workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def container(documents: list[dict], pod: str, name: str) -> dict:
    spec = pod_specs(documents)[pod]
    (found,) = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return found


POD_IP = "10.0.0.7"


def with_own_env(environment: dict[str, str], found: dict, **overrides: str) -> dict[str, str]:
    """The container's environment as the kubelet makes it: its pod's address for the one
    field it asks for (status.podIP), and ``$(NAME)`` replaced by an earlier variable."""
    own: dict[str, str] = {}
    for variable in found.get("env", []):
        if "valueFrom" in variable:
            assert variable["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
            own[variable["name"]] = POD_IP
        else:
            own[variable["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: own[m.group(1)], variable["value"]
            )
    return {**environment, **own, **overrides}


@pytest.mark.django_db(transaction=True)
def test_pods_wait_for_the_migrations_job_then_serve_and_consume(pod_environment, tmp_path):
    documents, environment = pod_environment

    # Before the Job has run, the init container waits (and says so).
    wait = container(documents, "sluice-web", "wait-for-migrations")["command"]
    waiting = start(wait, environment, tmp_path / "wait.log")
    try:
        wait_for(
            lambda: (tmp_path / "wait.log").read_bytes().count(b"waiting for the database") >= 2,
            timeout=90,
            what="the init container to report that it waits",
            process=waiting,
        )
    finally:
        stop(waiting)

    (job,) = of_kind(documents, "Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    applied = subprocess.run(
        migrate["command"], env=environment, cwd=REPO_ROOT, capture_output=True, timeout=240
    )
    assert applied.returncode == 0, applied.stderr.decode(errors="replace")

    # After it, the wait ends at once: the pods' containers start.
    done = subprocess.run(wait, env=environment, cwd=REPO_ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")

    # A worker group consumes its own queues, and only them, and beats for its probes.
    worker = container(documents, "sluice-worker-metering", "worker")
    argv = [arg for arg in worker["command"] if not arg.startswith("--concurrency=")]
    # The pod's /tmp is its own; this machine's is shared: the file goes in the test's folder.
    heartbeat = str(tmp_path / "worker.heartbeat")
    own_env = with_own_env(environment, worker, SLUICE_CELERY_WORKER_HEARTBEAT_FILE=heartbeat)
    consuming = start([*argv, "--pool=solo"], own_env, tmp_path / "w.log")
    try:
        wait_for(
            lambda: b"ready." in (tmp_path / "w.log").read_bytes(),
            timeout=90,
            what=f"the metering worker (log: {tmp_path / 'w.log'})",
            process=consuming,
        )
        replies = app.control.inspect(timeout=5).active_queues() or {}
        (queues,) = [queues for node, queues in replies.items() if node.startswith("metering@")]
        assert [queue["name"] for queue in queues] == ["metering"]
        chart_env = {variable["name"]: variable.get("value") for variable in worker["env"]}
        chart_file = chart_env["SLUICE_CELERY_WORKER_HEARTBEAT_FILE"]
        for probe in ("startupProbe", "livenessProbe"):
            command = [
                heartbeat if arg == chart_file else arg for arg in worker[probe]["exec"]["command"]
            ]
            assert heartbeat in command
            checked = subprocess.run(
                command, env=own_env, cwd=REPO_ROOT, capture_output=True, timeout=30
            )
            assert checked.returncode == 0, checked.stderr.decode(errors="replace")
    finally:
        stop(consuming)

    # Web answers its probes with the chart's Host header; the pod's own address is refused.
    web = container(documents, "sluice-web", "web")
    port = free_port()
    (tmp_path / "metrics").mkdir()  # the pod's emptyDir
    serving = start(
        web["command"],
        with_own_env(
            environment,
            web,
            SLUICE_BIND=f"{LOOPBACK}:{port}",
            WEB_CONCURRENCY="1",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        ),
        tmp_path / "web.log",
    )
    try:

        def answer(path: str, host: str, token: str = "") -> int:
            request = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}")
            request.add_header("Host", host)
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        liveness = web["livenessProbe"]["httpGet"]
        (host,) = [h["value"] for h in liveness["httpHeaders"] if h["name"] == "Host"]
        wait_for(
            lambda: answer(liveness["path"], host) == 200,
            timeout=90,
            what=f"gunicorn (log: {tmp_path / 'web.log'})",
            process=serving,
        )
        assert answer(web["readinessProbe"]["httpGet"]["path"], host) == 200
        # Prometheus scrapes the pod at its own address, with the token; any other host is
        # refused, and so is a scrape without the token.
        web_pod = of_kind(documents, "Deployment")["sluice-web"]["spec"]["template"]
        metrics_path = web_pod["metadata"]["annotations"]["prometheus.io/path"]
        assert answer(metrics_path, f"{POD_IP}:{port}", METRICS_TOKEN) == 200
        assert answer(metrics_path, f"{POD_IP}:{port}") == 401
        assert answer(liveness["path"], f"10.0.0.8:{port}") == 400
    finally:
        stop(serving)
