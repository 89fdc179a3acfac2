"""Load generators for throughput: wrk when it is installed (or can be, from Debian's
packages), Python threads otherwise. Each run is bounded by a request count and by time, and
talks to 127.0.0.1 only.

Every request comes on a new connection. A keep-alive connection stays with the gunicorn worker
that accepted it, and a handful of them can all land on one worker, leaving the other idle and
halving that run's throughput at random; new connections are spread over the workers by
whichever is free to accept, as a load balancer in front would spread requests."""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.bench.stats import percentile

INSTALL_TIMEOUT = 240
NEW_CONNECTION_EACH_REQUEST = {"Connection": "close"}


@dataclass
class LoadResult:
    tool: str
    requests: int
    failures: int  # answers other than 200, and transport errors
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "per_second": round(self.per_second, 1)}


def ensure_wrk() -> str | None:
    """wrk's path, installing Debian's package when it is missing and apt can be used; None
    when it cannot be had (the Python load generator is used then)."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get"):
        return found
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            return None
        prefix = ["sudo", "-n"]  # never prompt: no password, no wrk
    install = [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # The package lists may be missing or stale: refresh them once if the first try fails.
    for step in ([install], [[*prefix, "apt-get", "update", "-qq"], install]):
        try:
            for argv in step:
                subprocess.run(
                    argv, check=True, capture_output=True, timeout=INSTALL_TIMEOUT, env=environment
                )
        except (OSError, subprocess.SubprocessError):
            continue
        return shutil.which("wrk")
    return None


# Each thread counts its answers and stops at its share of the request budget; the monotonic
# clock (through LuaJIT's FFI) times first request to last answer, because wrk itself always
# reports its full -d duration, however early its threads stopped.
WRK_SCRIPT = """
local has_ffi, ffi = pcall(require, "ffi")
if has_ffi then
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *now);
  ]]
end
local function now_us()
  if not has_ffi then return 0 end
  local now = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, now)  -- CLOCK_MONOTONIC
  return tonumber(now.tv_sec) * 1000000 + tonumber(now.tv_nsec) / 1000
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  budget = tonumber(args[1])
  answered, refused, first_us, last_us = 0, 0, 0, 0
  -- Further arguments are paths to take in turn (a mix of requests); none: the URL's own.
  paths, sent = {}, 0
  for index = 2, #args do table.insert(paths, args[index]) end
end

