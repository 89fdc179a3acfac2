"""A real Celery worker process, consuming from the test Redis and writing to the test
database: what production runs, started the way production starts it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.processes import REPO_ROOT
from tests.support.services import stop_process, wait_for


class CeleryWorker:
    def __init__(self, *, env: dict[str, str], hostname: str = "test-worker@%h") -> None:
        self.env = env
        self.hostname = hostname
        self.log_path = Path(tempfile.mkstemp(prefix="sluice-worker-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> CeleryWorker:
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={self.hostname}",
            ],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: b"ready." in self.log_path.read_bytes(),
            timeout=60,
            what=f"Celery worker (log: {self.log_path})",
            process=self.process,
        )
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=30)
        self.log_path.unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
