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

With ``kafka`` (a ``tests.support.kafkaenv.KafkaTestEnvironment``) the user and topic operators'
work is done for real on that broker, and Ready means what it means with Strimzi: it works.
Without it (the default) nothing but the API server is touched.

- KafkaUser: the SCRAM-SHA-512 credential is upserted with the password the Secret gives (and
  removed when the user has another authentication or none); the principal ``User:<name>``'s
  ACLs are replaced with exactly the spec's (``cluster`` is Kafka's ``kafka-cluster``, host
  ``*`` unless given); its user-entity quotas (``producer_byte_rate``, ``consumer_byte_rate``,
  ``request_percentage``, ``controller_mutation_rate``) are set, and those the spec dropped
  removed. confluent-kafka has no client-quota API, so quotas go through the broker's own
  ``kafka-configs`` tool (``kafka.admin.ConfigCommand``, a JVM: about two seconds), and only
  when they changed since this emulator last set them: quotas it never set for a principal
  whose spec has none are not looked for. Ready is written once the broker has the credential,
  the ACLs and the quotas. Deleting the KafkaUser removes its credential, ACLs and quotas.
- KafkaTopic: the topic is created (``replicas`` capped at the broker count: the test broker has
  one node), or its partitions increased and its topic configs made the spec's (incremental
  alteration: keys the spec dropped go back to the broker's defaults); ``topicId`` is the
  broker's. Deleting the KafkaTopic deletes the topic before the finalizer is removed.
- What Kafka refuses is a ``NotReady`` condition, as the operators report it: reason
  ``KafkaError`` (the topic operator's) or ``KafkaException`` (the user operator's exception
  name), ``NotSupported`` for fewer partitions, ``InvalidResourceException`` for a spec that
  cannot be applied, with the broker's message.

