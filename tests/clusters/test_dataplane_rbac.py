"""The data-plane role (deploy/dataplane/) on the real test API server: Sluice's whole flow runs
as that ServiceAccount with no request refused (the API server's audit log says so), every verb
of every rule is needed by some step, and what the account must not do is refused."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from clusters import cell_credentials, services
from clusters.drivers.kubernetes import BindingNotInForce, KubernetesDriver
from clusters.rendering import render
from clusters.specs import SharedKafka
from tenants.scoping import tenant_scope
from tests.clusters.test_reconciler_kube import ACTOR, converge, labelled, new_cluster
from tests.clusters.test_rendering import credential, dedicated_spec, serverless_spec
from tests.factories import make_cell
from tests.support.cells import kube_credentials
from tests.support.kubeenv import namespace_names
from tests.support.processes import REPO_ROOT
from tests.support.services import wait_for
from tests.support.shared_kafka import SHARED_NAME, create_shared_kafka

pytestmark = pytest.mark.kube

DATAPLANE = REPO_ROOT / "deploy" / "dataplane"
ACCOUNT_NAMESPACE, ACCOUNT_NAME = "sluice-system", "sluice-control-plane"
ACCOUNT_USER = f"system:serviceaccount:{ACCOUNT_NAMESPACE}:{ACCOUNT_NAME}"
ACCOUNT_GROUPS = [
    "system:serviceaccounts",
    f"system:serviceaccounts:{ACCOUNT_NAMESPACE}",
    "system:authenticated",
]
MANAGER = "sluice-dataplane-install"
# A namespace where sluice-tenant is bound to the account, to ask the API server what the
# ClusterRole grants at this moment.
PROBE_NAMESPACE = "sluice-rbac-probe"


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def account_manifests() -> list[dict]:
    return documents(DATAPLANE / "control-plane-account.yaml")


def shared_role_manifests() -> list[dict]:
    return documents(DATAPLANE / "shared-kafka" / "role.yaml")


def admission_manifests() -> list[dict]:
    return documents(DATAPLANE / "admission-policy.yaml")


def admin_apply(environment, manifest: dict, namespace: str | None = None):
    resource = environment.dynamic_client().resources.get(
        api_version=manifest["apiVersion"], kind=manifest["kind"]
    )
    return resource.server_side_apply(
        body=manifest, namespace=namespace, field_manager=MANAGER, force_conflicts=True
    )


def install_shared_role(environment, namespace: str) -> None:
    for manifest in shared_role_manifests():
        admin_apply(environment, manifest, namespace)


def account_token(environment) -> str:
    """A token of Sluice's ServiceAccount, from the TokenRequest API."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    answer = client.CoreV1Api(environment.api_client()).create_namespaced_service_account_token(
        ACCOUNT_NAME, ACCOUNT_NAMESPACE, request
    )
    return answer.status.token


def write_account_kubeconfig(environment, token: str, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "cell",
                        "cluster": {
                            "server": environment.url,
                            "certificate-authority": str(environment.pki.ca_cert),
                        },
                    }
                ],
                "users": [{"name": ACCOUNT_NAME, "user": {"token": token}}],
                "contexts": [
                    {"name": "cell", "context": {"cluster": "cell", "user": ACCOUNT_NAME}}
                ],
                "current-context": "cell",
            }
        )
    )
    return path


def cell_as_account(environment, token: str, shared_namespace: str):
    """The one place a test cell is given the account's credentials."""
    return make_cell(
        credentials=kube_credentials(environment, token),
        shared_kafka_namespace=shared_namespace,
        shared_kafka_name=SHARED_NAME,
    )


def account_client(environment, token: str, directory: Path) -> client.ApiClient:
    configuration = client.Configuration()
    kubeconfig = write_account_kubeconfig(environment, token, directory / "account.kubeconfig")
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def account_may(environment, verb: str, resource: str, *, group="", namespace="", name="") -> bool:
    """Whether the API server's authorizer lets the account do it now (asked as the admin)."""
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=ACCOUNT_USER,
            groups=ACCOUNT_GROUPS,
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=resource, group=group, namespace=namespace, name=name
            ),
        )
    )
    answer = client.AuthorizationV1Api(environment.api_client()).create_subject_access_review(
        review
    )
    return bool(answer.status.allowed)


