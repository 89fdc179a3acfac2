"""A cell's listing through its Kubernetes API, for the cell's resync (clusters.resync).

Sluice's account may list only beside the cell's shared Kafka and inside the dedicated
namespaces it binds itself in (deploy/dataplane/: no cross-namespace list, never on Secrets),
so a listing is one paginated LIST per kind beside the shared Kafka, one GET of the shared
Kafka, and per dedicated namespace one GET of the namespace and one LIST per kind in it:
kinds + 1 + (kinds + 1) per dedicated namespace requests, whatever the number of serverless
clusters. Each LIST selects managed-by=sluice: what Strimzi makes from Sluice's objects (the
users' Secrets, pods, claims) and what others made is never listed, so never touched.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from kubernetes.client.exceptions import ApiException

from .. import naming
from ..specs import ClusterSpec
from .base import Inventory, Observation, key_of
from .kubernetes import BESIDE_SHARED_KAFKA, PRUNABLE, STRIMZI, KubernetesDriver

# Objects per LIST page: bounds the API server's work and the answer's size per request.
PAGE_SIZE = 500
MANAGED = f"{naming.MANAGED_BY_LABEL}={naming.MANAGED_BY}"


class KubernetesLister:
    def __init__(self, driver: KubernetesDriver, *, shared_kafka_name: str) -> None:
        self.driver = driver
        self.shared_kafka_name = shared_kafka_name

    @classmethod
    def for_cell(cls, cell) -> KubernetesLister:
        return cls(KubernetesDriver.for_cell(cell), shared_kafka_name=cell.shared_kafka_name)

    # listing ----------------------------------------------------------------------------------

    def inventory(self, dedicated: dict[str, str]) -> Inventory:
        inventory = Inventory()
        shared = self.driver.shared_namespace
        for api_version, kind in PRUNABLE:
            if kind in BESIDE_SHARED_KAFKA:
                self._list_into(inventory, api_version, kind, shared)
        inventory.requests += 1
        inventory.shared_kafka = self.driver._get(STRIMZI, "Kafka", self.shared_kafka_name, shared)
        for namespace, cluster_id in sorted(dedicated.items()):
            inventory.requests += 1
            found = self.driver._get("v1", "Namespace", namespace, "")
            if found is None:
                inventory.absent.add(namespace)
                continue
            labels = found["metadata"].get("labels") or {}
            ours = labels.get(naming.MANAGED_BY_LABEL) == naming.MANAGED_BY and (
                labels.get(naming.CLUSTER_LABEL) == cluster_id
            )
            if not ours or found["metadata"].get("deletionTimestamp"):
                inventory.unlisted.add(namespace)
                continue
            inventory.objects[key_of(found)] = found
            try:
                for api_version, kind in PRUNABLE:
                    self._list_into(inventory, api_version, kind, namespace)
            except ApiException as error:
                if error.status != 403:
                    raise
                # Sluice's RoleBinding there is gone: its cluster is applied again whole.
                inventory.locked_out.add(namespace)
                inventory.unlisted.add(namespace)
        return inventory

    def _list_into(self, inventory: Inventory, api_version: str, kind: str, namespace: str):
        resource = self.driver._resource(api_version, kind)
        token = None
        while True:
            inventory.requests += 1
            try:
                answer = resource.get(
                    namespace=namespace,
                    label_selector=MANAGED,
                    limit=PAGE_SIZE,
                    _continue=token,
                    serialize=False,  # plain JSON: thousands of objects, no wrappers
                    _request_timeout=self.driver.timeout,
                )
            except ApiException as error:
                if error.status == 404:  # the namespace went meanwhile
                    return
                raise
            page = json.loads(answer.data)
            for item in page["items"]:  # a list's items carry neither apiVersion nor kind
                item["apiVersion"], item["kind"] = api_version, kind
                inventory.objects[key_of(item)] = item
            token = page["metadata"].get("continue")
            if not token:
                return

    # comparing and writing --------------------------------------------------------------------

    def comparable(self, manifest: dict) -> dict:
        if manifest["kind"] != "Secret" or "stringData" not in manifest:
            return manifest
        listed = {k: v for k, v in manifest.items() if k != "stringData"}
        listed["data"] = {
            **(manifest.get("data") or {}),
            **{
                key: base64.b64encode(value.encode()).decode()
                for key, value in manifest["stringData"].items()
            },
        }
        return listed

    def observe_listed(self, spec: ClusterSpec, inventory: Inventory) -> Observation:
        return self.driver.observe(spec, lookup=inventory.get)

    def apply_objects(
        self, spec: ClusterSpec, manifests: list[dict], *, guard: Callable[[], None]
    ) -> None:
        self.driver.apply_manifests(manifests, guard=guard)

    def delete_object(self, listed: dict, *, guard: Callable[[], None]) -> None:
        guard()
        metadata = listed["metadata"]
        self.driver._delete(
            listed["apiVersion"], listed["kind"], metadata["name"], metadata.get("namespace")
        )
