"""The web server of the benchmarks: gunicorn serving the Django app with production's settings
(processes and threads), on a free 127.0.0.1 port; its workers' memory as /proc tells it."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from tests.support.processes import REPO_ROOT
from tests.support.services import LOOPBACK, Server, wait_for


class GunicornServer(Server):
    name = "gunicorn"

    def __init__(self, *, env: dict[str, str]) -> None:
        super().__init__()
        self.env = env

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self.process = self._spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "controlplane.wsgi:application",
                "--config=python:controlplane.gunicorn_conf",  # production's settings
                f"--bind={LOOPBACK}:{self.port}",
                "--graceful-timeout=5",
                "--log-level=warning",
            ],
            cwd=REPO_ROOT,
            env=self.env,
        )
        try:
            wait_for(self._healthy, timeout=60, what="gunicorn", process=self.process)
        except (RuntimeError, TimeoutError) as error:
            # The log goes with the server's directory: keep its end in the error.
            raise RuntimeError(f"{error}; its log ends:\n{self.log_tail()}") from error

    def _healthy(self) -> bool:
        return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200

    def worker_pids(self) -> list[int]:
        """gunicorn's worker processes: the master's children."""
        master = str(self.process.pid)
        workers = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:  # ended meanwhile
                continue
            if f"\nPPid:\t{master}\n" in status:
                workers.append(int(entry.name))
        return sorted(workers)

    def worker_rss_mb(self) -> dict[int, float]:
        """Each worker's resident memory (VmRSS), in MiB, by pid."""
        return {pid: resident_mb(pid) for pid in self.worker_pids()}


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)  # "VmRSS:   123456 kB"
    raise RuntimeError(f"process {pid} reports no VmRSS")