def admission_in_force(environment, token: str, directory: Path) -> bool:
    """The policies deny the account's relabelling of kube-system (a dry run)."""
    core = client.CoreV1Api(account_client(environment, token, directory))
    try:
        core.patch_namespace(
            "kube-system",
            {"metadata": {"labels": {"app.kubernetes.io/managed-by": "sluice"}}},
            dry_run="All",
        )
    except ApiException as error:
        return error.status == 403 and "sluice" in error.body
    return False


@pytest.fixture(scope="module")
def sluice_account(kube_environment, tmp_path_factory):
    """deploy/dataplane/ installed by an administrator, for the module (before the ``kube``
    fixture looks at which namespaces a test made), once an earlier module's install is gone
    (its namespaces take a moment to terminate); its token."""
    environment = kube_environment
    wait_for(
        lambda: not {ACCOUNT_NAMESPACE, PROBE_NAMESPACE} & namespace_names(environment),
        timeout=120,
        what="an earlier install of the data-plane role to be gone",
    )
    for manifest in admission_manifests() + account_manifests():
        admin_apply(environment, manifest)
    core = client.CoreV1Api(environment.api_client())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=PROBE_NAMESPACE)))
    binding = next(m for m in render(dedicated_spec()) if m["kind"] == "RoleBinding")
    binding["metadata"]["namespace"] = PROBE_NAMESPACE
    admin_apply(environment, binding)
    token = account_token(environment)
    directory = tmp_path_factory.mktemp("account")
    wait_for(
        lambda: admission_in_force(environment, token, directory),
        timeout=30,
        what="the admission policies to be in force",
    )
    yield token
    resources = environment.dynamic_client().resources
    for manifest in reversed(admission_manifests() + account_manifests()):
        if manifest["kind"] == "Namespace":
            continue
        resource = resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        resource.delete(
            name=manifest["metadata"]["name"], namespace=manifest["metadata"].get("namespace")
        )
    for namespace in (ACCOUNT_NAMESPACE, PROBE_NAMESPACE):
        core.delete_namespace(namespace)


@pytest.fixture(scope="module")
def module_shared_namespace(kube_environment, sluice_account):
    """A cell's shared Kafka namespace with the shared role installed, for the module."""
    namespace = f"sluice-shared-{uuid.uuid4().hex[:8]}"
    create_shared_kafka(kube_environment.api_client(), namespace)
    install_shared_role(kube_environment, namespace)
    yield namespace
    client.CoreV1Api(kube_environment.api_client()).delete_namespace(namespace)


# Sufficiency: the reconciler's whole flow -------------------------------------------------------


def refused(events: list[dict]) -> list[str]:
    return [
        f"{e['verb']} {e.get('objectRef', {})} -> {e['responseStatus']['code']}"
        for e in events
        if e.get("responseStatus", {}).get("code") == 403
    ]


