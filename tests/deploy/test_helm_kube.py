"""The chart on the real test API server: every rendered object passes a server-side dry run
(the server's own schemas and admission validate it), and the chart installs, upgrades and rolls
back there. No kubelet or workload controller runs on the test API server: the migrations Job
stays pending and nothing is waited for."""

from __future__ import annotations

import copy
import uuid

import pytest
import yaml

from tests.deploy.chart import CHART, FULL_VALUES, RELEASE, of_kind

pytestmark = pytest.mark.kube
FIELD_MANAGER = "sluice-chart-test"


def new_namespace(kube) -> str:
    from kubernetes import client

    name = f"sluice-chart-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(kube.api_client()).create_namespace({"metadata": {"name": name}})
    return name


@pytest.mark.parametrize("name", ["default_render", "full_render"])
def test_every_rendered_object_passes_a_server_side_dry_run(request, kube, name):
    documents = request.getfixturevalue(name)
    namespace = new_namespace(kube)
    dynamic = kube.dynamic_client()
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        answer = resource.server_side_apply(
            body=document, namespace=namespace, field_manager=FIELD_MANAGER, dry_run="All"
        )
        assert answer.metadata.name == document["metadata"]["name"]
    # A dry run writes nothing.
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        assert not resource.get(namespace=namespace).items, document["kind"]


def test_the_dry_run_refuses_what_its_schemas_do_not_allow(kube, default_render):
    """The dry run above proves something: the same call refuses a malformed object."""
    from kubernetes.client.exceptions import ApiException

    web = copy.deepcopy(of_kind(default_render, "Deployment")["sluice-web"])
    web["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    resource = kube.dynamic_client().resources.get(api_version="apps/v1", kind="Deployment")
    with pytest.raises(ApiException) as refused:
        resource.server_side_apply(
            body=web, namespace=new_namespace(kube), field_manager=FIELD_MANAGER, dry_run="All"
        )
    assert refused.value.status >= 400
    assert "field not declared in schema" in refused.value.body
    assert "runAsNonroot" in refused.value.body


def test_the_chart_installs_upgrades_and_rolls_back_on_the_api_server(helm, kube):
    from kubernetes import client

    namespace = new_namespace(kube)
    target = ["--namespace", namespace, "--kubeconfig", str(kube.kubeconfig)]
    # No --wait: nothing runs pods here, so the migrations Job stays pending.
    helm("install", RELEASE, str(CHART), "--values", str(FULL_VALUES), *target)
    api = kube.api_client()
    apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
    jobs = {job.metadata.name for job in batch.list_namespaced_job(namespace).items}
    assert jobs == {"sluice-migrate-1"}
    deployments = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
    assert deployments == {
        "sluice-web",
        "sluice-beat",
        "sluice-worker-default",
        "sluice-worker-provisioning",
        "sluice-worker-metering",
        "sluice-worker-billing",
    }

    helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "--values",
        str(FULL_VALUES),
        "--set",
        "web.processes=5",
        *target,
    )
    jobs = {job.metadata.name for job in batch.list_namespaced_job(namespace).items}
    assert "sluice-migrate-2" in jobs
    web = apps.read_namespaced_deployment("sluice-web", namespace)
    (container,) = web.spec.template.spec.containers
    assert {"name": "WEB_CONCURRENCY", "value": "5"} in [
        {"name": variable.name, "value": variable.value} for variable in container.env
    ]
    # The upgrade removed the former revision's Job; a rollback puts it back, to run again.
    assert "sluice-migrate-1" not in jobs

    helm("rollback", RELEASE, "1", *target)
    jobs = {job.metadata.name for job in batch.list_namespaced_job(namespace).items}
    assert jobs == {"sluice-migrate-1"}
    history = yaml.safe_load(helm("history", RELEASE, "--output", "yaml", *target).stdout)
    assert [(entry["revision"], entry["status"]) for entry in history] == [
        (1, "superseded"),
        (2, "superseded"),
        (3, "deployed"),
    ]
