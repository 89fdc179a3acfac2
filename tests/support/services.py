"""Throwaway servers for the tests: each starts on a free 127.0.0.1 port in a temporary
directory, waits until it answers, and is stopped (and its directory removed) on exit."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        with contextlib.suppress(OSError):
            if predicate():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} was not ready within {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.create_connection((LOOPBACK, port), timeout=0.5):
        return True


def stop_process(process: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 20):
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class Server:
    """A server process in its own session (so a Ctrl-C meant for pytest does not reach it)."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"sluice-{self.name}-"))
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.name}.log"

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, sig=self.stop_signal)
        shutil.rmtree(self.workdir, ignore_errors=True)

    stop_signal = signal.SIGTERM

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _spawn(self, argv: list[str], **kwargs) -> subprocess.Popen:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        return subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )


def postgres_bindir() -> Path:
    configured = os.environ.get("SLUICE_PG_BINDIR")
    if configured:
        return Path(configured)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run `make system-packages`")
    return Path(candidates[-1]).parent


class PostgresServer(Server):
    """PostgreSQL with password authentication over TCP, tuned for speed (no fsync)."""

    name = "postgres"
    user = "sluice"
    password = "sluice-test-password"
    database = "sluice"
    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown

    def start(self) -> None:
        bindir = postgres_bindir()
        run_as = self._unprivileged_user()
        datadir = self.workdir / "data"
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if run_as is not None:
            # initdb and postgres refuse to run as root.
            for path in (self.workdir, pwfile):
                os.chown(path, run_as.pw_uid, run_as.pw_gid)
        user_kwargs = {"user": run_as.pw_uid, "group": run_as.pw_gid} if run_as else {}
        subprocess.run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(datadir),
                "--username",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth-host",
                "scram-sha-256",
                "--auth-local",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            cwd=self.workdir,
            **user_kwargs,
        )
        self.process = self._spawn(
            [
                str(bindir / "postgres"),
                "-D",
                str(datadir),
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-k",
                str(self.workdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=128MB",
            ],
            cwd=self.workdir,
            **user_kwargs,
        )
        wait_for(self._accepts_queries, timeout=60, what="PostgreSQL", process=self.process)
        import psycopg

        with psycopg.connect(self.url_for("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.database}"')

    def _accepts_queries(self) -> bool:
        import psycopg

        with psycopg.connect(self.url_for("postgres"), connect_timeout=2) as connection:
            connection.execute("SELECT 1")
        return True

    @staticmethod
    def _unprivileged_user():
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                return pwd.getpwnam(name)
        raise RuntimeError("running as root and no 'postgres' user exists to run PostgreSQL")

    def url_for(self, database: str) -> str:
        return f"postgres://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for(self.database)


class RedisServer(Server):
    name = "redis"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make system-packages`")
        self.process = self._spawn(
            [
                binary,
                "--bind",
                LOOPBACK,
                "--port",
                str(self.port),
                "--dir",
                str(self.workdir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            cwd=self.workdir,
        )
        wait_for(self._answers_ping, timeout=30, what="Redis", process=self.process)

    def _answers_ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.ConnectionError:  # not listening yet
            return False

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"
