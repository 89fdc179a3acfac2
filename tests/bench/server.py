"""The web server of the benchmarks: gunicorn serving the Django app, as production does, on a
free 127.0.0.1 port, with threads so that concurrent requests are served concurrently."""

from __future__ import annotations

import sys

import requests

from tests.support.processes import REPO_ROOT
from tests.support.services import LOOPBACK, Server, wait_for


class GunicornServer(Server):
    name = "gunicorn"

    def __init__(self, *, env: dict[str, str], workers: int, threads: int) -> None:
        super().__init__()
        self.env = env
        self.workers = workers
        self.threads = threads

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
                f"--bind={LOOPBACK}:{self.port}",
                f"--workers={self.workers}",
                f"--threads={self.threads}",
                "--worker-class=gthread",
                "--timeout=60",
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
