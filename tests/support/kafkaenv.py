"""A real Kafka broker and Prometheus for the tests, as a cell runs them in production: one
Kafka node in KRaft mode (broker and controller in one process) from the Maven Central jars that
tests/support/kafka/build.sh fetches, with the Prometheus JMX exporter agent and Strimzi's
exporter rules (../shared/testenv/jmx-exporter-kafka.yaml), so metric names are a Strimzi
broker's; and Prometheus (Debian's package) scraping that exporter every second.

The exporter runs Strimzi's rules unchanged (metric names and labels as in production) with
two differences that only make a scrape cheap enough for a 1-second interval on two cores:
rules that do not read an attribute's value cache their matches (the exporter's per-rule
``cache``), and the per-request-type latency histograms of ``kafka.network:type=RequestMetrics``
are not collected (Kafka computes a snapshot for every percentile of every request type: ~5,000
of the ~6,400 series, and most of a scrape's ~0.7 s; nothing Sluice reads).

Clients authenticate with SASL/SCRAM-SHA-512 on the client listener; the administrator's
credential is bootstrapped when the storage is formatted and is a super user, and
StandardAuthorizer denies everyone else what no ACL allows. The broker's own controller and
replication listeners use SASL/PLAIN with a principal of their own. Everything listens on free
127.0.0.1 ports.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import copy
import json
import secrets
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import yaml

from tests.support.kubeenv import cache_dir, versions
from tests.support.processes import REPO_ROOT
from tests.support.services import LOOPBACK, Server, free_port, port_open, stop_process, wait_for

KAFKA_DIR = REPO_ROOT / "tests" / "support" / "kafka"
JMX_EXPORTER_CONFIG = REPO_ROOT.parent / "shared" / "testenv" / "jmx-exporter-kafka.yaml"
PROMETHEUS = Path("/usr/bin/prometheus")
ADMIN_USER = "sluice-admin"
# The broker's own principal on its controller and replication listeners.
BROKER_USER = "sluice-broker"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 4096
SCRAPE_INTERVAL = "1s"
# MBeans the exporter leaves out (see above).
EXPORTER_EXCLUDED = ["kafka.network:type=RequestMetrics,*"]

LOG4J2_PROPERTIES = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def kafka_versions() -> dict[str, str]:
    return versions(KAFKA_DIR / "versions.env")


def libs_dir() -> Path:
    """The broker's jars, fetched by build.sh once per version."""
    pinned = kafka_versions()
    libs = cache_dir() / f"kafka-{pinned['KAFKA_VERSION']}" / "libs"
    wanted = (
        f"kafka_2.13-{pinned['KAFKA_VERSION']}.jar",
        f"jmx_prometheus_javaagent-{pinned['JMX_EXPORTER_VERSION']}.jar",
        f"log4j-core-{pinned['LOG4J_VERSION']}.jar",
        f"log4j-slf4j-impl-{pinned['LOG4J_VERSION']}.jar",
    )
    if not all((libs / jar).exists() for jar in wanted):
        subprocess.run(["bash", str(KAFKA_DIR / "build.sh")], check=True)
    return libs


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise RuntimeError("java is not installed: run `make system-packages`")
    return path


def random_cluster_id() -> str:
    # Kafka's Uuid: 16 random bytes in URL-safe base64 without padding, never starting with "-".
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return response.status == 200
    except OSError:
        return False


def exporter_config(rules: dict) -> dict:
    """Strimzi's exporter configuration with rule caching and the exclusions above."""
    config = copy.deepcopy(rules)
    config["excludeObjectNames"] = [*config.get("excludeObjectNames", []), *EXPORTER_EXCLUDED]
    for rule in config["rules"]:
        # "bean<keys><>attribute: value": a rule whose pattern reads the value cannot be cached.
        if ": " not in rule["pattern"].partition("><>")[2]:
            rule.setdefault("cache", True)
    return config


