"""The data plane's share of a serverless create, measured alone: what the reconciler sends the
Kubernetes API server for one create (the same rendered objects, server-side applied, then the
status watch until the operators report), made directly by the benchmark's clients with no web
request, no Celery task and no database. Its CPU per create (kube-apiserver, etcd and the
emulated operators) and its latency under the same concurrency are the floor any control plane
adds to on this machine: the baseline the create targets are read against."""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from clusters import naming
from clusters.drivers.kubernetes import KubernetesDriver
from clusters.specs import ClusterSpec


def spec_like(template: ClusterSpec, index: int, prefix: str) -> ClusterSpec:
    """``template`` (a real cluster's desired state) for another cluster id: its own principals,
    Secrets and KafkaUsers, exactly as a create of that cluster would render."""
    cluster_id = f"kc_{prefix}{index:06d}"
    principals = tuple(
        dataclasses.replace(
            principal,
            credential_id=cluster_id,
            username=naming.sluice_username(cluster_id, principal.role),
            password_secret=naming.sluice_password_secret_name(cluster_id, principal.role),
        )
        for principal in template.sluice_principals
    )
    return dataclasses.replace(
        template,
        cluster_id=cluster_id,
        name=f"{prefix}-{index}",
        generation=1,
        sluice_principals=principals,
    )


@dataclasses.dataclass
class FloorPhase:
    clients: int
    requested: int
    seconds: list[float] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    wall_seconds: float = 0.0


def run_data_plane_phase(
    cell,
    template: ClusterSpec,
    *,
    prefix: str,
    creates: int,
    clients: int,
    create_timeout: float,
    phase_timeout: float,
) -> FloorPhase:
    """``creates`` applies of ``template`` for new cluster ids, ``clients`` at a time, each
    until every Strimzi object reports ready (bounded per create and per phase)."""
    phase = FloorPhase(clients=clients, requested=creates)
    deadline = time.monotonic() + phase_timeout
    local = threading.local()

    def one(index: int) -> float:
        if time.monotonic() >= deadline:
            raise TimeoutError("the phase's time ran out before this create started")
        driver = getattr(local, "driver", None)
        if driver is None:
            driver = local.driver = KubernetesDriver.for_cell(cell)
        spec = spec_like(template, index, prefix)
        started = time.perf_counter()
        driver.apply(spec, prune=False)
        observation = driver.observe(spec)
        while not observation.ready:
            if observation.failed:
                raise RuntimeError(f"{spec.cluster_id} failed: {observation.message}")
            if time.perf_counter() - started >= create_timeout:
                raise TimeoutError(f"{spec.cluster_id} not ready after {create_timeout:.0f}s")
            time.sleep(0.02)
            observation = driver.observe(spec)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="bench-floor") as pool:
        futures = [pool.submit(one, index) for index in range(creates)]
        for future in as_completed(futures, timeout=phase_timeout + create_timeout + 60):
            try:
                phase.seconds.append(future.result())
            except Exception as error:
                phase.errors.append(str(error))
    phase.wall_seconds = time.perf_counter() - started
    return phase
