"""The production driver: server-side apply to the cell's Kubernetes API under one field
manager, status read back from the Strimzi resources, deletion that waits until all is gone."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from .. import naming
from ..cell_credentials import Connection, connection_for
from ..rendering import render
from ..specs import ClusterSpec, Kind
from .base import Observation, unguarded
from .status_watch import await_reports, reported

FIELD_MANAGER = "sluice"
STRIMZI = naming.KAFKA_API_VERSION
# Kinds Sluice may have written for a cluster inside a namespace, in the order they are deleted
# when pruned; the dedicated namespace itself goes last. The RoleBinding that lets Sluice write
# in that namespace is not among them: it goes with the namespace (deleted first, it would lock
# Sluice out of what the namespace still holds).
PRUNABLE = [
    (STRIMZI, "KafkaUser"),
    (STRIMZI, "KafkaTopic"),
    ("v1", "Secret"),
    (STRIMZI, "KafkaNodePool"),
    (STRIMZI, "Kafka"),
    ("v1", "ConfigMap"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
]
# What a serverless cluster writes beside its cell's shared Kafka (and all Sluice may list there).
BESIDE_SHARED_KAFKA = {"KafkaUser", "KafkaTopic", "Secret"}
# How long a run waits for a RoleBinding it applied to be in force (the API server's RBAC
# cache follows writes closely, but not within the same instant).
BINDING_IN_FORCE_SECONDS = 10.0
STILL_WORKING = {"Creating", ""}
# (apiVersion, kind, name, namespace) -> the object as the API server has it, or None.
Lookup = Callable[[str, str, str, str], dict | None]

# Clients by (credentials' fingerprint, timeout), built under the lock.
CACHED_CONNECTIONS = 64
_lock = threading.Lock()
_api_clients: OrderedDict[tuple[str, float], client.ApiClient] = OrderedDict()
_dynamic_clients: OrderedDict[tuple[str, float], dynamic.DynamicClient] = OrderedDict()


# A spec, its manifests, and the API server's answer to each Strimzi one, by _key.
Applied = tuple[ClusterSpec, list[dict], dict[tuple[str, str, str], dict]]


class BindingNotInForce(RuntimeError):
    """The RoleBinding Sluice applied in a namespace did not take effect in time (retried)."""


def _api_client(connection: Connection, timeout: float) -> client.ApiClient:
    return _cached(
        _api_clients,
        (connection.fingerprint, timeout),
        lambda: _new_api_client(connection, timeout),
    )


def _dynamic(connection: Connection, timeout: float) -> dynamic.DynamicClient:
    # Discovery once per connection and process.
    return _cached(
        _dynamic_clients,
        (connection.fingerprint, timeout),
        lambda: dynamic.DynamicClient(_api_client(connection, timeout)),
    )


def _cached(clients: OrderedDict, key: tuple[str, float], make: Callable[[], Any]):
    """The cache's client for the key, made when missing; the least recently used is dropped
    beyond CACHED_CONNECTIONS (replaced credentials leave theirs behind)."""
    if key not in clients:
        clients[key] = make()
    clients.move_to_end(key)
    while len(clients) > CACHED_CONNECTIONS:
        clients.popitem(last=False)
    return clients[key]


def _new_api_client(connection: Connection, timeout: float) -> client.ApiClient:
    configuration = client.Configuration()
    kubeconfig = connection.kubeconfig()
    if kubeconfig is not None:
        config.load_kube_config_from_dict(kubeconfig, client_configuration=configuration)
    elif connection.kubeconfig_path:
        config.load_kube_config(
            config_file=connection.kubeconfig_path, client_configuration=configuration
        )
    else:
        config.load_incluster_config(client_configuration=configuration)
    api = client.ApiClient(configuration)
    # A bound on every request, discovery included: the dynamic client's discovery requests
    # take no timeout, and the REST client sends "no timeout" explicitly when none is given.
    unbounded = api.rest_client.request

    def bounded(*args, _request_timeout=None, **kwargs):
        return unbounded(*args, _request_timeout=_request_timeout or (timeout, timeout), **kwargs)

    api.rest_client.request = bounded
    return api


def probe(connection: Connection, *, timeout: float) -> None:
    """Ask the API server its version within ``timeout`` seconds (raises when it does not
    answer). Without the dynamic client a driver builds: its discovery would wait longer."""
    with _lock:
        api = _api_client(connection, timeout)
    client.VersionApi(api).get_code(_request_timeout=(timeout, timeout))


class KubernetesDriver:
    def __init__(self, connection: Connection, *, shared_namespace: str = "") -> None:
        # An API server that does not answer fails the reconcile, which is retried with
        # backoff, instead of holding a worker forever.
        self.timeout = settings.SLUICE_KUBERNETES_TIMEOUT_SECONDS
        # Besides a cluster's dedicated namespace, the only one it can occupy: the cell's.
        self.shared_namespace = shared_namespace
        with _lock:
            self.api = _api_client(connection, self.timeout)
            self.dynamic = _dynamic(connection, self.timeout)
        # What this driver's last apply rendered and what the API server answered to each
        # manifest (the object as it stood just after: status included). observe() of the same
        # spec reads them rather than rendering again and GETting what they already show.
        self._applied: Applied | None = None

    @classmethod
    def for_cell(cls, cell) -> KubernetesDriver:
        return cls(connection_for(cell), shared_namespace=cell.shared_kafka_namespace)

    def _resource(self, api_version: str, kind: str):
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    # apply -------------------------------------------------------------------------------

    def apply(
        self, spec: ClusterSpec, *, prune: bool = True, guard: Callable[[], None] = unguarded
    ) -> None:
        manifests = render(spec)
        self._applied = None
        answers = self.apply_manifests(manifests, guard=guard)
        self._applied = (spec, manifests, answers)
        if prune:  # one LIST per kind and namespace: skipped when nothing can be stale
            self._prune(spec, keep={_key(m) for m in manifests}, guard=guard)

    def apply_manifests(
        self, manifests: list[dict], *, guard: Callable[[], None]
    ) -> dict[tuple[str, str, str], dict]:
        """Server-side apply each manifest in turn, a namespace's RoleBinding in force before
        anything is written in that namespace; returns the API server's answers for the
        Strimzi objects (each with its status, read by ``observe``)."""
        answers: dict[tuple[str, str, str], dict] = {}
        just_bound = False
        for manifest in manifests:
            guard()
            resource = self._resource(manifest["apiVersion"], manifest["kind"])
            if just_bound:
                self._wait_in_force(resource, manifest["metadata"]["namespace"])
                just_bound = False
            answer = resource.server_side_apply(
                body=manifest,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                _request_timeout=self.timeout,
            )
            if manifest["apiVersion"] == STRIMZI:
                answers[_key(manifest)] = answer.to_dict()
            just_bound = manifest["kind"] == "RoleBinding"
        return answers

    def _wait_in_force(self, resource, namespace: str) -> None:
        """Until the API server lets Sluice's account apply ``resource`` in the namespace whose
        RoleBinding it has just applied (asked of the API server as that account)."""
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace, group=resource.group, resource=resource.name, verb="patch"
                )
            )
        )
        authorization = client.AuthorizationV1Api(self.api)
        deadline = time.monotonic() + BINDING_IN_FORCE_SECONDS
        while not authorization.create_self_subject_access_review(
            review, _request_timeout=self.timeout
        ).status.allowed:
            if time.monotonic() > deadline:
                raise BindingNotInForce(
                    f"the RoleBinding in {namespace} does not let Sluice patch {resource.name}"
                )
            time.sleep(0.05)

    def _prune(
        self, spec: ClusterSpec, keep: set[tuple[str, str, str]], guard: Callable[[], None]
    ) -> None:
        """Delete what Sluice wrote for this cluster earlier but no longer renders: a deleted
        topic or credential, or everything of its old placement after a change of tier."""
        for api_version, kind, item in self._written_for(spec):
            key = (kind, item.metadata.namespace or "", item.metadata.name)
            if key not in keep and item.metadata.deletionTimestamp is None:
                guard()
                self._delete(api_version, kind, item.metadata.name, item.metadata.namespace)

    def _written_for(self, spec: ClusterSpec) -> Iterator[tuple[str, str, Any]]:
        """Every object Sluice wrote for the cluster, wherever it can be: the cell's shared
        namespace and the cluster's dedicated one, the namespace itself last (Sluice's account
        may list nowhere else). Inside a dedicated namespace being deleted nothing is listed
        (Sluice's binding there goes with it): the namespace stands for all it still holds."""
        dedicated = self._dedicated_namespace(spec)
        shared = {self.shared_namespace}
        if spec.shared_kafka is not None:
            shared.add(spec.shared_kafka.namespace)
        shared.discard("")
        for api_version, kind in PRUNABLE:
            namespaces = set(shared) if kind in BESIDE_SHARED_KAFKA else set()
            if dedicated is not None and dedicated.metadata.deletionTimestamp is None:
                namespaces.add(dedicated.metadata.name)
            for namespace in sorted(namespaces):
                for item in self._labelled(api_version, kind, namespace, spec):
                    yield api_version, kind, item
        if dedicated is not None:
            yield "v1", "Namespace", dedicated

    def _dedicated_namespace(self, spec: ClusterSpec):
        """The cluster's dedicated namespace, if there is one and Sluice made it for it."""
        name = naming.dedicated_namespace(spec.cluster_id)
        try:
            found = self._resource("v1", "Namespace").get(name=name, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        labels = found.metadata.labels or {}
        ours = (
            labels.get(naming.MANAGED_BY_LABEL) == naming.MANAGED_BY
            and labels.get(naming.CLUSTER_LABEL) == spec.cluster_id
        )
        return found if ours else None

    def _labelled(self, api_version: str, kind: str, namespace: str, spec: ClusterSpec) -> list:
        """What Sluice itself wrote for the cluster in the namespace. Strimzi copies a
        resource's labels onto the objects it makes from it (pods, claims, its Secrets), all but
        managed-by: the selector includes managed-by=sluice so that those are never touched."""
        selector = naming.cluster_selector(spec)
        try:
            return (
                self._resource(api_version, kind)
                .get(namespace=namespace, label_selector=selector, _request_timeout=self.timeout)
                .items
            )
        except ApiException as error:
            if error.status == 404:  # the namespace is gone already
                return []
            raise

    def _delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> None:
        try:
            self._resource(api_version, kind).delete(
                name=name, namespace=namespace, _request_timeout=self.timeout
            )
        except ApiException as error:
            if error.status != 404:
                raise

    # observe -----------------------------------------------------------------------------

    def observe(self, spec: ClusterSpec, *, lookup: Lookup | None = None) -> Observation:
        """``lookup`` finds an object among those already listed (a cell's resync) instead of
        asking the API server for each."""
        get = lookup or self._get
        namespace = naming.namespace_for(spec)
        conditions: list[dict] = []
        converged = ready = True
        failure: dict | None = None
        bootstrap, tls = "", True
        applied = self._applied if self._applied and self._applied[0] is spec else None
        manifests, answers = (applied[1], applied[2]) if applied else (render(spec), {})
        if answers and lookup is None:
            await_reports(
                self.dynamic,
                answers,
                budget=settings.SLUICE_RECONCILE_STATUS_WAIT_SECONDS,
                connect_timeout=self.timeout,
            )
        for manifest in manifests:
            if manifest["apiVersion"] != STRIMZI:
                continue
            name = manifest["metadata"]["name"]
            found = answers.get(_key(manifest))
            if found is None or not reported(found):  # the operator may have caught up since
                found = get(manifest["apiVersion"], manifest["kind"], name, namespace)
            status = (found or {}).get("status") or {}
            generation = ((found or {}).get("metadata") or {}).get("generation")
            seen = found is not None and status.get("observedGeneration") == generation
            converged &= seen
            if manifest["kind"] == "KafkaNodePool":
                continue  # Strimzi reports readiness on the Kafka, not on its pools
            object_ready, object_failure, object_conditions = _readiness(manifest, status)
            conditions.extend(object_conditions)
            ready &= seen and object_ready
            failure = failure or (object_failure if seen else None)
            if manifest["kind"] == "Kafka":
                bootstrap, tls = _bootstrap(found or {})
        if spec.kind == Kind.SERVERLESS:
            shared = get(STRIMZI, "Kafka", naming.kafka_name(spec), namespace) or {}
            # A shared Kafka in trouble is the platform's to fix: its tenants' clusters wait
            # (not ready) rather than fail.
            shared_ready, _platform_failure, _shared_conditions = _readiness(
                shared or {"kind": "Kafka", "metadata": {"name": naming.kafka_name(spec)}},
                shared.get("status") or {},
            )
            # The shared Kafka's own conditions are the platform's, not the tenant's: its
            # cluster is told only whether the cell can serve it.
            conditions.append(_cell_condition(shared_ready))
            ready &= shared_ready
            bootstrap, tls = _bootstrap(shared)
        return Observation(
            converged=converged,
            ready=ready and converged,
            bootstrap_servers=bootstrap,
            bootstrap_tls=tls,
            conditions=conditions,
            failed=failure is not None,
            reason=(failure or {}).get("reason", ""),
            message=(failure or {}).get("message", ""),
        )

    def _get(self, api_version: str, kind: str, name: str, namespace: str) -> dict | None:
        try:
            found = self._resource(api_version, kind).get(
                name=name, namespace=namespace, _request_timeout=self.timeout
            )
            return found.to_dict()
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    # delete ------------------------------------------------------------------------------

    def delete(self, spec: ClusterSpec, *, guard: Callable[[], None] = unguarded) -> bool:
        """Delete everything carrying the cluster's label, where it can be; done when nothing
        is left (terminating namespaces and topics held by the topic operator's finalizer are
        still there, so the caller looks again)."""
        remaining = False
        for api_version, kind, item in self._written_for(spec):
            remaining = True
            if item.metadata.deletionTimestamp is None:
                guard()
                self._delete(api_version, kind, item.metadata.name, item.metadata.namespace)
        return not remaining


def _key(manifest: dict) -> tuple[str, str, str]:
    metadata = manifest["metadata"]
    return (manifest["kind"], metadata.get("namespace", ""), metadata["name"])


def _readiness(manifest: dict, status: dict) -> tuple[bool, dict | None, list[dict]]:
    conditions = []
    ready, failure = False, None
    for condition in status.get("conditions") or []:
        entry = {
            "type": condition.get("type", ""),
            "status": condition.get("status", ""),
            "reason": condition.get("reason", ""),
            "message": condition.get("message", ""),
            "object": f"{manifest['kind']}/{manifest['metadata']['name']}",
        }
        conditions.append(entry)
        if entry["type"] == "Ready" and entry["status"] == "True":
            ready = True
        # Strimzi reports a failed reconciliation as NotReady=True, the reason being the
        # error's name; while it is still creating the cluster the reason is "Creating".
        if entry["type"] == "NotReady" and entry["status"] == "True":
            ready = False
            if entry["reason"] not in STILL_WORKING:
                failure = entry
    return ready, failure, conditions


def _cell_condition(shared_ready: bool) -> dict:
    return {
        "type": "CellReady",
        "status": "True" if shared_ready else "False",
        "reason": "SharedKafkaReady" if shared_ready else "SharedKafkaUnavailable",
        "message": "The cell's shared Kafka is serving clusters"
        if shared_ready
        else "The cell's shared Kafka is not ready; the platform is working on it",
        "object": "cell",
    }


def _bootstrap(kafka: dict) -> tuple[str, bool]:
    """Where clients connect, and whether with TLS: a TLS listener with SCRAM (a dedicated
    cluster's external load balancer, or one the platform gave its shared Kafka) when Strimzi
    reports its address, else the SCRAM listener named by ``bootstrap_listener_name``."""
    reported = {
        listener.get("name"): listener.get("bootstrapServers", "")
        for listener in (kafka.get("status") or {}).get("listeners") or []
    }
    candidates = []
    for listener in ((kafka.get("spec") or {}).get("kafka") or {}).get("listeners") or []:
        name = listener.get("name")
        scram = (listener.get("authentication") or {}).get("type") == "scram-sha-512"
        if not (scram and reported.get(name)):
            continue
        tls = bool(listener.get("tls"))
        preferred = (tls, name == naming.bootstrap_listener_name())
        candidates.append((preferred, reported[name], tls))
    if not candidates:
        return reported.get(naming.bootstrap_listener_name(), ""), True
    _, address, tls = max(candidates, key=lambda candidate: candidate[0])
    return address, tls
