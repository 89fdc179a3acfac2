"""clusters.naming, the contract between the renderer, the drivers, metering and the connection
snippet: names are functions of ids alone, fit Kubernetes' and Strimzi's rules, and what a
serverless cluster's names start with in Kafka is what metering attributes back to it."""

from __future__ import annotations

import dataclasses
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.attribution import Attribution, MeteredCluster
from clusters import connection, naming, services
from clusters.naming import (
    bootstrap_listener_name,
    kafka_name,
    kafka_topic_name,
    namespace_for,
    resource_name,
    topic_resource_name,
)
from clusters.rendering import InvalidSpec, render
from clusters.specs import SharedKafka
from tenants.audit import Actor
from tenants.scoping import tenant_scope
from tests.clusters.test_rendering import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    LABEL_VALUE,
    credential,
    dedicated_spec,
    kafka_topic_names,
    limits,
    of_kind,
    one,
    serverless_spec,
)
from tests.factories import make_cluster, make_org

# Public ids as foundation.ids makes them, up to the 32 characters their columns hold.
ID_ALPHABET = string.ascii_lowercase + string.digits


def public_ids(prefix: str):
    return st.text(ID_ALPHABET, min_size=1, max_size=32 - len(prefix) - 1).map(
        lambda random: f"{prefix}_{random}"
    )


# Naming -----------------------------------------------------------------------------------------


def test_resource_name_makes_public_ids_dns_labels():
    assert resource_name("kc_ab12cd34ef56gh78") == "kc-ab12cd34ef56gh78"
    assert resource_name("cred_0123456789abcdef") == "cred-0123456789abcdef"


@pytest.mark.parametrize("bad", ["", "kc-ab12", "KC_AB12", "kc_ab_12", "kc_", "_ab12", "kc_ab.12"])
def test_resource_name_refuses_what_is_not_a_public_id(bad):
    with pytest.raises(InvalidSpec):
        resource_name(bad)


def test_names_of_a_serverless_cluster_are_on_the_shared_kafka():
    spec = serverless_spec()
    assert namespace_for(spec) == "sl-cell-eu1"
    assert kafka_name(spec) == "shared"
    assert kafka_topic_name(spec, "orders") == "kc_ab12cd34ef56gh78.orders"
    assert topic_resource_name(spec, "orders") == "kc-ab12cd34ef56gh78.orders"


def test_names_of_a_dedicated_cluster_are_its_own():
    spec = dedicated_spec()
    assert namespace_for(spec) == "sl-kc-ab12cd34ef56gh78"
    assert kafka_name(spec) == "kc-ab12cd34ef56gh78"
    assert kafka_topic_name(spec, "Orders_V2") == "Orders_V2"
    assert topic_resource_name(spec, "orders") == "orders"


def test_the_cluster_selector_matches_only_what_sluice_wrote():
    # Strimzi copies a custom resource's labels onto the objects it makes (CA Secrets, user
    # Secrets, its NetworkPolicies, pods), all but app.kubernetes.io/*: only the managed-by
    # label tells Sluice's own objects from those.
    spec = dedicated_spec()
    assert naming.cluster_selector(spec) == (
        "app.kubernetes.io/managed-by=sluice,sluice.io/cluster=kc_ab12cd34ef56gh78"
    )
    for manifest in render(spec):
        labels = manifest["metadata"]["labels"]
        for requirement in naming.cluster_selector(spec).split(","):
            key, value = requirement.split("=")
            assert labels[key] == value


def test_bootstrap_listener_is_the_scram_listener_of_the_kafka():
    listeners = one(render(dedicated_spec()), "Kafka")["spec"]["kafka"]["listeners"]
    (listener,) = [item for item in listeners if item["name"] == bootstrap_listener_name()]
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert listener["port"] == 9092


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("orders", "orders"),
        ("orders.v1", "orders.v1"),
        ("Orders", "orders-"),
        ("orders_v1", "orders-v1-"),
        ("a..b", "a.b-"),
        ("-lead", "lead-"),
        ("trail-", "trail"),
        ("_", "topic-"),
        ("0123456789", "0123456789"),  # ten digits, but no dash: as it is
        ("orders-01234567", "orders-01234567"),
        ("orders-abcdef0123", "orders-abcdef0123-"),  # looks hashed: hashed for real
    ],
)
def test_topic_resource_names_are_the_name_or_a_sanitized_name_with_a_hash(topic, expected):
    name = topic_resource_name(dedicated_spec(), topic)
    assert DNS_SUBDOMAIN.match(name)
    if expected == topic:
        assert name == topic
    else:
        assert name.startswith(expected)
        assert re.search(r"-[0-9a-f]{10}$", name)


