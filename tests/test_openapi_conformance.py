"""The API does what its OpenAPI description says, both ways: schemathesis generates requests
from the checked-in description (valid ones, and ones it forbids) for every operation, and
sequences of calls along the links the description declares and those schemathesis infers,
and runs every check on the answers of the real application (in process, on the test
PostgreSQL and Redis), called as an organization owner's API key on an organization with a
cluster, a topic, a credential, a second member, an invitation, a second key and an invoice,
so that every path names something that exists.

Every request runs in a savepoint rolled back after it (every scenario of the stateful part in
one), so each one meets the same seeded organization; generation is derandomized, so a run is
the same run every time. ``SLUICE_CONFORMANCE_EXAMPLES`` raises the examples per operation for
a longer hunt (the default keeps the module near a minute on two cores).
"""

import os
from collections import Counter

import hypothesis
import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from schemathesis.specs.openapi.checks import positive_data_acceptance

from billing.invoices import invoice_record
from clusters import catalog
from clusters import services as cluster_services
from tenants import services as tenant_services
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import (
    UserFactory,
    add_member,
    make_api_key,
    make_cell,
    make_cluster,
    make_org,
)
from tests.support.abuse import sample_line
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.django_db

DESCRIPTION = REPO_ROOT / "platform" / "controlplane" / "api" / "openapi.yaml"
EXAMPLES = int(os.environ.get("SLUICE_CONFORMANCE_EXAMPLES", "12"))
SEED = 11
HYPOTHESIS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    # Failures are reported as found: shrinking a sequence of HTTP calls takes minutes.
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)

# Rules the description states in words because JSON Schema cannot: they depend on the
# cluster's tier, the organization's quotas, the clock or another field. A schema-valid request
# they refuse is a 400 naming one of these fields; any other 400 to a valid request is a
# disagreement.
RULES_IN_WORDS = {
    ("DELETE", "/api/v1/orgs/{org}/"): {"confirm"},  # the organization's name, exactly
    ("POST", "/api/v1/orgs/{org}/api-keys/"): {"expires_at"},  # future, within the lifetime
    ("POST", "/api/v1/orgs/{org}/clusters/"): {"capacity_units"},  # the tier's range
    ("PATCH", "/api/v1/orgs/{org}/clusters/{id}/"): {"capacity_units", "type"},
    ("POST", "/api/v1/orgs/{org}/clusters/{cluster}/topics/"): {
        "name",  # a serverless cluster's id takes room from Kafka's 249 characters
        "partitions",
        "retention_ms",
        "configs",
    },
    ("PATCH", "/api/v1/orgs/{org}/clusters/{cluster}/topics/{name}/"): {
        "partitions",  # never fewer than now
        "retention_ms",
        "configs",
    },
    ("POST", "/api/v1/orgs/{org}/clusters/{cluster}/credentials/"): {
        "producer_byte_rate",
        "consumer_byte_rate",
        "request_percentage",
    },
    ("PATCH", "/api/v1/orgs/{org}/clusters/{cluster}/credentials/{id}/"): {
        "producer_byte_rate",
        "consumer_byte_rate",
        "request_percentage",
    },
    # A time only with to=timestamp (and then one); a topic the group has offsets on.
    ("POST", "/api/v1/orgs/{org}/clusters/{cluster}/consumer-groups/{group}/reset-offsets/"): {
        "timestamp",
        "topic",
        "group",
    },
    # The window's order and length, and instants Python cannot hold (year 0, leap seconds).
    ("GET", "/api/v1/orgs/{org}/usage/"): {"start", "end"},
    ("GET", "/api/v1/orgs/{org}/clusters/{cluster}/usage/"): {"start", "end"},
    ("GET", "/api/v1/orgs/{org}/audit-events/"): {"since", "until"},
    # The range's order and length, days out of range, and a cluster of the organization's.
    ("GET", "/api/v1/orgs/{org}/costs/"): {"start", "end", "cluster"},
    # Amounts of money: decimal dollar strings within bounds (billing.money, in words).
    ("PUT", "/api/v1/orgs/{org}/billing/budget/"): {"monthly_usd"},
    ("PUT", "/api/v1/orgs/{org}/spend-caps/organization/"): {"monthly_cap_usd"},
    ("PUT", "/api/v1/orgs/{org}/spend-caps/clusters/{cluster}/"): {"monthly_cap_usd"},
    # A closed month written YYYY-MM from 1970 on; a webhook URL that resolves to the public
    # internet (no private, loopback or metadata address).
    ("POST", "/api/v1/orgs/{org}/billing/exports/"): {"month"},
    ("PUT", "/api/v1/orgs/{org}/billing/webhook/"): {"url"},
    # The tier's limits times its capacity units, and its storage (ingress x retention).
    ("POST", "/api/v1/catalog/estimate/"): {
        "ingress_mbps",
        "egress_mbps",
        "retention_hours",
        "partitions",
        "capacity_units",
    },
}


