"""The harness behind `make test`: no tests collected is a failure, and the servers it started
are gone afterwards whether the tests pass, fail, or are interrupted with Ctrl-C."""

import os
import re
import signal
import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT, clean_environment
from tests.support.services import port_open, wait_for

SERVICES_LINE = re.compile(r"PostgreSQL on 127\.0\.0\.1:(\d+), Redis on 127\.0\.0\.1:(\d+)")


def runner(*pytest_args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.runner", "-p", "no:cacheprovider", *pytest_args],
        cwd=REPO_ROOT,
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def assert_servers_stopped(output: str) -> None:
    match = SERVICES_LINE.search(output)
    assert match, output
    for port in map(int, match.groups()):
        with pytest.raises(ConnectionRefusedError):
            port_open(port)


def test_no_tests_collected_fails():
    process = runner("tests/test_layout.py", "-k", "no_such_test_name")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output
    assert "collected no tests: that is a failure" in output
    assert_servers_stopped(output)


def test_a_failing_test_fails_the_run_and_stops_the_servers(tmp_path):
    failing = tmp_path / "test_fails.py"
    failing.write_text("def test_fails():\n    assert 1 == 2\n")
    process = runner("--rootdir", str(REPO_ROOT), str(failing))
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output
    assert "1 failed" in output
    assert_servers_stopped(output)


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_servers(tmp_path):
    started = tmp_path / "started"
    blocking = tmp_path / "test_blocks.py"
    blocking.write_text(
        "import pathlib, time\n\n"
        "def test_blocks():\n"
        f"    pathlib.Path({str(started)!r}).touch()\n"
        "    time.sleep(60)\n"
    )
    process = runner(
        "--rootdir",
        str(REPO_ROOT),
        str(blocking),
        start_new_session=True,
        # A terminal's Ctrl-C, even when this run itself was started in the background, where
        # the shell has SIGINT ignored and a child would inherit that.
        preexec_fn=_sigint_default,
    )
    wait_for(started.exists, timeout=60, what="the nested test run", process=process)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted: stopping the test services" in output
    assert_servers_stopped(output)


KUBE_LINE = re.compile(r"kube-apiserver on 127\.0\.0\.1:(\d+), etcd on 127\.0\.0\.1:(\d+)")


@pytest.mark.kube
def test_the_kubernetes_servers_stop_when_their_tests_fail(tmp_path):
    failing = tmp_path / "test_kube_fails.py"
    failing.write_text("def test_fails(kube):\n    assert kube.port == 0\n")
    process = runner("--rootdir", str(REPO_ROOT), "-p", "tests.conftest", "-s", str(failing))
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1, output
    assert "1 failed" in output
    match = KUBE_LINE.search(output)
    assert match, output
    for port in map(int, match.groups()):
        with pytest.raises(ConnectionRefusedError):
            port_open(port)