def test_topic_resource_names_of_long_topics_fit():
    for spec in (dedicated_spec(), serverless_spec()):
        name = topic_resource_name(spec, "x" * 249)
        assert len(name) <= 253
        assert DNS_SUBDOMAIN.match(name)
        assert name != topic_resource_name(spec, "x" * 248 + "y")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.sets(kafka_topic_names, min_size=2, max_size=20))
def test_topic_resource_names_are_valid_stable_and_unique(names):
    for spec in (dedicated_spec(), serverless_spec()):
        resource_names = {topic_resource_name(spec, name) for name in names}
        assert len(resource_names) == len(names)
        for name in names:
            resource = topic_resource_name(spec, name)
            assert resource == topic_resource_name(spec, name)
            assert len(resource) <= 253, resource
            assert DNS_SUBDOMAIN.match(resource), resource


@given(name=kafka_topic_names)
def test_a_hashed_name_never_equals_another_topics_own_name(name):
    spec = dedicated_spec()
    resource = topic_resource_name(spec, name)
    if resource != name:
        # The hashed form is never used as-is for the topic of that name.
        assert topic_resource_name(spec, resource) != resource


# Within Kubernetes' rules, for every id ----------------------------------------------------------


def fits(pattern: re.Pattern, name: str, max_length: int) -> bool:
    return bool(pattern.match(name)) and len(name) <= max_length


def names_of(spec) -> tuple:
    return (
        namespace_for(spec),
        kafka_name(spec),
        naming.labels_for(spec),
        naming.cluster_selector(spec),
        [topic_resource_name(spec, topic.name) for topic in spec.topics],
        [kafka_topic_name(spec, topic.name) for topic in spec.topics],
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    cluster_id=public_ids("kc"),
    organization_id=public_ids("org"),
    credential_id=public_ids("cred"),
)
def test_names_of_any_cluster_fit_kubernetes_and_depend_on_its_ids_alone(
    cluster_id, organization_id, credential_id
):
    for make in (serverless_spec, dedicated_spec):
        spec = make(cluster_id, organization_id=organization_id, credentials=())
        # Whatever else the spec says (its name, generation, limits), the names stay.
        changed = dataclasses.replace(
            spec, name="renamed", generation=99, limits=limits(max_partitions=1)
        )
        assert names_of(changed) == names_of(spec)
        assert fits(DNS_LABEL, namespace_for(spec), naming.MAX_LABEL_VALUE)
        assert fits(DNS_SUBDOMAIN, kafka_name(spec), naming.MAX_LABEL_VALUE)
        for value in naming.labels_for(spec).values():
            assert fits(LABEL_VALUE, value, naming.MAX_LABEL_VALUE)
    assert resource_name(cluster_id) == cluster_id.replace("_", "-")
    assert naming.dedicated_kafka(cluster_id) == (
        namespace_for(dedicated_spec(cluster_id)),
        kafka_name(dedicated_spec(cluster_id)),
    )
    username = naming.credential_username(cluster_id, credential_id)
    assert fits(DNS_SUBDOMAIN, username, naming.MAX_USER_NAME)
    secret = naming.password_secret_name(credential_id)
    assert fits(DNS_SUBDOMAIN, secret, naming.MAX_SUBDOMAIN)


@given(cluster_id=public_ids("kc"), credential_id=public_ids("cred"))
def test_a_new_credentials_names_suit_its_cluster_of_either_kind_and_no_other(
    cluster_id, credential_id
):
    made = credential(
        cluster_id,
        credential_id=credential_id,
        username=naming.credential_username(cluster_id, credential_id),
        password_secret=naming.password_secret_name(credential_id),
    )
    for make in (serverless_spec, dedicated_spec):
        spec = make(cluster_id, credentials=(made,))
        (user,) = of_kind(render(spec), "KafkaUser")
        assert user["metadata"]["name"] == made.username
        assert user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"][
            "name"
        ] == naming.password_secret_name(credential_id)
    # On a shared Kafka the username is scoped by its cluster: another cluster cannot take it.
    other = f"{cluster_id}x"
    with pytest.raises(InvalidSpec):
        render(serverless_spec(other, credentials=(made,)))