Every KafkaUser and KafkaTopic of every namespace goes to the one test broker, so their names
must not collide across namespaces; those of a namespace being deleted (an earlier test's) are
left alone, except that a KafkaTopic's deletion still deletes its topic. Run one emulator per
API server: the ``strimzi_emulator`` and ``strimzi_emulator_on_kafka`` fixtures are
alternatives.
"""

from __future__ import annotations

import base64
import logging
import secrets
import shutil
import string
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramMechanism,
    UserScramCredentialDeletion,
)
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.support.kafkaenv import java, libs_dir
from tests.support.services import wait_for

if TYPE_CHECKING:
    from tests.support.kafkaenv import KafkaTestEnvironment

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

# The user operator's mapping of a KafkaUser's ACL rules to Kafka's (SimpleAclRule).
ACL_RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,  # librdkafka's name for Kafka's CLUSTER resource type
}
CLUSTER_RESOURCE_NAME = "kafka-cluster"
ACL_PATTERN_TYPES = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
ACL_PERMISSIONS = {"allow": AclPermissionType.ALLOW, "deny": AclPermissionType.DENY}
ACL_OPERATIONS = {
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
    "Create": AclOperation.CREATE,
    "Delete": AclOperation.DELETE,
    "Alter": AclOperation.ALTER,
    "Describe": AclOperation.DESCRIBE,
    "ClusterAction": AclOperation.CLUSTER_ACTION,
    "AlterConfigs": AclOperation.ALTER_CONFIGS,
    "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
    "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE,
    "All": AclOperation.ALL,
}
# KafkaUser spec.quotas fields and the user entity's quota keys.
QUOTA_KEYS = {
    "producerByteRate": "producer_byte_rate",
    "consumerByteRate": "consumer_byte_rate",
    "requestPercentage": "request_percentage",
    "controllerMutationRate": "controller_mutation_rate",
}
BROKER_TIMEOUT = 30  # seconds for one Admin API call, or for the broker to show its effect
CONFIG_COMMAND_TIMEOUT = 120
CONFIG_COMMAND_LOG4J = """\
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
"""

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


class Refused(Exception):
    """The broker refused the object, or the object cannot be applied: a NotReady condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class StrimziEmulator:
    api: client.ApiClient
    mode: str = "ready"
    reason: str = "EmulatedFailure"
    message: str = "The emulated operator was told to fail"
    delay: float = 0.0
    # Where clients reach a listener; None gives Strimzi's in-cluster service address.
    bootstrap_host: str | None = None
    # The broker KafkaUsers and KafkaTopics are applied to; None touches no broker.
    kafka: KafkaTestEnvironment | None = None
    handled: dict[str, int] = field(default_factory=dict)
    _threads: list[threading.Thread] = field(default_factory=list)
    _watches: list[watch.Watch] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _applied: dict[str, tuple[int, str]] = field(default_factory=dict)
    _node_ids: dict[str, int] = field(default_factory=dict)
    _cluster_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    # KafkaUsers (by uid) whose name this emulator applied to the broker.
    _users_on_broker: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.objects = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.broker = BrokerOperators(self.kafka) if self.kafka is not None else None

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
        if self.broker is not None:
            self.broker.close()

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
                if kind == "KafkaUser":
                    self._forget_vanished_users(listing["items"])
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
                    elif event["type"] == "DELETED":
                        self._deleted(kind, event["object"])
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
        if (
            self.broker is not None
            and kind in ("KafkaUser", "KafkaTopic")
            and self._namespace_terminating(metadata["namespace"])
        ):
            return  # an earlier test's leftovers, about to be deleted: not worth a broker's work
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

    def _namespace_terminating(self, namespace: str) -> bool:
        try:
            return self.core.read_namespace(namespace).status.phase == "Terminating"
        except ApiException as error:
            if error.status == 404:
                return True
            raise

    def _deleted(self, kind: str, item: dict) -> None:
        uid = item["metadata"]["uid"]
        with self._lock:
            self._applied.pop(uid, None)
            username = self._users_on_broker.pop(uid, None)
        if kind == "KafkaUser" and username is not None:
            self._later(self.broker.delete_user, username)

    def _forget_vanished_users(self, items: list[dict]) -> None:
        """Users deleted while no watch was open (between a watch's end and the next listing)
        get no DELETED event: the listing shows they are gone."""
        listed = {item["metadata"]["uid"] for item in items}
        with self._lock:
            vanished = {u: n for u, n in self._users_on_broker.items() if u not in listed}
            for uid in vanished:
                del self._users_on_broker[uid]
        for username in vanished.values():
            self._later(self.broker.delete_user, username)

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
        except Exception:  # a broker error outside a reconciliation: logged, never raised
            if not self._stopped.is_set():
                log.exception("emulator could not apply %s%r", function.__name__, args)

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
            status["conditions"] = [_not_ready(outcome.reason, outcome.message)]
        else:
            try:
                # With a broker, this returns once the broker has applied the object.
                details = getattr(self, f"_ready_{kind}")(item)
            except Refused as refused:
                status["conditions"] = [_not_ready(refused.reason, refused.message)]
            else:
                status["conditions"] = [
                    {"type": "Ready", "status": "True", "lastTransitionTime": _now()}
                ]
                status.update(details)
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
        metadata, spec = item["metadata"], item.get("spec") or {}
        name = metadata["name"]
        authentication = spec.get("authentication") or {}
        password = None
        if authentication.get("type") == "scram-sha-512":
            password = self._ensure_user_secret(item, authentication)
        if self.broker is not None:
            acls = acl_bindings(name, spec.get("authorization"))
            quotas = quota_configs(spec.get("quotas"))
            with self._lock:
                self._users_on_broker[metadata["uid"]] = name
            self.broker.apply_user(name, password, acls, quotas)
        return {"username": name, "secret": name}

    def user_quotas(self, username: str) -> dict[str, float]:
        """The broker's quotas for the user entity (needs ``kafka``)."""
        return self.broker.user_quotas(username)

    def _ensure_user_secret(self, item: dict, authentication: dict) -> str:
        """Write the user's Secret as the user operator does; the user's password."""
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
        return password

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
        topic_name = spec.get("topicName") or name
        if self.broker is not None:
            topic_id = self.broker.apply_topic(
                topic_name,
                partitions=_optional_int(spec.get("partitions")),
                replicas=_optional_int(spec.get("replicas")),
                config={
                    key: _config_value(value) for key, value in (spec.get("config") or {}).items()
                },
            )
        else:
            topic_id = previous.get("topicId") or _kafka_id()
        return {"topicName": topic_name, "topicId": topic_id}

    def _finish_topic_deletion(self, item: dict) -> None:
        metadata = item["metadata"]
        if self.broker is not None:
            # The topic goes first: if Kafka refuses, the finalizer stays (the error is logged)
            # and the next event for the KafkaTopic tries again.
            topic_name = (item.get("status") or {}).get("topicName") or (
                (item.get("spec") or {}).get("topicName") or metadata["name"]
            )
            self.broker.delete_topic(topic_name)
        remaining = [f for f in metadata.get("finalizers") or [] if f != TOPIC_FINALIZER]
        self.objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            metadata["namespace"],
            "kafkatopics",
            metadata["name"],
            {"metadata": {"finalizers": remaining or None}},
        )


