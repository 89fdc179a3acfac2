"""How to connect, in the languages clients use: Java properties, Python (confluent-kafka, and
so librdkafka's settings), Go (franz-go), Node (kafkajs) and kcat, each pre-filled with the
cluster's bootstrap address, protocol, SASL mechanism and a username. Each one produces a record
to a topic, so pasted and run it shows the connection works.

The password is a placeholder except where it is shown once (a credential's creation or
rotation): callers pass it only there."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from . import connection
from .models import Cluster

EXAMPLE_TOPIC = "my-topic"


@dataclass(frozen=True)
class Snippet:
    key: str  # the element id's suffix and the language's short name
    label: str
    text: str


def _quoted(value: str) -> str:
    """A double-quoted string literal that Python, Go and JavaScript read the same way."""
    return json.dumps(value)


def snippets(
    cluster: Cluster,
    username: str = connection.PLACEHOLDER_USERNAME,
    password: str = connection.PLACEHOLDER_PASSWORD,
    topic: str | None = None,
) -> list[Snippet]:
    """The snippets for the cluster; empty while it has no bootstrap address."""
    if not cluster.bootstrap_servers:
        return []
    topic = topic or connection.kafka_topic_name(cluster, EXAMPLE_TOPIC)
    values = {
        "bootstrap": cluster.bootstrap_servers,
        "protocol": connection.security_protocol(cluster),
        "mechanism": connection.SASL_MECHANISM,
        "username": username,
        "password": password,
        "topic": topic,
    }
    return [
        Snippet("java", "Java (client.properties)", _java(cluster, username, password)),
        Snippet("python", "Python (confluent-kafka, librdkafka)", _python(values)),
        Snippet("go", "Go (franz-go)", _go(values, tls=cluster.bootstrap_tls)),
        Snippet("node", "Node.js (kafkajs)", _node(values, tls=cluster.bootstrap_tls)),
        Snippet("kcat", "kcat", _kcat(values)),
    ]


def _java(cluster: Cluster, username: str, password: str) -> str:
    return connection.client_properties(cluster, username, password)


def _python(v: dict) -> str:
    return f"""from confluent_kafka import Producer

config = {{
    "bootstrap.servers": {_quoted(v["bootstrap"])},
    "security.protocol": {_quoted(v["protocol"])},
    "sasl.mechanism": {_quoted(v["mechanism"])},
    "sasl.username": {_quoted(v["username"])},
    "sasl.password": {_quoted(v["password"])},
}}

producer = Producer(config)
producer.produce({_quoted(v["topic"])}, value=b"hello")
assert producer.flush(30) == 0, "not delivered"
"""


def _go(v: dict, *, tls: bool) -> str:
    tls_import = '\t"crypto/tls"\n' if tls else ""
    tls_option = "\t\tkgo.DialTLSConfig(new(tls.Config)),\n" if tls else ""
    return f"""package main

import (
\t"context"
{tls_import}
\t"github.com/twmb/franz-go/pkg/kgo"
\t"github.com/twmb/franz-go/pkg/sasl/scram"
)

func main() {{
\tclient, err := kgo.NewClient(
\t\tkgo.SeedBrokers({_quoted(v["bootstrap"])}),
\t\tkgo.SASL(scram.Auth{{
\t\t\tUser: {_quoted(v["username"])},
\t\t\tPass: {_quoted(v["password"])},
\t\t}}.AsSha512Mechanism()),
{tls_option}\t)
\tif err != nil {{
\t\tpanic(err)
\t}}
\tdefer client.Close()
\trecord := &kgo.Record{{Topic: {_quoted(v["topic"])}, Value: []byte("hello")}}
\tif err := client.ProduceSync(context.Background(), record).FirstErr(); err != nil {{
\t\tpanic(err)
\t}}
}}
"""


def _node(v: dict, *, tls: bool) -> str:
    return f"""const {{ Kafka }} = require("kafkajs");

const kafka = new Kafka({{
  brokers: [{_quoted(v["bootstrap"])}],
  ssl: {"true" if tls else "false"},
  sasl: {{
    mechanism: "scram-sha-512",
    username: {_quoted(v["username"])},
    password: {_quoted(v["password"])},
  }},
}});

async function main() {{
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({{ topic: {_quoted(v["topic"])}, messages: [{{ value: "hello" }}] }});
  await producer.disconnect();
}}

main();
"""


def _kcat(v: dict) -> str:
    settings = [
        f"security.protocol={v['protocol']}",
        f"sasl.mechanisms={v['mechanism']}",
        f"sasl.username={v['username']}",
        f"sasl.password={v['password']}",
    ]
    options = " ".join(f"-X {shlex.quote(setting)}" for setting in settings)
    return (
        f"echo hello | kcat -b {shlex.quote(v['bootstrap'])} {options} "
        f"-t {shlex.quote(v['topic'])} -P\n"
    )
