"""`make run`, as a newcomer types it: web, worker and beat on embedded defaults (SQLite, the
file-system broker), the login page and /readyz served, and one Ctrl-C stops all of them."""

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import requests

from tests.support.processes import REPO_ROOT, clean_environment
from tests.support.services import free_port, wait_for

STARTUP_BUDGET_SECONDS = 90


def processes_with(variable: str, value: str) -> list[int]:
    """Every live process whose environment has variable=value (read from /proc)."""
    needle = f"{variable}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as environ:
                    if needle in environ.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def make_run(tmp_path):
    port = free_port()
    log_path = tmp_path / "make-run.log"
    env = clean_environment(SLUICE_DATA_DIR=str(tmp_path / "data"))  # marks its processes
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log_path, env["SLUICE_DATA_DIR"]
    finally:
        for pid in processes_with("SLUICE_DATA_DIR", env["SLUICE_DATA_DIR"]):
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_make_run_serves_and_one_ctrl_c_stops_everything(make_run):
    process, base_url, log_path, data_dir = make_run
    started = time.monotonic()

    wait_for(
        lambda: get(f"{base_url}/readyz")[0] == 200,
        timeout=STARTUP_BUDGET_SECONDS,
        what=f"make run (log: {log_path})",
        process=process,
    )
    ready_after = time.monotonic() - started
    assert ready_after < STARTUP_BUDGET_SECONDS

    status, body = get(f"{base_url}/readyz")
    assert json.loads(body)["checks"] == {"database": "ok", "broker": "ok"}
    status, body = get(f"{base_url}/accounts/login/")
    assert status == 200
    assert b"Log in to Sluice" in body

    log = log_path.read_text(errors="replace")
    assert f"Sluice control plane: {base_url}/" in log
    assert "demo@sluice.local / sluice-demo" in log
    wait_for(
        lambda: "celery@" in log_path.read_text() and "beat: Starting" in log_path.read_text(),
        timeout=60,
        what="worker and beat",
        process=process,
    )

    assert_a_cluster_can_be_created(base_url)

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
    process.wait(timeout=30)
    wait_for(
        lambda: not processes_with("SLUICE_DATA_DIR", data_dir),
        timeout=15,
        what="web, worker and beat to exit",
    )
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base_url}/healthz", timeout=2)  # noqa: S310


def assert_a_cluster_can_be_created(base_url: str) -> None:
    """The seeded tenant logs in and creates a serverless cluster through the API; the worker
    (on the file-system broker) reconciles it on the simulated data plane until it is ready."""
    session = requests.Session()
    session.get(f"{base_url}/accounts/login/", timeout=10)
    session.post(
        f"{base_url}/accounts/login/",
        {"username": "demo@sluice.local", "password": "sluice-demo"},
        headers={"X-CSRFToken": session.cookies["csrftoken"]},
        timeout=10,
    )
    organization = session.get(f"{base_url}/api/v1/orgs/", timeout=10).json()["results"][0]
    regions = session.get(f"{base_url}/api/v1/catalog/", timeout=10).json()["regions"]
    assert regions == ["eu-west-1", "us-east-1"]
    clusters = f"{base_url}/api/v1/orgs/{organization['id']}/clusters/"
    created = session.post(
        clusters,
        json={"name": "first", "type": "serverless", "region": "eu-west-1"},
        headers={"X-CSRFToken": session.cookies["csrftoken"]},
        timeout=10,
    )
    assert created.status_code == 202, created.text
    cluster_url = f"{clusters}{created.json()['cluster']['id']}/"
    wait_for(
        lambda: session.get(cluster_url, timeout=10).json()["state"] == "ready",
        timeout=60,
        what="the cluster to turn ready under make run",
    )
    assert session.get(cluster_url, timeout=10).json()["connection"]["bootstrap_servers"]