def _not_ready(reason: str, message: str) -> dict:
    # As Strimzi's StatusUtils writes a failed reconciliation: a NotReady condition whose reason
    # is the exception's name.
    return {
        "type": "NotReady",
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": _now(),
    }


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


def _config_value(value) -> str:
    """A KafkaTopic config value as Kafka takes it (Strimzi allows strings, numbers, booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_config_value(part) for part in value)
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _kafka_message(error: KafkaException) -> str:
    detail = error.args[0] if error.args else error
    return detail.str() if isinstance(detail, KafkaError) else str(detail)


def _code(error: KafkaException) -> int | None:
    detail = error.args[0] if error.args else None
    return detail.code() if isinstance(detail, KafkaError) else None


def acl_bindings(username: str, authorization: dict | None) -> set[AclBinding]:
    """A KafkaUser's ``spec.authorization`` as the ACL bindings of ``User:<username>``."""
    if not authorization:
        return set()
    if authorization.get("type") != "simple":
        raise Refused(
            "InvalidResourceException",
            f"Authorization type {authorization.get('type')!r} is not supported",
        )
    principal = f"User:{username}"
    bindings = set()
    for rule in authorization.get("acls") or []:
        resource = rule.get("resource") or {}
        resource_type = ACL_RESOURCE_TYPES.get(resource.get("type"))
        pattern_type = ACL_PATTERN_TYPES.get(resource.get("patternType") or "literal")
        permission = ACL_PERMISSIONS.get(rule.get("type") or "allow")
        if resource_type is None or pattern_type is None or permission is None:
            raise Refused("InvalidResourceException", f"Invalid ACL rule: {rule}")
        if resource_type == ResourceType.BROKER:
            name, pattern_type = CLUSTER_RESOURCE_NAME, ResourcePatternType.LITERAL
        else:
            name = resource.get("name") or "*"
        # v1's list of operations; the older single ``operation`` as well.
        operations = rule.get("operations") or (
            [rule["operation"]] if rule.get("operation") else []
        )
        for operation in operations:
            if operation not in ACL_OPERATIONS:
                raise Refused("InvalidResourceException", f"Invalid ACL operation: {operation}")
            bindings.add(
                AclBinding(
                    resource_type,
                    name,
                    pattern_type,
                    principal,
                    rule.get("host") or "*",
                    ACL_OPERATIONS[operation],
                    permission,
                )
            )
    return bindings


