"""How a client connects to a cluster: the names it uses in Kafka and the properties it needs.
The API, the web UI and the credential pages all show these, from here only."""

from __future__ import annotations

from . import naming
from .models import Cluster

SASL_MECHANISM = "SCRAM-SHA-512"
PLACEHOLDER_USERNAME = "<credential username>"
PLACEHOLDER_PASSWORD = "<credential password>"  # noqa: S105 (shown in snippets)


def name_prefix(cluster: Cluster) -> str:
    """What every topic, consumer group and transactional id of the cluster starts with in
    Kafka: serverless clusters share a Kafka, so their names carry ``<cluster id>.``."""
    return naming.name_prefix(cluster.public_id, cluster.kind)


def kafka_topic_name(cluster: Cluster, topic_name: str) -> str:
    return f"{name_prefix(cluster)}{topic_name}"


def sasl_jaas_config(username: str, password: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{username}" password="{password}";'
    )


def security_protocol(cluster: Cluster) -> str:
    return "SASL_SSL" if cluster.bootstrap_tls else "SASL_PLAINTEXT"


def client_properties(
    cluster: Cluster,
    username: str = PLACEHOLDER_USERNAME,
    password: str = PLACEHOLDER_PASSWORD,
) -> str:
    """A Java client's properties (librdkafka's differ only in the JAAS line)."""
    return (
        f"bootstrap.servers={cluster.bootstrap_servers}\n"
        f"security.protocol={security_protocol(cluster)}\n"
        f"sasl.mechanism={SASL_MECHANISM}\n"
        f"sasl.jaas.config={sasl_jaas_config(username, password)}\n"
    )


def connection_details(cluster: Cluster) -> dict | None:
    """The connection snippet once the cluster has a bootstrap address, else None."""
    if not cluster.bootstrap_servers:
        return None
    details = {
        "bootstrap_servers": cluster.bootstrap_servers,
        "security_protocol": security_protocol(cluster),
        "client_properties": client_properties(cluster),
        "name_prefix": name_prefix(cluster),
    }
    if details["name_prefix"]:
        details["note"] = (
            f"Topics, consumer groups and transactional ids start with {details['name_prefix']}"
        )
    return details
