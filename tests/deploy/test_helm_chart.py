"""deploy/helm/sluice/, the control plane's Helm chart: it lints strictly, renders with its
defaults and with every option on (tests/deploy/values-full.yaml), the render is what the
deployment needs (restricted pods, secrets only from the existing Secret, one beat, each worker
group on its own queues, every pod waiting for the migrations), and the chart refuses values
that would leave a queue unconsumed or that its schema does not allow. test_helm_kube.py takes it
to the test API server."""

from __future__ import annotations

import re
import tomllib
from pathlib import PurePosixPath

import pytest
import yaml
from django.conf import settings

from tests.deploy.chart import (
    CHART,
    FULL_VALUES,
    HELM_BUILD,
    RELEASE,
    containers,
    dockerfile_runtime,
    full_values,
    of_kind,
    pod_specs,
)
from tests.support.kubeenv import versions
from tests.support.processes import REPO_ROOT
from tests.test_deploy import assert_command_exists


def worker_queues(documents: list[dict]) -> dict[str, list[str]]:
    queues = {}
    for name, pod in pod_specs(documents).items():
        (container,) = pod["containers"]
        if container["name"] == "worker":
            (option,) = [arg for arg in container["command"] if arg.startswith("--queues=")]
            queues[name] = option.removeprefix("--queues=").split(",")
    return queues


# Lint and version ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, FULL_VALUES], ids=["defaults", "full"])
def test_the_chart_lints_strictly(helm, values):
    options = ["--values", str(values)] if values else []
    result = helm("lint", "--strict", str(CHART), *options)
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_helm_is_the_pinned_version_built_from_its_module(helm):
    pinned = versions(HELM_BUILD / "versions.env")["HELM_VERSION"]
    assert helm("version", "--template", "{{ .Version }}").stdout == pinned


def test_the_chart_and_its_default_image_follow_the_project_version(default_render):
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == project
    assert chart["appVersion"] == project
    for pod in pod_specs(default_render).values():
        for container in containers(pod):
            assert container["image"] == f"sluice:{project}"


# What the render holds ----------------------------------------------------------------------


def test_defaults_render_the_whole_control_plane(default_render):
    deployments = of_kind(default_render, "Deployment")
    assert set(deployments) == {"sluice-web", "sluice-worker-all", "sluice-beat"}
    assert set(of_kind(default_render, "Job")) == {"sluice-migrate-1"}
    assert set(of_kind(default_render, "Service")) == {"sluice-web"}
    assert set(of_kind(default_render, "PodDisruptionBudget")) == {
        "sluice-web",
        "sluice-worker-all",
    }
    assert not of_kind(default_render, "Ingress")
    assert not of_kind(default_render, "HorizontalPodAutoscaler")


@pytest.mark.parametrize("name", ["default_render", "full_render"])
def test_no_secret_is_rendered_and_every_container_reads_the_existing_one(request, name):
    documents = request.getfixturevalue(name)
    expected = "sluice-production" if name == "full_render" else "sluice"
    assert not of_kind(documents, "Secret")
    (config,) = of_kind(documents, "ConfigMap").values()
    secret_variables = {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "SLUICE_SECRETS_KEYS"}
    assert not secret_variables & set(config["data"])
    assert config["data"]["DJANGO_SETTINGS_MODULE"] == "controlplane.settings.production"
    assert config["data"]["SLUICE_DATAPLANE_DRIVER"] == "kubernetes"
    for pod in pod_specs(documents).values():
        for container in containers(pod):
            assert container["envFrom"] == [
                {"configMapRef": {"name": config["metadata"]["name"]}},
                {"secretRef": {"name": expected}},
            ]
            names = {variable["name"] for variable in container.get("env", [])}
            assert not secret_variables & names


@pytest.mark.parametrize("name", ["default_render", "full_render"])
def test_every_pod_runs_restricted(request, name):
    user, image_env = dockerfile_runtime()
    uid, _, gid = user.partition(":")
    writable = {"/tmp", image_env["SLUICE_DATA_DIR"]}
    for pod_name, pod in pod_specs(request.getfixturevalue(name)).items():
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, pod_name
        assert str(context["runAsUser"]) == uid, pod_name
        assert str(context["runAsGroup"]) == gid, pod_name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, pod_name
        assert isinstance(pod["automountServiceAccountToken"], bool), pod_name
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert all("emptyDir" in volume for volume in volumes.values()), pod_name
        for container in containers(pod):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, pod_name
            assert security["readOnlyRootFilesystem"] is True, pod_name
            assert security["capabilities"] == {"drop": ["ALL"]}, pod_name
            assert security["runAsNonRoot"] is True, pod_name
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, pod_name
            mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert writable <= mounted, (pod_name, container["name"])
            assert container["resources"]["requests"], (pod_name, container["name"])