@pytest.mark.django_db
def test_the_whole_flow_runs_as_sluices_account_and_nothing_is_refused(
    kube, strimzi_emulator, sluice_account, settings, tmp_path
):
    settings.SLUICE_DATAPLANE_DRIVER = "kubernetes"
    shared_namespace = f"sluice-shared-{uuid.uuid4().hex[:8]}"
    create_shared_kafka(kube.api_client(), shared_namespace)
    install_shared_role(kube, shared_namespace)
    cell_as_account(kube, sluice_account, shared_namespace)
    since = kube.audit_offset()

    serverless, _ = new_cluster("serverless")
    dedicated, _ = new_cluster("dedicated", capacity_units=1)
    for cluster in (serverless, dedicated):
        with tenant_scope(cluster.organization):
            services.topic_create(cluster=cluster, actor=ACTOR, name="orders", partitions=1)
            services.topic_create(cluster=cluster, actor=ACTOR, name="audit", partitions=1)
            services.credential_create(cluster=cluster, actor=ACTOR, name="app")
    assert converge(serverless).state == converge(dedicated).state == "ready"

    with tenant_scope(dedicated.organization):  # resize
        dedicated, _ = services.cluster_update(cluster=dedicated, actor=ACTOR, capacity_units=2)
    assert converge(dedicated).state == "ready"
    for cluster in (serverless, dedicated):  # a topic and a credential go
        with tenant_scope(cluster.organization):
            services.topic_delete(topic=cluster.topics.get(name="audit"), actor=ACTOR)
            services.credential_delete(credential=cluster.credentials.get(), actor=ACTOR)
    assert converge(serverless).state == converge(dedicated).state == "ready"

    with tenant_scope(serverless.organization):  # change of tier, both ways
        serverless, _ = services.cluster_update(
            cluster=serverless, actor=ACTOR, tier_slug="dedicated", capacity_units=1
        )
    with tenant_scope(dedicated.organization):
        dedicated, _ = services.cluster_update(
            cluster=dedicated, actor=ACTOR, tier_slug="serverless"
        )
    assert converge(serverless).state == converge(dedicated).state == "ready"

    for cluster in (serverless, dedicated):
        with tenant_scope(cluster.organization):
            services.cluster_delete(cluster=cluster, actor=ACTOR)
    for cluster in (serverless, dedicated):
        assert converge(cluster, timeout=90).state == "deleted"
        assert labelled(kube, cluster.public_id) == []

    events = kube.audit_events(since=since, user=ACCOUNT_USER)
    assert refused(events) == []
    # It was the account that did it all, the namespace and its binding included (server-side
    # apply is a PATCH, also when it creates).
    written = {(e["verb"], e["objectRef"]["resource"]) for e in events if "objectRef" in e}
    assert {("patch", "namespaces"), ("patch", "rolebindings"), ("delete", "namespaces")} <= (
        written
    )
    assert {("patch", "kafkas"), ("get", "kafkas"), ("list", "kafkatopics")} <= written
    assert ("delete", "kafkausers") in written


# Minimality: each verb of each rule is needed ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Grant:
    role: str  # the role's kind/name
    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        return f"{self.role}:{self.resource}.{self.group or 'core'}:{self.verb}"


def roles() -> list[dict]:
    return [m for m in account_manifests() + shared_role_manifests() if m["kind"].endswith("Role")]