def quota_configs(quotas: dict | None) -> dict[str, float]:
    """A KafkaUser's ``spec.quotas`` as the user entity's quota configs."""
    return {
        QUOTA_KEYS[key]: float(value)
        for key, value in (quotas or {}).items()
        if key in QUOTA_KEYS and value is not None
    }


@contextmanager
def _refusals(kafka_reason: str) -> Iterator[None]:
    """Kafka's errors, and waits for the broker that time out, as a NotReady reason."""
    try:
        yield
    except KafkaException as error:
        raise Refused(kafka_reason, _kafka_message(error)) from error
    except TimeoutError as error:
        raise Refused("TimeoutException", str(error)) from error


def _poll(probe, *, what: str, timeout: float = BROKER_TIMEOUT):
    """probe() until it returns something truthy (bounded in time); that."""
    found = []
    wait_for(lambda: found.append(probe()) or found[-1], timeout=timeout, what=what)
    return found[-1]


class BrokerOperators:
    """What Strimzi's user and topic operators do to their Kafka cluster, done to the test
    broker as its super user. Each user and topic is applied by one thread at a time."""

    def __init__(self, kafka: KafkaTestEnvironment) -> None:
        self.kafka = kafka
        self._lock = threading.Lock()
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._admin = None
        # The quotas set per user: kafka-configs refuses to delete a quota that is not set.
        self._quotas: dict[str, dict[str, float]] = {}
        self._workdir: Path | None = None
        self._closed = False

    @property
    def admin(self):
        with self._lock:
            if self._admin is None:
                # Kept for the emulator's life: a collected client cancels its futures.
                self._admin = self.kafka.admin_client()
            return self._admin

    @contextmanager
    def _serialized(self, key: str) -> Iterator[None]:
        with self._lock:
            lock = self._locks[key]
        with lock:
            yield

    def close(self) -> None:
        with self._lock:
            workdir, self._workdir = self._workdir, None
            self._closed = True
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    # users -------------------------------------------------------------------------------

    def apply_user(
        self,
        username: str,
        password: str | None,
        acls: set[AclBinding],
        quotas: dict[str, float],
    ) -> None:
        """The credential, ACLs and quotas of the spec; returns once the broker has them."""
        with self._serialized(f"user:{username}"), _refusals("KafkaException"):
            if password is None:
                self._delete_credential(username)
            else:
                self.kafka.create_scram_user(username, password)  # waits until usable
            self._replace_acls(username, acls)
            self._set_quotas(username, quotas)

    def delete_user(self, username: str) -> None:
        with self._serialized(f"user:{username}"):
            self._delete_credential(username)
            self._replace_acls(username, set())
            self._set_quotas(username, {})

    def _has_credential(self, username: str) -> bool:
        futures = self.admin.describe_user_scram_credentials([username])
        try:
            return bool(futures[username].result(timeout=BROKER_TIMEOUT).scram_credential_infos)
        except KafkaException as error:
            if _code(error) == KafkaError.RESOURCE_NOT_FOUND:
                return False
            raise

    def _delete_credential(self, username: str) -> None:
        deletion = UserScramCredentialDeletion(username, ScramMechanism.SCRAM_SHA_512)
        futures = self.admin.alter_user_scram_credentials([deletion])
        try:
            futures[username].result(timeout=BROKER_TIMEOUT)
        except KafkaException as error:
            if _code(error) != KafkaError.RESOURCE_NOT_FOUND:  # none to delete
                raise
            return
        wait_for(
            lambda: not self._has_credential(username),
            timeout=BROKER_TIMEOUT,
            what=f"the deletion of the SCRAM credential of {username}",
        )

    def acls(self, username: str) -> set[AclBinding]:
        """Every ACL binding of ``User:<username>`` on the broker."""
        match = AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            f"User:{username}",
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        return set(self.admin.describe_acls(match).result(timeout=BROKER_TIMEOUT))

    def _replace_acls(self, username: str, wanted: set[AclBinding]) -> None:
        current = self.acls(username)
        stale, missing = current - wanted, wanted - current
        if stale:
            filters = [
                AclBindingFilter(
                    binding.restype,
                    binding.name,
                    binding.resource_pattern_type,
                    binding.principal,
                    binding.host,
                    binding.operation,
                    binding.permission_type,
                )
                for binding in stale
            ]
            for future in self.admin.delete_acls(filters).values():
                future.result(timeout=BROKER_TIMEOUT)
        if missing:
            for future in self.admin.create_acls(sorted(missing)).values():
                future.result(timeout=BROKER_TIMEOUT)
        if stale or missing:
            # DescribeAcls is answered by the broker's authorizer: once it lists exactly these,
            # it applies exactly these.
            wait_for(
                lambda: self.acls(username) == wanted,
                timeout=BROKER_TIMEOUT,
                what=f"the ACLs of User:{username}",
            )

    def _set_quotas(self, username: str, wanted: dict[str, float]) -> None:
        with self._lock:
            current = self._quotas.get(username, {})
        if current == wanted:
            return  # unchanged since this emulator set them (or none, and none were set)
        removed = sorted(set(current) - set(wanted))
        args = ["--alter", "--entity-type", "users", "--entity-name", username]
        if wanted:
            quotas = ",".join(f"{key}={_number(value)}" for key, value in sorted(wanted.items()))
            args += ["--add-config", quotas]
        if removed:
            args += ["--delete-config", ",".join(removed)]
        self._config_command(args)
        with self._lock:
            if wanted:
                self._quotas[username] = dict(wanted)
            else:
                self._quotas.pop(username, None)

    def user_quotas(self, username: str) -> dict[str, float]:
        """The user entity's quotas on the broker (kafka-configs --describe)."""
        output = self._config_command(
            ["--describe", "--entity-type", "users", "--entity-name", username]
        )
        prefix = f"Quota configs for user-principal '{username}' are "
        for line in output.splitlines():
            if line.startswith(prefix):
                pairs = (part.partition("=") for part in line[len(prefix) :].split(", "))
                return {key: float(value) for key, _, value in pairs}
        return {}

    def _config_command(self, args: list[str]) -> str:
        """Kafka's kafka-configs tool (the broker's own jars), as the super user; its output."""
        workdir = self._config_workdir()
        argv = [
            java(),
            "-Xms32m",
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # a short-lived JVM: start fast rather than run fast
            f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
            "-cp",
            f"{libs_dir()}/*",
            "kafka.admin.ConfigCommand",
            "--bootstrap-server",
            self.kafka.bootstrap_servers,
            "--command-config",
            str(workdir / "admin.properties"),
            *args,
        ]
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=CONFIG_COMMAND_TIMEOUT
            )
        except subprocess.TimeoutExpired as error:
            raise Refused(
                "TimeoutException", f"kafka-configs took over {CONFIG_COMMAND_TIMEOUT}s"
            ) from error
        if result.returncode != 0:
            lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise Refused("KafkaException", lines[-1] if lines else "kafka-configs failed")
        return result.stdout

    def _config_workdir(self) -> Path:
        with self._lock:
            if self._closed:
                raise RuntimeError("the emulator has stopped")
            if self._workdir is None:
                workdir = Path(tempfile.mkdtemp(prefix="strimzi-emulator-"))  # mode 0700
                (workdir / "log4j2.properties").write_text(CONFIG_COMMAND_LOG4J)
                jaas = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{self.kafka.admin_username}" '
                    f'password="{self.kafka.admin_password}";'
                )
                config = self.kafka.client_config()
                (workdir / "admin.properties").write_text(
                    f"security.protocol={config['security.protocol']}\n"
                    f"sasl.mechanism={config['sasl.mechanism']}\n"
                    f"sasl.jaas.config={jaas}\n"
                )
                self._workdir = workdir
            return self._workdir

    # topics ------------------------------------------------------------------------------

    def apply_topic(
        self, name: str, *, partitions: int | None, replicas: int | None, config: dict[str, str]
    ) -> str:
        """Create the topic, or bring its partitions and configs to the spec's; once the broker
        serves it, its topic id."""
        with self._serialized(f"topic:{name}"), _refusals("KafkaError"):
            described = self.describe_topic(name)
            if described is None:
                self._create_topic(name, partitions, replicas, config)
            else:
                count = len(described.partitions)
                if partitions is not None and partitions < count:
                    # The topic operator's words for it.
                    raise Refused("NotSupported", "Decreasing partitions not supported")
                if partitions is not None and partitions > count:
                    futures = self.admin.create_partitions([NewPartitions(name, partitions)])
                    futures[name].result(timeout=BROKER_TIMEOUT)
                self._align_topic_config(name, config)
            wanted = partitions or 1

            def served():
                topic = self.describe_topic(name)
                if topic is None or len(topic.partitions) < wanted:
                    return None
                return topic if all(p.leader is not None for p in topic.partitions) else None

            return str(_poll(served, what=f"topic {name} on the broker").topic_id)

    def _create_topic(
        self, name: str, partitions: int | None, replicas: int | None, config: dict[str, str]
    ) -> None:
        # The test broker has one node: a replication factor above the broker count could never
        # be met (Kafka refuses it), so the spec's is capped at the number of brokers.
        brokers = len(self.admin.list_topics(timeout=BROKER_TIMEOUT).brokers)
        replication = min(replicas, brokers) if replicas and replicas > 0 else -1
        topic = NewTopic(
            name,
            num_partitions=partitions if partitions and partitions > 0 else -1,
            replication_factor=replication,
            config=config,
        )
        futures = self.admin.create_topics([topic], operation_timeout=BROKER_TIMEOUT)
        try:
            futures[name].result(timeout=BROKER_TIMEOUT)
        except KafkaException as error:
            if _code(error) != KafkaError.TOPIC_ALREADY_EXISTS:  # made meanwhile
                raise

    def topic_config(self, name: str) -> dict[str, str]:
        """The topic's own configs on the broker (not the defaults it inherits)."""
        resource = ConfigResource(ResourceType.TOPIC, name)
        entries = self.admin.describe_configs([resource])[resource].result(timeout=BROKER_TIMEOUT)
        dynamic = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        return {
            key: entry.value
            for key, entry in entries.items()
            if getattr(entry.source, "value", entry.source) == dynamic
        }

    def _align_topic_config(self, name: str, wanted: dict[str, str]) -> None:
        current = self.topic_config(name)
        changes = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in sorted(wanted.items())
            if current.get(key) != value
        ] + [
            ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
            for key in sorted(set(current) - set(wanted))
        ]
        if changes:
            resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=changes)
            futures = self.admin.incremental_alter_configs([resource])
            for future in futures.values():
                future.result(timeout=BROKER_TIMEOUT)

    def describe_topic(self, name: str):
        """The broker's TopicDescription of the topic, or None when there is no such topic."""
        futures = self.admin.describe_topics(TopicCollection([name]))
        try:
            return futures[name].result(timeout=BROKER_TIMEOUT)
        except KafkaException as error:
            if _code(error) == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            raise

    def delete_topic(self, name: str) -> None:
        """Delete the topic; returns once the broker no longer has it."""
        with self._serialized(f"topic:{name}"):
            futures = self.admin.delete_topics([name], operation_timeout=BROKER_TIMEOUT)
            try:
                futures[name].result(timeout=BROKER_TIMEOUT)
            except KafkaException as error:
                if _code(error) != KafkaError.UNKNOWN_TOPIC_OR_PART:  # none to delete
                    raise
            wait_for(
                lambda: self.describe_topic(name) is None,
                timeout=BROKER_TIMEOUT,
                what=f"the deletion of topic {name}",
            )
