"""Create-to-ready, as a customer sees it: POST a serverless cluster, get 202, poll the
cluster until its state is "ready". Bounded per create and per phase."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field

import requests

from tests.bench.loadgen import NEW_CONNECTION_EACH_REQUEST

REQUEST_TIMEOUT = 30  # seconds for one HTTP answer


class BenchError(Exception):
    """Something that makes a measurement meaningless: the run fails, after reporting."""


class PhaseTimeUp(Exception):
    """The phase's time budget ran out before this create could start."""


class ClusterApi:
    """One client of the clusters API."""

    def __init__(self, base_url: str, organization_id: str, api_key: str) -> None:
        self.collection = f"{base_url}/api/v1/orgs/{organization_id}/clusters/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        # A new connection per request, so that concurrent clients are spread over the web
        # workers (see loadgen.py) rather than pinned to whichever accepted them first.
        self.session.headers.update(NEW_CONNECTION_EACH_REQUEST)

    def create(self, name: str, *, region: str) -> dict:
        response = self.session.post(
            self.collection,
            json={"name": name, "type": "serverless", "region": region},
            timeout=REQUEST_TIMEOUT,
        )
        if response.status_code != 202:
            raise BenchError(f"POST answered {response.status_code}: {response.text[:300]}")
        return response.json()["cluster"]

    def state(self, cluster_id: str) -> str:
        response = self.session.get(f"{self.collection}{cluster_id}/", timeout=REQUEST_TIMEOUT)
        if response.status_code != 200:
            raise BenchError(f"GET answered {response.status_code}: {response.text[:300]}")
        return response.json()["state"]

    def close(self) -> None:
        self.session.close()


@dataclass
class CreateSample:
    name: str
    cluster_id: str
    sent_at: float  # wall clock, to line up with the database's timestamps
    seen_ready_at: float  # wall clock
    accepted_seconds: float  # POST sent -> 202 read
    ready_seconds: float  # POST sent -> a GET showed "ready"
    polls: int


def create_until_ready(
    api: ClusterApi, name: str, *, region: str, poll_interval: float, timeout: float
) -> CreateSample:
    sent_at = time.time()
    started = time.perf_counter()
    cluster = api.create(name, region=region)
    accepted = time.perf_counter() - started
    polls = 0
    while True:
        state = api.state(cluster["id"])
        polls += 1
        if state == "ready":
            break
        if state == "failed":
            raise BenchError(f"{cluster['id']} failed")
        if time.perf_counter() - started >= timeout:
            raise BenchError(f"{cluster['id']} was still {state} {timeout:.0f}s after its POST")
        time.sleep(poll_interval)
    return CreateSample(
        name=name,
        cluster_id=cluster["id"],
        sent_at=sent_at,
        seen_ready_at=time.time(),
        accepted_seconds=accepted,
        ready_seconds=time.perf_counter() - started,
        polls=polls,
    )


@dataclass
class Phase:
    name: str
    clients: int
    requested: int
    samples: list[CreateSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_started: int = 0
    wall_seconds: float = 0.0


def run_phase(
    name: str,
    new_api,
    cluster_names: list[str],
    *,
    clients: int,
    region: str,
    poll_interval: float,
    create_timeout: float,
    phase_timeout: float,
) -> Phase:
    """Create every named cluster, ``clients`` at a time, each client waiting for its cluster
    to be ready before creating the next. No create starts after ``phase_timeout``."""
    phase = Phase(name=name, clients=clients, requested=len(cluster_names))
    deadline = time.monotonic() + phase_timeout
    per_thread = threading.local()
    lock = threading.Lock()
    apis: list[ClusterApi] = []

    def one(cluster_name: str) -> CreateSample:
        if time.monotonic() >= deadline:
            raise PhaseTimeUp
        api = getattr(per_thread, "api", None)
        if api is None:
            api = per_thread.api = new_api()
            with lock:
                apis.append(api)
        return create_until_ready(
            api, cluster_name, region=region, poll_interval=poll_interval, timeout=create_timeout
        )

    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=clients, thread_name_prefix=f"bench-{name}")
    try:
        futures = {pool.submit(one, cluster_name): cluster_name for cluster_name in cluster_names}
        # Every create is bounded by its own timeout; this bounds the whole phase as well.
        overall = phase_timeout + create_timeout + 2 * REQUEST_TIMEOUT
        for future in as_completed(futures, timeout=overall):
            try:
                phase.samples.append(future.result())
            except PhaseTimeUp:
                phase.not_started += 1
            except Exception as error:
                phase.errors.append(f"{futures[future]}: {error}")
    except FuturesTimeout:
        phase.errors.append(f"the phase did not finish within {overall:.0f}s")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        phase.wall_seconds = time.perf_counter() - started
        for api in apis:
            api.close()
    if phase.not_started:
        phase.errors.append(
            f"{phase.not_started} creates never started: the phase's {phase_timeout:.0f}s ran out"
        )
    return phase


# Where the time goes ----------------------------------------------------------------------------

TASK_SUCCEEDED = re.compile(
    r"clusters\.tasks\.reconcile_cluster\[[0-9a-f-]+\] succeeded in ([0-9.]+)s"
)
TASK_RETRIED = re.compile(r"clusters\.tasks\.reconcile_cluster\[[0-9a-f-]+\] retry")


def reconcile_task_seconds(worker_logs: list[str]) -> tuple[list[float], int]:
    """Run times of the reconcile tasks the workers finished, and how many they retried, from
    Celery's own log lines."""
    runs = [float(m) for log in worker_logs for m in TASK_SUCCEEDED.findall(log)]
    retries = sum(len(TASK_RETRIED.findall(log)) for log in worker_logs)
    return runs, retries


def server_timestamps(samples: list[CreateSample]) -> dict[str, tuple[float, float | None]]:
    """Per cluster: when its row was created (web process) and when its create operation
    finished (worker: the reconcile saw it ready), as wall-clock seconds."""
    from clusters.models import Cluster, Operation

    ids = [sample.cluster_id for sample in samples]
    created = dict(
        Cluster.unscoped_all_tenants.filter(public_id__in=ids).values_list(
            "public_id", "created_at"
        )
    )
    finished = dict(
        Operation.unscoped_all_tenants.filter(
            cluster__public_id__in=ids, kind="cluster.create"
        ).values_list("cluster__public_id", "finished_at")
    )
    return {
        cluster_id: (
            created[cluster_id].timestamp(),
            finished[cluster_id].timestamp() if finished.get(cluster_id) else None,
        )
        for cluster_id in ids
        if cluster_id in created
    }