def grants() -> list[Grant]:
    return [
        Grant(f"{role['kind']}/{role['metadata']['name']}", group, resource, verb)
        for role in roles()
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def without(role: dict, grant: Grant) -> dict:
    """The role with one verb on one resource taken away, all else as it was."""
    role = {**role, "rules": []}
    for rule in next(r for r in roles() if f"{r['kind']}/{r['metadata']['name']}" == grant.role)[
        "rules"
    ]:
        if grant.group in rule["apiGroups"] and grant.resource in rule["resources"]:
            others = [r for r in rule["resources"] if r != grant.resource]
            if others:
                role["rules"].append({**rule, "resources": others})
            verbs = [v for v in rule["verbs"] if v != grant.verb]
            if verbs:
                role["rules"].append({**rule, "resources": [grant.resource], "verbs": verbs})
        else:
            role["rules"].append(rule)
    return role


def where_granted(grant: Grant, shared_namespace: str) -> dict:
    """Where to ask whether the account holds the grant."""
    if grant.role == "Role/sluice-shared-kafka":
        return {"namespace": shared_namespace}
    if grant.resource == "clusterroles":
        return {"name": "sluice-tenant"}
    if grant.resource == "namespaces":
        return {}
    return {"namespace": PROBE_NAMESPACE}


def set_role(environment, role: dict, shared_namespace: str) -> None:
    namespace = shared_namespace if role["kind"] == "Role" else None
    admin_apply(environment, role, namespace)


def driver_flow(driver: KubernetesDriver, shared_namespace: str) -> list[tuple[str, object]]:
    """The driver's part of a cluster's life, step by step: created serverless, applied again,
    observed, a topic and a credential pruned, changed to dedicated (the serverless objects
    pruned), applied again, observed, pruned, deleted."""
    cluster_id = f"kc_{uuid.uuid4().hex[:16]}"
    credentials = tuple(
        credential(cluster_id, suffix, credential_id=f"cred_{uuid.uuid4().hex[:16]}")
        for suffix in ("app", "reporting")
    )
    serverless = serverless_spec(
        cluster_id,
        shared_kafka=SharedKafka(namespace=shared_namespace, name=SHARED_NAME),
        credentials=credentials,
    )
    dedicated = dedicated_spec(cluster_id, generation=3, credentials=credentials)

    def fewer(spec):
        return dataclasses.replace(
            spec,
            generation=spec.generation + 1,
            topics=spec.topics[:1],
            credentials=credentials[:1],
        )

    return [
        ("create serverless", lambda: driver.apply(serverless)),
        ("apply serverless again", lambda: driver.apply(serverless)),
        ("observe serverless", lambda: driver.observe(serverless)),
        ("prune serverless", lambda: driver.apply(fewer(serverless))),
        ("change to dedicated", lambda: driver.apply(dedicated)),
        ("apply dedicated again", lambda: driver.apply(dedicated)),
        ("observe dedicated", lambda: driver.observe(dedicated)),
        ("prune dedicated", lambda: driver.apply(fewer(dedicated))),
        ("delete", lambda: driver.delete(fewer(dedicated))),
    ]


def first_refused_step(driver: KubernetesDriver, shared_namespace: str) -> str | None:
    """The first step the API server refuses (``step: status``), or None if all pass."""
    for name, step in driver_flow(driver, shared_namespace):
        try:
            step()
        except ApiException as error:
            message = yaml.safe_load(error.body or "{}").get("message", "")
            return f"{name}: {error.status} {message}"
        except BindingNotInForce as error:  # the binding grants too little to write with
            return f"{name}: 403 {error}"
    return None


@pytest.fixture
def account_driver(kube, sluice_account, module_shared_namespace, settings):
    settings.SLUICE_KUBERNETES_TIMEOUT_SECONDS = 10
    # No operator runs here: each look at what was applied waits this long for its reports.
    settings.SLUICE_RECONCILE_STATUS_WAIT_SECONDS = 0.2
    connection = cell_credentials.connection_of(kube_credentials(kube, sluice_account))
    return KubernetesDriver(connection, shared_namespace=module_shared_namespace)


def test_the_drivers_flow_passes_with_every_grant(kube, account_driver, module_shared_namespace):
    since = kube.audit_offset()
    assert first_refused_step(account_driver, module_shared_namespace) is None
    assert refused(kube.audit_events(since=since, user=ACCOUNT_USER)) == []


def refused_for(grant: Grant) -> str:
    """What the API server says when the account lacks the grant."""
    if grant.verb == "bind":  # RBAC's escalation check: a binding of what it does not hold
        return "is attempting to grant RBAC permissions not currently held"
    if grant.resource == "networkpolicies" and grant.verb == "patch":
        # The object applied right after the binding: the driver first asks whether it may.
        return "does not let Sluice patch networkpolicies"
    return f'cannot {grant.verb} resource "{grant.resource}"'


@pytest.mark.parametrize("grant", grants(), ids=str)
def test_every_grant_is_needed_by_some_step(kube, account_driver, module_shared_namespace, grant):
    role = next(r for r in roles() if f"{r['kind']}/{r['metadata']['name']}" == grant.role)
    where = where_granted(grant, module_shared_namespace)

    def holds() -> bool:
        return account_may(kube, grant.verb, grant.resource, group=grant.group, **where)

    set_role(kube, without(role, grant), module_shared_namespace)
    try:
        wait_for(lambda: not holds(), timeout=10, what=f"{grant} to be taken away")
        refusal = first_refused_step(account_driver, module_shared_namespace)
        assert refusal is not None, f"nothing needed {grant}"
        assert ": 403 " in refusal, refusal
        assert refused_for(grant) in refusal, refusal
    finally:
        set_role(kube, role, module_shared_namespace)
        wait_for(holds, timeout=10, what=f"{grant} to be given back")


# Escalations ---------------------------------------------------------------------------------


def sluice_namespace(api: client.ApiClient) -> str:
    """A dedicated cluster's namespace and its binding, made by the account as Sluice makes
    them."""
    namespace, role_binding = render(dedicated_spec(f"kc_{uuid.uuid4().hex[:16]}"))[:2]
    resources = dynamic.DynamicClient(api).resources
    for manifest in (namespace, role_binding):
        resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"]).server_side_apply(
            body=manifest, field_manager="sluice"
        )
    return namespace["metadata"]["name"]


