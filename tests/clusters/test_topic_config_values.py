"""Topic configs are numbers Kafka can read: ASCII decimal digits within the config's Java type
(int or long) and Sluice's bounds, kept in canonical form. Anything else is a 400 problem,
never a server error and never a value the data plane would refuse later."""

from __future__ import annotations

import pytest
from django.test import override_settings

from clusters.validation import TOPIC_CONFIGS
from tests.support import abuse

pytestmark = pytest.mark.django_db

# Java's int and long, as Kafka reads configs into them.
INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)
# Kafka's type of each numeric config a tenant may set (TopicConfig / LogConfig).
JAVA_TYPES = {
    "max.message.bytes": "int",
    "retention.bytes": "long",
    "delete.retention.ms": "long",
    "min.compaction.lag.ms": "long",
    "max.compaction.lag.ms": "long",
    "segment.ms": "long",
}
NOT_NUMBERS = [
    "\u00b2",  # a superscript two: str.isdigit() is true, int() refuses it
    "\u0661\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits: int() reads them
    "\uff11\uff10\uff10\uff10\uff10\uff10\uff10",  # fullwidth digits: int() reads them too
    "+1000000",
    "1_000_000",
    "1000000.0",
    "1e6",
    "0x100000",
    "",
    "-",
]


@pytest.fixture(autouse=True)
def _no_rate_limits():
    with override_settings(
        SLUICE_RATE_LIMIT_ORG_PER_MINUTE=10**6, SLUICE_RATE_LIMIT_CALLER_PER_MINUTE=10**6
    ):
        yield


def test_every_numeric_config_has_its_kafka_type_here():
    numeric = {key for key, rule in TOPIC_CONFIGS.items() if "integer" in rule.expects}
    assert numeric == set(JAVA_TYPES)


@pytest.mark.parametrize("key", sorted(JAVA_TYPES))
def test_numeric_config_refuses_what_kafka_could_not_read(key):
    world = abuse.build_world()
    path = f"/api/v1/orgs/{world.organization.public_id}/clusters/"
    path += f"{world.url_values['cluster']}/topics/"
    low, high = INT32_RANGE if JAVA_TYPES[key] == "int" else INT64_RANGE
    values = [*NOT_NUMBERS, str(high + 1), str(low - 1), str(2**64), "9" * 5000]
    failures = []
    for value in values:
        body = {"name": "configured", "partitions": 1, "configs": {key: value}}
        outcome = abuse.call_and_roll_back(world.client, "post", path, body=body)
        problems = abuse.refusal_problems(outcome, status=400, code="validation")
        failures += [f"{key}={value[:40]!r}: {p}" for p in problems]
    assert failures == [], "\n".join(failures)


def test_numeric_configs_are_kept_in_canonical_form(owner_world):
    world = owner_world
    path = f"/api/v1/orgs/{world.organization.public_id}/clusters/"
    path += f"{world.url_values['cluster']}/topics/"
    body = {
        "name": "canonical",
        "partitions": 1,
        "configs": {
            "segment.ms": "000600000",
            "min.compaction.lag.ms": str(INT64_RANGE[1]),
            "retention.bytes": "0001000000",
        },
    }
    response = world.client.post(path, body, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["topic"]["configs"] == {
        "min.compaction.lag.ms": str(INT64_RANGE[1]),
        "retention.bytes": "1000000",
        "segment.ms": "600000",
    }


@pytest.fixture
def owner_world():
    return abuse.build_world()
