"""Test support: an emulator of the Strimzi operators, for the real test API server.

No Strimzi operator runs in the tests (it needs a kubelet and brokers). This emulator watches
``Kafka``, ``KafkaNodePool``, ``KafkaUser`` and ``KafkaTopic`` objects and writes what Strimzi's
cluster, user and topic operators would write, using the field names of the v1 CRDs:

- Kafka: ``conditions[type=Ready]``, ``observedGeneration``, ``listeners[]`` (``name``,
  ``addresses[].host/port``, ``bootstrapServers``), ``clusterId``, ``kafkaVersion``,
  ``kafkaMetadataVersion``, ``operatorLastSuccessfulVersion``, ``kafkaNodePools[].name``;
- KafkaNodePool: ``nodeIds``, ``clusterId``, ``roles``, ``replicas``, ``labelSelector``;
- KafkaUser: ``username``, ``secret`` and, for SCRAM-SHA-512, the user's Secret with
  ``password`` and ``sasl.jaas.config`` (owned by the KafkaUser, so deleting it deletes them);
- KafkaTopic: ``topicName``, ``topicId``, and the topic operator's finalizer, removed when the
  topic is deleted, so deletions take a moment as they do in production.

Failure modes, for provisioning tests: ``mode`` is ``ready`` (the default), ``not-ready``
(a ``NotReady`` condition with ``reason`` and ``message``, as Strimzi reports a failure) or
``never`` (no status at all); ``delay`` seconds pass before each object is handled. The
annotation ``sluice.test/emulate`` on an object overrides the mode for it: ``ready``, ``never``
or ``not-ready:<Reason>:<message>``.
"""

from __future__ import annotations