def binding(name: str, role: str, subject: dict) -> client.V1RoleBinding:
    return client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/managed-by": "sluice"}),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role
        ),
        subjects=[subject],
    )


def secret(name: str, labels: dict | None = None) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels), string_data={"k": "v"}
    )


SLUICE_LABEL = {"app.kubernetes.io/managed-by": "sluice"}
ACCOUNT_SUBJECT = {"kind": "ServiceAccount", "name": ACCOUNT_NAME, "namespace": ACCOUNT_NAMESPACE}


def escalations(kube, api: client.ApiClient, namespace: str, shared: str) -> dict:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    admin_core = client.CoreV1Api(kube.api_client())
    foreign = f"sl-{uuid.uuid4().hex[:8]}"  # named like Sluice's, but not labelled by it
    admin_core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=foreign)))
    strimzi_secret = f"strimzi-made-{uuid.uuid4().hex[:6]}"
    admin_core.create_namespaced_secret(shared, secret(strimzi_secret))
    other = {"kind": "ServiceAccount", "name": "default", "namespace": "default"}
    return {
        "bind cluster-admin": lambda: rbac.create_namespaced_role_binding(
            namespace, binding("admin", "cluster-admin", ACCOUNT_SUBJECT)
        ),
        "bind sluice-tenant to another subject": lambda: rbac.create_namespaced_role_binding(
            namespace, binding("other", "sluice-tenant", other)
        ),
        "label kube-system": lambda: core.patch_namespace(
            "kube-system", {"metadata": {"labels": SLUICE_LABEL}}
        ),
        "a namespace not named as Sluice's": lambda: core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name="kube-sluice", labels=SLUICE_LABEL)
            )
        ),
        "delete a namespace Sluice did not create": lambda: core.delete_namespace(foreign),
        "a Secret in default": lambda: core.create_namespaced_secret(
            "default", secret("x", SLUICE_LABEL)
        ),
        "a Secret in kube-system": lambda: core.create_namespaced_secret(
            "kube-system", secret("x", SLUICE_LABEL)
        ),
        "read a Secret in its own namespace": lambda: core.read_namespaced_secret("x", namespace),
        "an unlabelled Secret beside the shared Kafka": lambda: core.create_namespaced_secret(
            shared, secret("unlabelled")
        ),
        "take over the shared Kafka's Secret by labelling it": lambda: core.patch_namespaced_secret(
            strimzi_secret, shared, {"metadata": {"labels": SLUICE_LABEL}}
        ),
        "delete the shared Kafka's Secret": lambda: core.delete_namespaced_secret(
            strimzi_secret, shared
        ),
    }


def test_escalations_are_refused(kube, sluice_account, module_shared_namespace, tmp_path):
    api = account_client(kube, sluice_account, tmp_path)
    namespace = sluice_namespace(api)
    attempts = escalations(kube, api, namespace, module_shared_namespace)
    answers = {}
    for name, attempt in attempts.items():
        try:
            attempt()
        except ApiException as error:
            answers[name] = error.status
        else:
            answers[name] = "allowed"
    assert answers == dict.fromkeys(attempts, 403)