class CountingApp:
    """The Django WSGI application, counting the requests it answers."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.requests: Counter[str] = Counter()

    def __call__(self, environ, start_response):
        self.requests[environ["REQUEST_METHOD"]] += 1
        return self.handler(environ, start_response)


APP = CountingApp()


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None and APP.requests:
        total = sum(APP.requests.values())
        methods = ", ".join(f"{m} {n}" for m, n in sorted(APP.requests.items()))
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nopenapi conformance: {total} requests ({methods})")


@pytest.fixture
def in_process(settings):
    """Requests reach the app in this test's transaction, unthrottled: Django would close the
    connection (and the transaction) at each request's start and end, as its test client
    knows to prevent."""
    settings.SLUICE_RATE_LIMIT_ORG_PER_MINUTE = 10**9
    settings.SLUICE_RATE_LIMIT_CALLER_PER_MINUTE = 10**9
    settings.SLUICE_RATE_LIMIT_ADDRESS_PER_MINUTE = 10**9
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# The seeded objects' public ids, fixed so the generated requests can name them.
IDS = {
    "org": "org_conformance",
    "cluster": "kc_conformance",
    "member": "mem_conformance",
    "invitation": "inv_conformance",
    "api_key": "key_conformance",
    "event": "evt_conformance",
    "operation": "op_conformance",
    "credential": "cred_conformance",
    "invoice": "invc_conformance",
}


def _path_ids(resource: str, value: str) -> dict:
    return {"include-path-regex": f"/{resource}/", "parameters": {"id": value}}


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # NUL is refused in every string, as the description's introduction says.
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "allow-x00": False},
        "phases": {"stateful": {"max-steps": 6}},
        "parameters": {"org": IDS["org"], "cluster": IDS["cluster"], "name": "orders"},
        "operations": [
            _path_ids("members", IDS["member"]),
            _path_ids("api-keys", IDS["api_key"]),
            _path_ids("invitations", IDS["invitation"]),
            _path_ids("audit-events", IDS["event"]),
            _path_ids("operations", IDS["operation"]),
            _path_ids("credentials", IDS["credential"]),
            _path_ids("invoices", IDS["invoice"]),
            {"include-path-regex": r"/clusters/\{id\}/", "parameters": {"id": IDS["cluster"]}},
            {
                # 503 `capacity_unavailable` is documented: no cell of the region has room.
                "include-path-regex": r"/clusters/(\{id\}/(retry/)?)?$",
                "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "4xx", "503"]}},
            },
        ],
    }
)
schema = schemathesis.openapi.from_path(DESCRIPTION, config=CONFIG)
schema.app = APP


@pytest.fixture
def owner_key(in_process) -> dict:
    """Seeds the organization the requests name; returns its owner's API key as headers."""
    owner = UserFactory()
    organization = make_org(owner=owner, name="Conformance")
    cluster, _ = make_cluster(organization)
    for region in catalog.REGIONS:  # every region the description offers has room
        make_cell(region=region)
    system = Actor(system="tests")
    with tenant_scope(organization):
        cluster_services.topic_create(cluster=cluster, actor=system, name="orders", partitions=3)
        credential, _password, _op = cluster_services.credential_create(
            cluster=cluster, actor=system, name="app"
        )
        member = add_member(organization, Role.DEVELOPER)
        invitation, _token = tenant_services.invitation_create(
            organization=organization,
            email="invitee@example.com",
            role=Role.VIEWER,
            actor=system,
            actor_role=Role.OWNER,
            accept_url_base="http://testserver/invitations/",
        )
        spare_key, _ = make_api_key(organization, role=Role.VIEWER)
        invoice = invoice_record(
            organization=organization, year=2026, month=10, lines=[sample_line(cluster)]
        )
        seeded = {
            "org": organization,
            "cluster": cluster,
            "member": member,
            "invitation": invitation,
            "api_key": spare_key,
            "operation": cluster.operations.order_by("created_at").first(),
            "credential": credential,
            "invoice": invoice,
        }
        for name, obj in seeded.items():
            type(obj)._default_manager.filter(pk=obj.pk).update(public_id=IDS[name])
        # The trail is append-only: its event is written with its id rather than renamed.
        AuditEvent.objects.create(
            public_id=IDS["event"],
            organization=organization,
            actor_label="system:tests",
            action="organization.renamed",
            target_type="organization",
            target_id=IDS["org"],
        )
    _key, secret = make_api_key(organization, role=Role.OWNER)
    return {"Authorization": f"Bearer {secret}"}


def check(case, response, **context) -> None:
    """Every check, the positive-data one allowing the rules stated in words (above)."""
    excluded = [positive_data_acceptance] if _refused_by_a_rule_in_words(case, response) else []
    case.validate_response(response, excluded_checks=excluded, **context)


def _refused_by_a_rule_in_words(case, response) -> bool:
    problem = _problem(response)
    if response.status_code == 422 and problem.get("code") == "idempotency_key_reused":
        return True  # a stateful scenario drew one key for two requests: documented as such
    if response.status_code != 400:
        return False
    # A cursor is opaque: only a page's `next` or `previous` link gives a valid one.
    fields = {"cursor"} | RULES_IN_WORDS.get((case.method.upper(), case.path), set())
    named = {problem.get("field"), *problem.get("errors", {})} - {None}
    return bool(named) and named <= fields


def _problem(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@schema.parametrize()
@hypothesis.settings(HYPOTHESIS)
def test_every_operation_answers_as_described(case, owner_key):
    with transaction.atomic():
        response = case.call(headers=owner_key)
        transaction.set_rollback(True)
    check(case, response, headers=owner_key, transport_kwargs={"headers": owner_key})


def test_call_sequences_answer_as_described(owner_key):
    class Scenario(schema.as_state_machine()):
        def setup(self) -> None:
            self._savepoint = transaction.atomic()
            self._savepoint.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self._savepoint.__exit__(None, None, None)

        def get_call_kwargs(self, case) -> dict:
            return {"headers": owner_key}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            # With the scenario's record, for the checks that look back (use after free…).
            check(
                case,
                response,
                headers=owner_key,
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    Scenario.run(
        settings=hypothesis.settings(HYPOTHESIS, max_examples=EXAMPLES * 4, stateful_step_count=6)
    )