# What clients, metering and the renderer agree on ------------------------------------------------


def test_the_serverless_prefix_is_the_one_dot_ended_cluster_id():
    assert naming.serverless_prefix("kc_ab12") == "kc_ab12."
    assert naming.serverless_prefix_of("kc_ab12.orders.v1") == "kc_ab12."
    assert naming.serverless_prefix_of("kc_ab12") is None
    assert naming.name_prefix("kc_ab12", "serverless") == "kc_ab12."
    assert naming.name_prefix("kc_ab12", "dedicated") == ""
    with pytest.raises(InvalidSpec):
        naming.serverless_prefix("kc-ab12")


@given(cluster_id=public_ids("kc"), topic=kafka_topic_names)
def test_metering_reads_the_prefix_back_from_any_topic_of_a_serverless_cluster(cluster_id, topic):
    spec = serverless_spec(cluster_id)
    assert naming.serverless_prefix_of(kafka_topic_name(spec, topic)) == naming.serverless_prefix(
        cluster_id
    )


@pytest.mark.django_db
def test_usage_on_the_shared_kafka_is_attributed_to_the_cluster_whose_prefix_it_carries():
    organization = make_org()
    serverless, _ = make_cluster(organization, name="events")
    standard, _ = make_cluster(organization, tier_slug="standard", name="orders")
    dedicated, _ = make_cluster(organization, tier_slug="dedicated", name="ledger")
    cell = serverless.cell
    attribution = Attribution(
        cell,
        [
            MeteredCluster(c.pk, c.public_id, c.kind, 0.0, None)
            for c in (serverless, standard, dedicated)
        ],
    )
    shared = {
        "namespace": cell.shared_kafka_namespace,
        "strimzi_io_cluster": cell.shared_kafka_name,
    }
    for cluster in (serverless, standard):
        # The name the API and UI tell clients to use...
        topic = connection.kafka_topic_name(cluster, "orders")
        prefix = connection.name_prefix(cluster)
        assert topic == f"{cluster.public_id}.orders"
        # ...is the one rendered, within what the cluster's principals may touch...
        spec = serverless_spec(
            cluster.public_id,
            shared_kafka=SharedKafka(cell.shared_kafka_namespace, cell.shared_kafka_name),
        )
        manifests = render(spec)
        assert topic == kafka_topic_name(spec, "orders")
        assert topic in {t["spec"]["topicName"] for t in of_kind(manifests, "KafkaTopic")}
        assert {
            (acl["resource"]["name"], acl["resource"]["patternType"])
            for user in of_kind(manifests, "KafkaUser")
            for acl in user["spec"]["authorization"]["acls"]
        } == {(prefix, "prefix")}
        # ...and metering gives what is read on it back to the cluster.
        assert attribution.cluster_of({**shared, "topic": topic}) == cluster.pk
    # A dedicated cluster has no prefix: its own namespace and Kafka say whose usage it is.
    assert connection.name_prefix(dedicated) == ""
    namespace, kafka = naming.dedicated_kafka(dedicated.public_id)
    rendered = one(render(dedicated_spec(dedicated.public_id)), "Kafka")["metadata"]
    assert (rendered["namespace"], rendered["name"]) == (namespace, kafka)
    labels = {"namespace": namespace, "strimzi_io_cluster": kafka, "topic": "orders"}
    assert attribution.cluster_of(labels) == dedicated.pk
    # Nothing else is anyone's: no prefix, an unknown cluster's, an id a cluster's id extends.
    for topic in ("orders", "kc_unknown.orders", f"{serverless.public_id[:-1]}.orders"):
        assert attribution.cluster_of({**shared, "topic": topic}) is None


@pytest.mark.django_db
def test_a_credential_the_api_creates_is_named_by_the_naming_rule():
    organization = make_org()
    cluster, _ = make_cluster(organization)
    with tenant_scope(organization):
        made, _password, _ = services.credential_create(
            cluster=cluster, actor=Actor(system="tests"), name="app"
        )
    assert made.username == naming.credential_username(cluster.public_id, made.public_id)