def test_service_account_tokens_are_mounted_only_where_asked(default_render, full_render):
    for documents in (default_render, full_render):
        (account,) = of_kind(documents, "ServiceAccount").values()
        assert account["automountServiceAccountToken"] is False
    assert not any(p["automountServiceAccountToken"] for p in pod_specs(default_render).values())
    mounted = {
        name for name, pod in pod_specs(full_render).items() if pod["automountServiceAccountToken"]
    }
    # values-full.yaml asks for the token (a cell reached with in-cluster credentials): web and
    # the workers talk to the data plane, beat and the migrations never do.
    assert mounted == {
        "sluice-web",
        "sluice-worker-default",
        "sluice-worker-provisioning",
        "sluice-worker-metering",
        "sluice-worker-billing",
    }


@pytest.mark.parametrize("name", ["default_render", "full_render"])
def test_beat_is_one_replica_replaced_never_rolled_nor_scaled(request, name):
    documents = request.getfixturevalue(name)
    beat = of_kind(documents, "Deployment")["sluice-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = beat["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["celery", "-A", "controlplane", "beat", "--loglevel=INFO"]
    targets = [
        hpa["spec"]["scaleTargetRef"]["name"]
        for hpa in of_kind(documents, "HorizontalPodAutoscaler").values()
    ]
    assert "sluice-beat" not in targets
    assert "sluice-beat" not in of_kind(documents, "PodDisruptionBudget")


def test_each_worker_group_consumes_its_own_queues(default_render, full_render):
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert worker_queues(default_render) == {
        "sluice-worker-all": sorted(
            declared, key=["celery", "provisioning", "metering", "billing"].index
        )
    }
    expected = {
        f"sluice-worker-{group['name']}": group["queues"]
        for group in full_values()["worker"]["groups"]
    }
    assert worker_queues(full_render) == expected
    for documents in (default_render, full_render):
        consumed = {queue for queues in worker_queues(documents).values() for queue in queues}
        assert consumed == declared
    chart_queues = yaml.safe_load((CHART / "values.yaml").read_text())["queues"]
    assert set(chart_queues) == declared
    for name, pod in pod_specs(full_render).items():
        (container,) = pod["containers"]
        if container["name"] == "worker":
            group = name.removeprefix("sluice-worker-")
            assert f"--hostname={group}@%h" in container["command"]
            assert_command_exists(container["command"][:4])


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (
            [{"name": "a", "queues": ["celery", "provisioning", "billing"]}],
            'no group consumes the queue "metering"',
        ),
        (
            [{"name": "a", "queues": ["celery", "provisioning", "metering", "biling"]}],
            '"biling" is not a queue of Sluice',
        ),
        (
            [{"name": "Bad_Name", "queues": ["celery", "provisioning", "metering", "billing"]}],
            "is not a short DNS label",
        ),
        (
            [{"name": "all", "queues": ["celery", "provisioning", "metering", "billing"]}] * 2,
            '"all" is named twice',
        ),
    ],
)
def test_the_chart_refuses_worker_groups_that_would_leave_tasks_unrun(
    helm, tmp_path, groups, message
):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"worker": {"groups": groups}}))
    result = helm("template", RELEASE, str(CHART), "--values", str(values), check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"existingSecret": ""}, "at '/existingSecret': minLength"),
        ({"web": {"processes": "many"}}, "at '/web/processes': got string, want integer"),
        ({"worker": {"groups": []}}, "at '/worker/groups': minItems"),
        ({"config": {"lower_case": "x"}}, "invalid propertyName 'lower_case'"),
        ({"web": {"autoscaling": {"enabled": "yes"}}}, "at '/web/autoscaling/enabled'"),
        ({"config": {"DJANGO_ALLOWED_HOSTS": "x"}}, "list the host names in allowedHosts"),
        ({"config": {"DJANGO_SETTINGS_MODULE": "x"}}, "runs the production settings, always"),
        (
            {"probes": {"heartbeat": {"maxAgeSeconds": "soon"}}},
            "at '/probes/heartbeat/maxAgeSeconds': got string, want integer",
        ),
        (
            {"probes": {"heartbeat": {"liveness": {"periodSecond": 5}}}},
            "additional properties 'periodSecond' not allowed",
        ),
        (
            {"probes": {"heartbeat": {"intervalSeconds": 40}}},
            "maxAgeSeconds must be at least twice intervalSeconds",
        ),
    ],
)
def test_the_chart_refuses_malformed_values(helm, tmp_path, values, message):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    result = helm("template", RELEASE, str(CHART), "--values", str(path), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_full_values_scale_web_and_worker_groups_apart(full_render):
    deployments = of_kind(full_render, "Deployment")
    autoscalers = of_kind(full_render, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {
        "sluice-web",
        "sluice-worker-provisioning",
        "sluice-worker-metering",
        "sluice-worker-billing",
    }
    for name, autoscaler in autoscalers.items():
        assert autoscaler["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert "replicas" not in deployments[name]["spec"]  # the autoscaler owns it
    assert autoscalers["sluice-web"]["spec"]["minReplicas"] == 3
    assert deployments["sluice-worker-default"]["spec"]["replicas"] == 1
    budgets = of_kind(full_render, "PodDisruptionBudget")
    assert set(budgets) == {
        "sluice-web",
        "sluice-worker-default",
        "sluice-worker-provisioning",
        "sluice-worker-metering",
    }
    assert budgets["sluice-web"]["spec"]["minAvailable"] == 2
    metering = deployments["sluice-worker-metering"]["spec"]["template"]["spec"]["containers"][0]
    assert metering["resources"]["limits"] == {"memory": "2Gi"}
    for name, budget in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", ["default_render", "full_render"])
def test_every_pod_waits_for_the_migrations_of_its_revision(request, name):
    documents = request.getfixturevalue(name)
    (job,) = of_kind(documents, "Job").values()
    assert job["metadata"]["name"] == "sluice-migrate-1"
    assert "helm.sh/hook" not in job["metadata"].get("annotations", {})
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert_command_exists(migrate["command"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for deployment in of_kind(documents, "Deployment").values():
        (wait,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert wait["name"] == "wait-for-migrations"
        assert "python manage.py migrate --check" in wait["command"][-1]


def test_web_is_probed_on_health_and_scraped(full_render):
    config = of_kind(full_render, "ConfigMap")["sluice"]["data"]
    allowed = config["DJANGO_ALLOWED_HOSTS"].split(",")
    assert {"sluice.example.com", "console.example.com", "api.sluice.example.com"} <= set(allowed)
    web = of_kind(full_render, "Deployment")["sluice-web"]["spec"]["template"]
    assert web["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert web["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    (container,) = web["spec"]["containers"]
    assert_command_exists(container["command"])
    # The image's own command (deploy/Dockerfile's CMD), which compose runs too.
    stage = (REPO_ROOT / "deploy" / "Dockerfile").read_text().split("\nFROM ")[-1]
    (image_command,) = re.findall(r"^CMD (\[.*\])$", stage, flags=re.MULTILINE)
    assert container["command"] == yaml.safe_load(image_command)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        check = container[probe]["httpGet"]
        assert check["path"] == path
        assert check["port"] == "http"
        # Django refuses a Host it does not serve; the kubelet would send the pod's IP.
        (host,) = [h["value"] for h in check["httpHeaders"] if h["name"] == "Host"]
        assert host in allowed
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    metrics_dir = env["PROMETHEUS_MULTIPROC_DIR"]
    # Prometheus scrapes the pod at its own address, which web must serve as a host too.
    pod_ip = next(v for v in container["env"] if v["name"] == "POD_IP")
    assert pod_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["DJANGO_ALLOWED_HOSTS"].split(",") == [*allowed, "$(POD_IP)"]
    assert metrics_dir in {mount["mountPath"] for mount in container["volumeMounts"]}
    (ingress,) = of_kind(full_render, "Ingress").values()
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == set(of_kind(full_render, "Service"))


HEARTBEAT_VARIABLES = {
    "worker": "SLUICE_CELERY_WORKER_HEARTBEAT_FILE",
    "beat": "SLUICE_CELERY_BEAT_HEARTBEAT_FILE",
}


@pytest.mark.parametrize("name", ["default_render", "full_render"])
def test_workers_and_beat_are_probed_on_their_heartbeat_files(request, name):
    documents = request.getfixturevalue(name)
    heartbeat = yaml.safe_load((CHART / "values.yaml").read_text())["probes"]["heartbeat"]
    probed = {}
    for pod_name, pod in pod_specs(documents).items():
        (container,) = pod["containers"]
        if container["name"] not in HEARTBEAT_VARIABLES:
            continue
        env = {variable["name"]: variable["value"] for variable in container["env"]}
        path = env[HEARTBEAT_VARIABLES[container["name"]]]
        assert float(env["SLUICE_CELERY_HEARTBEAT_INTERVAL"]) == heartbeat["intervalSeconds"]
        # The root filesystem is read-only: the file is in the pod's own /tmp (an emptyDir).
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert str(PurePosixPath(path).parent) in mounts, pod_name
        check = ["python", "-m", "foundation.heartbeat", path, "--max-age"]
        for probe, timing in (("startupProbe", "startup"), ("livenessProbe", "liveness")):
            assert container[probe] == {
                "exec": {"command": [*check, str(heartbeat["maxAgeSeconds"])]},
                **heartbeat[timing],
            }, (pod_name, probe)
        assert_command_exists(container["startupProbe"]["exec"]["command"])
        # A live process beats several times within the age the probe allows.
        assert heartbeat["maxAgeSeconds"] >= 2 * heartbeat["intervalSeconds"]
        # Starting (Django, reaching the broker) gets minutes before liveness takes over.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
        probed[pod_name] = path
    deployments = set(of_kind(documents, "Deployment"))
    assert set(probed) == deployments - {"sluice-web"}
    assert probed["sluice-beat"] == "/tmp/sluice-beat.heartbeat"