import base64
import logging
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "kafka.strimzi.io", "v1"
KINDS = {
    "Kafka": "kafkas",
    "KafkaNodePool": "kafkanodepools",
    "KafkaUser": "kafkausers",
    "KafkaTopic": "kafkatopics",
}
OVERRIDE_ANNOTATION = "sluice.test/emulate"
TOPIC_FINALIZER = "strimzi.io/topic-operator"
OPERATOR_VERSION = "1.2.0"
DEFAULT_KAFKA_VERSION = "4.1.0"

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _kafka_id() -> str:
    """Kafka's cluster and topic ids: a UUID in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class Outcome:
    mode: str
    reason: str = ""
    message: str = ""


@dataclass
class StrimziEmulator:
    api: client.ApiClient
    mode: str = "ready"
    reason: str = "EmulatedFailure"
    message: str = "The emulated operator was told to fail"
    delay: float = 0.0
    # Where clients reach a listener; None gives Strimzi's in-cluster service address.
    bootstrap_host: str | None = None
    handled: dict[str, int] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)
    _watches: list[watch.Watch] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _applied: dict[str, tuple[int, str]] = field(default_factory=dict)
    _node_ids: dict[str, int] = field(default_factory=dict)
    _cluster_ids: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.objects = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> StrimziEmulator:
        for kind, plural in KINDS.items():
            thread = threading.Thread(
                target=self._run, args=(kind, plural), name=f"emulator-{plural}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopped.set()
        for stream in list(self._watches):
            stream.stop()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> StrimziEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_mode(self, mode: str, *, reason: str = "", message: str = "") -> None:
        """Change how every object is answered from now on, and re-answer existing ones."""
        self.mode = mode
        self.reason = reason or self.reason
        self.message = message or self.message
        with self._lock:
            self._applied.clear()
        for kind, plural in KINDS.items():
            for item in self.objects.list_cluster_custom_object(GROUP, VERSION, plural)["items"]:
                self._handle(kind, item)

    # watching ----------------------------------------------------------------------------

    def _run(self, kind: str, plural: str) -> None:
        while not self._stopped.is_set():
            try:
                listing = self.objects.list_cluster_custom_object(GROUP, VERSION, plural)
                for item in listing["items"]:
                    self._handle(kind, item)
                stream = watch.Watch()
                self._watches.append(stream)
                for event in stream.stream(
                    self.objects.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    plural,
                    resource_version=listing["metadata"]["resourceVersion"],
                    timeout_seconds=30,
                ):
                    if self._stopped.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._handle(kind, event["object"])
                self._watches.remove(stream)
            except ApiException as error:
                if error.status != 410:  # 410 Gone: the watch expired; list again
                    log.warning("emulator watch of %s failed: %s", plural, error.reason)
                    time.sleep(0.2)
            except Exception:  # the API server is going away; keep trying until stopped
                if not self._stopped.is_set():
                    log.exception("emulator watch of %s failed", plural)
                    time.sleep(0.2)

    def _handle(self, kind: str, item: dict) -> None:
        metadata = item["metadata"]
        if metadata.get("deletionTimestamp"):
            if kind == "KafkaTopic" and TOPIC_FINALIZER in (metadata.get("finalizers") or []):
                self._later(self._finish_topic_deletion, item)
            return
        outcome = self._outcome(item)
        key = metadata["uid"]
        marker = (metadata.get("generation", 0), f"{outcome.mode}:{outcome.reason}")
        with self._lock:
            if self._applied.get(key) == marker:
                return
            self._applied[key] = marker
        if outcome.mode == "never":
            return
        self._later(self._reconcile, kind, item, outcome)

    def _later(self, function, *args) -> None:
        if self.delay > 0:
            timer = threading.Timer(self.delay, self._guarded, args=(function, *args))
            timer.daemon = True
            timer.start()
        else:
            self._guarded(function, *args)

    def _guarded(self, function, *args) -> None:
        try:
            function(*args)
        except ApiException as error:
            if error.status not in (404, 409):  # gone meanwhile, or changed: a later event
                log.warning("emulator could not update %s: %s", args[0], error.reason)

    def _outcome(self, item: dict) -> Outcome:
        override = (item["metadata"].get("annotations") or {}).get(OVERRIDE_ANNOTATION)
        if override:
            mode, _, rest = override.partition(":")
            reason, _, message = rest.partition(":")
            return Outcome(mode, reason or self.reason, message or self.message)
        return Outcome(self.mode, self.reason, self.message)

    # what the operators write ----------------------------------------------------------------

    def _reconcile(self, kind: str, item: dict, outcome: Outcome) -> None:
        metadata = item["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        status: dict = {"observedGeneration": metadata.get("generation", 1)}
        if outcome.mode == "not-ready":
            # As Strimzi's StatusUtils writes a failed reconciliation: a NotReady condition
            # whose reason is the exception's name.
            status["conditions"] = [
                {
                    "type": "NotReady",
                    "status": "True",
                    "reason": outcome.reason,
                    "message": outcome.message,
                    "lastTransitionTime": _now(),
                }
            ]
        else:
            status["conditions"] = [
                {"type": "Ready", "status": "True", "lastTransitionTime": _now()}
            ]
            status.update(getattr(self, f"_ready_{kind}")(item))
        self.objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, KINDS[kind], name, {"status": status}
        )
        with self._lock:
            self.handled[kind] = self.handled.get(kind, 0) + 1

    def _cluster_id(self, namespace: str, cluster: str) -> str:
        with self._lock:
            return self._cluster_ids.setdefault((namespace, cluster), _kafka_id())

    def _ready_Kafka(self, item: dict) -> dict:
        metadata, spec = item["metadata"], item.get("spec") or {}
        namespace, name = metadata["namespace"], metadata["name"]
        listeners = []
        for listener in (spec.get("kafka") or {}).get("listeners") or []:
            host = self.bootstrap_host or f"{name}-kafka-bootstrap.{namespace}.svc"
            port = listener["port"]
            listeners.append(
                {
                    "name": listener["name"],
                    "addresses": [{"host": host, "port": port}],
                    "bootstrapServers": f"{host}:{port}",
                }
            )
        pools = self.objects.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "kafkanodepools", label_selector=f"strimzi.io/cluster={name}"
        )["items"]
        version = (spec.get("kafka") or {}).get("version") or DEFAULT_KAFKA_VERSION
        return {
            "listeners": listeners,
            "clusterId": self._cluster_id(namespace, name),
            "kafkaVersion": version,
            "kafkaMetadataVersion": (spec.get("kafka") or {}).get("metadataVersion")
            or f"{version.rsplit('.', 1)[0]}-IV0",
            "operatorLastSuccessfulVersion": OPERATOR_VERSION,
            "kafkaNodePools": [{"name": pool["metadata"]["name"]} for pool in pools],
        }

    def _ready_KafkaNodePool(self, item: dict) -> dict:
        metadata, spec = item["metadata"], item.get("spec") or {}
        namespace, name = metadata["namespace"], metadata["name"]
        cluster = (metadata.get("labels") or {}).get("strimzi.io/cluster", "")
        replicas = int(spec.get("replicas", 0))
        existing = (item.get("status") or {}).get("nodeIds") or []
        node_ids = list(existing[:replicas])
        with self._lock:
            counter_key = f"{namespace}/{cluster}"
            while len(node_ids) < replicas:
                node_ids.append(self._node_ids.get(counter_key, 0))
                self._node_ids[counter_key] = node_ids[-1] + 1
        return {
            "nodeIds": node_ids,
            "clusterId": self._cluster_id(namespace, cluster),
            "roles": list(spec.get("roles") or []),
            "replicas": replicas,
            "labelSelector": (
                f"strimzi.io/cluster={cluster},strimzi.io/name={cluster}-kafka,"
                f"strimzi.io/kind=Kafka,strimzi.io/pool-name={name}"
            ),
        }

    def _ready_KafkaUser(self, item: dict) -> dict:
        name = item["metadata"]["name"]
        authentication = (item.get("spec") or {}).get("authentication") or {}
        if authentication.get("type") == "scram-sha-512":
            self._ensure_user_secret(item, authentication)
        return {"username": name, "secret": name}

    def _ensure_user_secret(self, item: dict, authentication: dict) -> None:
        metadata = item["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        reference = ((authentication.get("password") or {}).get("valueFrom") or {}).get(
            "secretKeyRef"
        )
        if reference:
            given = self.core.read_namespaced_secret(reference["name"], namespace)
            password = base64.b64decode(given.data[reference["key"]]).decode()
        else:
            try:
                existing = self.core.read_namespaced_secret(name, namespace)
                password = base64.b64decode(existing.data["password"]).decode()
            except ApiException as error:
                if error.status != 404:
                    raise
                alphabet = string.ascii_letters + string.digits
                password = "".join(secrets.choice(alphabet) for _ in range(32))
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{name}" password="{password}";'
        )
        labels = {
            "strimzi.io/kind": "KafkaUser",
            "strimzi.io/cluster": (metadata.get("labels") or {}).get("strimzi.io/cluster", ""),
            "app.kubernetes.io/managed-by": "strimzi-user-operator",
        }
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=namespace,
                labels=labels,
                owner_references=[
                    client.V1OwnerReference(
                        api_version=f"{GROUP}/{VERSION}",
                        kind="KafkaUser",
                        name=name,
                        uid=metadata["uid"],
                        controller=False,
                        block_owner_deletion=False,
                    )
                ],
            ),
            type="Opaque",
            string_data={"password": password, "sasl.jaas.config": jaas},
        )
        try:
            self.core.create_namespaced_secret(namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            self.core.replace_namespaced_secret(name, namespace, body)

    def _ready_KafkaTopic(self, item: dict) -> dict:
        metadata, spec = item["metadata"], item.get("spec") or {}
        namespace, name = metadata["namespace"], metadata["name"]
        if TOPIC_FINALIZER not in (metadata.get("finalizers") or []):
            self.objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                "kafkatopics",
                name,
                {
                    "metadata": {
                        "finalizers": [*(metadata.get("finalizers") or []), TOPIC_FINALIZER]
                    }
                },
            )
        previous = item.get("status") or {}
        return {
            "topicName": spec.get("topicName") or name,
            "topicId": previous.get("topicId") or _kafka_id(),
        }

    def _finish_topic_deletion(self, item: dict) -> None:
        metadata = item["metadata"]
        remaining = [f for f in metadata.get("finalizers") or [] if f != TOPIC_FINALIZER]
        self.objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            metadata["namespace"],
            "kafkatopics",
            metadata["name"],
            {"metadata": {"finalizers": remaining or None}},
        )