def plain_jaas(username: str, password: str) -> str:
    # The broker's side accepts user_<name>; its client side logs in with username/password.
    return (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{username}" password="{password}" user_{username}="{password}";'
    )


class KafkaBroker(Server):
    """One KRaft node (broker and controller) with the JMX exporter agent. ``port`` is the
    SASL/SCRAM client listener; ``restart()`` keeps the ports and the data."""

    name = "kafka"

    def __init__(self, libs: Path, *, admin_password: str) -> None:
        super().__init__()
        self.libs = libs
        self.admin_password = admin_password
        self.broker_password = secrets.token_urlsafe(24)
        self.controller_port = free_port()
        self.replication_port = free_port()
        self.exporter_port = free_port()
        self.properties = self.workdir / "server.properties"
        self.log4j = self.workdir / "log4j2.properties"
        self.exporter_rules = self.workdir / "jmx-exporter.yaml"
        self.cluster_id = random_cluster_id()

    def start(self) -> None:
        self.prepare()
        self.launch()
        self.wait_until_ready()

    def prepare(self) -> None:
        """Write the configuration and format the storage (with the administrator's
        credential)."""
        self._configure()
        self._format_storage()

    def launch(self) -> None:
        """Start the broker process; ``wait_until_ready()`` waits for it."""
        self.process = self._spawn(
            self._java("kafka.Kafka", str(self.properties), agent=True), cwd=self.workdir
        )

    def restart(self) -> None:
        """Stop the broker (a clean shutdown) and start it again on the same ports and data.

        Now and then (about one full run in three on two busy cores) the restarted broker
        refuses every SCRAM sign-in, the administrator's included, as if its credential cache
        had not been loaded from the metadata log, while its controller runs. Not understood
        yet: the log of such a start is printed, and the broker is restarted once more, with
        the same data, before the restart counts as failed."""
        self._stop_and_launch()
        try:
            self.wait_until_ready(timeout=60)
        except TimeoutError as error:
            print(f"Kafka test broker: restarting once more after a start that {error}")
            self._stop_and_launch()
            self.wait_until_ready()

    def _stop_and_launch(self) -> None:
        if self.process is not None:
            stop_process(self.process, sig=signal.SIGTERM, timeout=60)
        self.launch()

    def _java(self, main: str, *args: str, agent: bool = False) -> list[str]:
        argv = [
            java(),
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j}",
        ]
        if agent:
            exporter = (
                self.libs
                / f"jmx_prometheus_javaagent-{kafka_versions()['JMX_EXPORTER_VERSION']}.jar"
            )
            argv.append(
                f"-javaagent:{exporter}={LOOPBACK}:{self.exporter_port}:{self.exporter_rules}"
            )
        # "libs/*" is expanded by java itself, not by a shell.
        return [*argv, "-cp", f"{self.libs}/*", main, *args]

    def _configure(self) -> None:
        if not JMX_EXPORTER_CONFIG.exists():
            raise RuntimeError(f"the JMX exporter rules are missing: {JMX_EXPORTER_CONFIG}")
        broker_jaas = plain_jaas(BROKER_USER, self.broker_password)
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{self.controller_port}",
            "listeners": (
                f"SCRAM://{LOOPBACK}:{self.port},"
                f"REPLICATION://{LOOPBACK}:{self.replication_port},"
                f"CONTROLLER://{LOOPBACK}:{self.controller_port}"
            ),
            "advertised.listeners": (
                f"SCRAM://{LOOPBACK}:{self.port},REPLICATION://{LOOPBACK}:{self.replication_port}"
            ),
            "listener.security.protocol.map": (
                "SCRAM:SASL_PLAINTEXT,REPLICATION:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
            ),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "REPLICATION",
            # Tenants: SCRAM credentials kept in the cluster metadata.
            "listener.name.scram.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "listener.name.scram.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            # The broker itself: PLAIN with a static credential (the controller listener cannot
            # use SCRAM, whose credentials live in the metadata the controller serves).
            "listener.name.replication.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.replication.plain.sasl.jaas.config": broker_jaas,
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": broker_jaas,
            "sasl.mechanism.controller.protocol": "PLAIN",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN_USER};User:{BROKER_USER}",
            "allow.everyone.if.no.acl.found": "false",
            "auto.create.topics.enable": "false",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "2",
        }
        self.properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        self.log4j.write_text(LOG4J2_PROPERTIES)
        rules = exporter_config(yaml.safe_load(JMX_EXPORTER_CONFIG.read_text()))
        self.exporter_rules.write_text(yaml.safe_dump(rules, sort_keys=False))

    def _format_storage(self) -> None:
        admin = f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={self.admin_password}]"
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                self.cluster_id,
                "--config",
                str(self.properties),
                "--add-scram",
                admin,
            ),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"formatting the Kafka storage failed:\n{result.stdout}{result.stderr}"
            )

    def wait_until_ready(self, timeout: float = 120) -> None:
        try:
            wait_for(
                self._serves_the_admin,
                timeout=timeout,
                what=f"the Kafka broker (log: {self.log_path})",
                process=self.process,
            )
        except (TimeoutError, RuntimeError) as error:
            # The working directory goes with the environment: keep what the broker said, without
            # the sign-in refusals that repeat several times a second and would hide the rest.
            raise type(error)(
                f"{error}\n--- the end of its log, refused sign-ins left out ---\n"
                f"{self.log_tail_without('Failed authentication', 80)}"
            ) from None
        wait_for(
            lambda: http_ok(self.exporter_url),
            timeout=30,
            what=f"the JMX exporter (log: {self.log_path})",
            process=self.process,
        )

    def log_tail_without(self, noise: str, lines: int) -> str:
        """The last ``lines`` lines of the broker's log that do not contain ``noise``, and how
        many that did were left out."""
        with contextlib.suppress(OSError):
            every = self.log_path.read_text(errors="replace").splitlines()
            kept = [line for line in every if noise not in line]
            return "\n".join([*kept[-lines:], f"({len(every) - len(kept)} lines with {noise!r})"])
        return ""

    def _serves_the_admin(self) -> bool:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        port_open(self.port)  # refused (OSError) until the listener is up
        admin = AdminClient(self.client_config(ADMIN_USER, self.admin_password))
        try:
            return bool(admin.list_topics(timeout=5).brokers)
        except KafkaException:
            return False

    def client_config(self, username: str, password: str) -> dict[str, str]:
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": SCRAM_MECHANISM,
            "sasl.username": username,
            "sasl.password": password,
        }

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def exporter_url(self) -> str:
        return f"http://{LOOPBACK}:{self.exporter_port}/metrics"