function request()
  if first_us == 0 then first_us = now_us() end
  if #paths == 0 then return wrk.request() end
  sent = sent + 1
  return wrk.format(nil, paths[(sent % #paths) + 1])
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then refused = refused + 1 end
  last_us = now_us()
  if answered >= budget then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local first, last, total, bad = nil, 0, 0, 0
  for _, thread in ipairs(threads) do
    local started = thread:get("first_us")
    if started > 0 and (first == nil or started < first) then first = started end
    if thread:get("last_us") > last then last = thread:get("last_us") end
    total = total + thread:get("answered")
    bad = bad + thread:get("refused")
  end
  local elapsed = summary.duration
  if first ~= nil and last > first then elapsed = last - first end
  local errors = summary.errors
  io.write(string.format(
    "BENCH answered=%d refused=%d transport_errors=%d elapsed_us=%d p50_us=%d p99_us=%d\\n",
    total, bad, errors.connect + errors.read + errors.write + errors.timeout, elapsed,
    latency:percentile(50), latency:percentile(99)))
end
"""
WRK_LINE = re.compile(
    r"BENCH answered=(\d+) refused=(\d+) transport_errors=(\d+) elapsed_us=(\d+) "
    r"p50_us=(\d+) p99_us=(\d+)"
)


class WrkLoad:
    def __init__(self, binary: str, *, threads: int, connections: int) -> None:
        self.binary = binary
        self.threads = max(1, min(threads, connections))
        self.connections = connections
        version = subprocess.run(
            [binary, "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        self.tool = (version.splitlines() or ["wrk"])[0].split(" Copyright")[0].strip()

    def run(
        self,
        url: str,
        *,
        headers: dict[str, str],
        max_requests: int,
        max_seconds: float,
        paths: tuple[str, ...] = (),
    ) -> LoadResult:
        """GET ``url``, or, with ``paths``, each of them in turn on ``url``'s server."""
        with tempfile.TemporaryDirectory(prefix="sluice-wrk-") as directory:
            script = Path(directory) / "bounded.lua"
            script.write_text(WRK_SCRIPT)
            argv = [
                self.binary,
                f"--threads={self.threads}",
                f"--connections={self.connections}",
                f"--duration={math.ceil(max_seconds)}s",
                "--timeout=10s",
                f"--script={script}",
            ]
            for name, value in {**headers, **NEW_CONNECTION_EACH_REQUEST}.items():
                argv += ["--header", f"{name}: {value}"]
            argv += [url, "--", str(math.ceil(max_requests / self.threads)), *paths]
            finished = subprocess.run(
                argv, capture_output=True, text=True, timeout=max_seconds + 60, check=False
            )
        match = WRK_LINE.search(finished.stdout)
        if finished.returncode != 0 or match is None:
            raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr.strip()}")
        answered, refused, transport, elapsed_us, p50_us, p99_us = map(int, match.groups())
        return LoadResult(
            tool=self.tool,
            requests=answered,
            failures=refused + transport,
            seconds=elapsed_us / 1e6,
            p50_ms=p50_us / 1e3,
            p99_ms=p99_us / 1e3,
        )


class ThreadLoad:
    """Threads sharing one request budget and one deadline."""

    tool = "python threads (http.client)"

    def __init__(self, *, connections: int) -> None:
        self.connections = connections
        self.threads = connections

    def run(
        self,
        url: str,
        *,
        headers: dict[str, str],
        max_requests: int,
        max_seconds: float,
        paths: tuple[str, ...] = (),
    ) -> LoadResult:
        """GET ``url``, or, with ``paths``, each of them in turn on ``url``'s server."""
        target = urlsplit(url)
        mix = paths or (target.path + (f"?{target.query}" if target.query else ""),)
        lock = threading.Lock()
        issued = 0
        latencies: list[float] = []
        failures = 0
        deadline = time.monotonic() + max_seconds

        request_headers = {**headers, **NEW_CONNECTION_EACH_REQUEST}

        def client() -> None:
            nonlocal issued, failures
            mine: list[float] = []
            failed = 0
            try:
                while time.monotonic() < deadline:
                    with lock:
                        if issued >= max_requests:
                            break
                        issued += 1
                        path = mix[issued % len(mix)]
                    started = time.perf_counter()
                    connection = http.client.HTTPConnection(
                        target.hostname, target.port, timeout=10
                    )
                    try:
                        connection.request("GET", path, headers=request_headers)
                        response = connection.getresponse()
                        response.read()
                        ok = response.status == 200
                    except (OSError, http.client.HTTPException):
                        ok = False
                    finally:
                        connection.close()
                    mine.append(time.perf_counter() - started)
                    failed += not ok
            finally:
                with lock:
                    latencies.extend(mine)
                    failures += failed

        started = time.perf_counter()
        workers = [threading.Thread(target=client, daemon=True) for _ in range(self.connections)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=max_seconds + 30)
        elapsed = time.perf_counter() - started
        with lock:
            return LoadResult(
                tool=self.tool,
                requests=len(latencies),
                failures=failures,
                seconds=elapsed,
                p50_ms=percentile(latencies, 50) * 1e3,
                p99_ms=percentile(latencies, 99) * 1e3,
            )


def load_generator(*, connections: int, threads: int) -> WrkLoad | ThreadLoad:
    """wrk if it can be had, else Python threads (SLUICE_BENCH_LOADGEN=python forces them)."""
    binary = None
    if os.environ.get("SLUICE_BENCH_LOADGEN") != "python":
        with contextlib.suppress(OSError):
            binary = ensure_wrk()
    if binary:
        return WrkLoad(binary, threads=threads, connections=connections)
    return ThreadLoad(connections=connections)