class PrometheusServer(Server):
    """Prometheus scraping one JMX exporter every second, with throwaway storage."""

    name = "prometheus"

    def __init__(self, exporter_port: int, *, labels: dict[str, str] | None = None) -> None:
        super().__init__()
        self.exporter_port = exporter_port
        self.labels = labels or {}

    def start(self) -> None:
        if not PROMETHEUS.exists():
            raise RuntimeError("prometheus is not installed: run `make system-packages`")
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
            "scrape_configs": self.scrape_configs(),
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        self.process = self._spawn(
            [
                str(PROMETHEUS),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            cwd=self.workdir,
        )
        wait_for(
            lambda: http_ok(f"{self.url}/-/ready"),
            timeout=60,
            what=f"Prometheus (log: {self.log_path})",
            process=self.process,
        )

    def scrape_configs(self) -> list[dict]:
        return [
            {
                "job_name": "kafka",
                "static_configs": [
                    {"targets": [f"{LOOPBACK}:{self.exporter_port}"], "labels": self.labels}
                ],
            }
        ]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def query(self, expr: str) -> list[dict]:
        """An instant query: the ``result`` list of /api/v1/query."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query {expr!r} failed: {body}")
        return body["data"]["result"]


class KafkaTestEnvironment:
    """The broker with its exporter, then Prometheus scraping it. Use as a context manager."""

    def __init__(self, *, scrape_labels: dict[str, str] | None = None) -> None:
        self.admin_username = ADMIN_USER
        self.admin_password = secrets.token_urlsafe(24)
        self.scrape_labels = scrape_labels
        self.broker: KafkaBroker | None = None
        self.prometheus: PrometheusServer | None = None
        self.timings: dict[str, float] = {}

    # lifecycle

    def __enter__(self) -> KafkaTestEnvironment:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        atexit.register(self.stop)  # even if the test run is torn down abruptly
        libs = libs_dir()
        started = time.monotonic()
        self.broker = KafkaBroker(libs, admin_password=self.admin_password)
        self.prometheus = PrometheusServer(self.broker.exporter_port, labels=self.scrape_labels)
        self.broker.prepare()
        self.timings["format"] = time.monotonic() - started
        self.broker.launch()
        # Prometheus applies its targets only some 5 s after it starts: that wait overlaps the
        # broker's start instead of following it.
        self.prometheus.start()
        self.timings["prometheus"] = time.monotonic() - started
        self.broker.wait_until_ready()
        self.timings["broker"] = time.monotonic() - started
        wait_for(
            lambda: any(s["value"][1] == "1" for s in self.query('up{job="kafka"}')),
            timeout=30,
            what="Prometheus's first scrape of the JMX exporter",
            process=self.prometheus.process,
        )
        self.timings["ready"] = time.monotonic() - started

    def stop(self) -> None:
        for server in (self.prometheus, self.broker):
            if server is not None:
                server.stop()

    def restart_broker(self) -> None:
        """Stop the broker and start it again on the same ports and data directory: its
        counters (and the exporter's) start again from zero, as after a pod restart."""
        started = time.monotonic()
        self.broker.restart()
        self.timings["restart"] = time.monotonic() - started

    def log(self, name: str = "kafka", lines: int = 40) -> str:
        server = self.prometheus if name == "prometheus" else self.broker
        return server.log_tail(lines) if server is not None else ""

    # addresses

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.bootstrap_servers

    @property
    def exporter_url(self) -> str:
        return self.broker.exporter_url

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    # clients

    def client_config(
        self, username: str | None = None, password: str | None = None, **extra
    ) -> dict:
        """confluent-kafka settings for the SCRAM listener (the administrator by default)."""
        if username is None:
            username, password = self.admin_username, self.admin_password
        return {**self.broker.client_config(username, password), **extra}

    def admin_client(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient(self.client_config())

    def create_scram_user(self, username: str, password: str) -> None:
        """A SCRAM-SHA-512 credential, usable once this returns (the broker has it)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        admin = self.admin_client()
        upsertion = UserScramCredentialUpsertion(
            username,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
            password.encode(),
        )
        for future in admin.alter_user_scram_credentials([upsertion]).values():
            future.result(timeout=30)

        def described() -> bool:
            futures = admin.describe_user_scram_credentials([username])
            try:
                return bool(futures[username].result(timeout=10).scram_credential_infos)
            except KafkaException:
                return False  # not known to the broker yet

        wait_for(described, timeout=30, what=f"the SCRAM credential of {username}")

    def query(self, expr: str) -> list[dict]:
        """A Prometheus instant query: the ``result`` list of /api/v1/query."""
        return self.prometheus.query(expr)


if __name__ == "__main__":
    # python -m tests.support.kafkaenv [runs]: how long the environment takes to start.
    import statistics
    import sys

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    libs_dir()
    durations = []
    for run in range(runs):
        started = time.monotonic()
        with KafkaTestEnvironment() as environment:
            durations.append(time.monotonic() - started)
            timings = {name: round(value, 1) for name, value in environment.timings.items()}
            print(f"run {run + 1}: ready in {durations[-1]:.1f}s {timings}")
    median = statistics.median(durations)
    print(f"median start (format + broker + exporter + Prometheus's first scrape): {median:.1f}s")
