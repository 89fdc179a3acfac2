"""The control plane's Helm chart as the deployment tests see it: the helm binary (built by
tests/support/helm/build.sh), rendering, and reading the render."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.kubeenv import cache_dir, versions
from tests.support.processes import REPO_ROOT

CHART = REPO_ROOT / "deploy" / "helm" / "sluice"
FULL_VALUES = REPO_ROOT / "tests" / "deploy" / "values-full.yaml"
HELM_BUILD = REPO_ROOT / "tests" / "support" / "helm"
RELEASE = "sluice"
POD_OWNERS = {"Deployment", "Job"}


def helm_binary() -> Path:
    version = versions(HELM_BUILD / "versions.env")["HELM_VERSION"]
    path = cache_dir() / f"helm-{version}" / "helm"
    if not path.exists():
        subprocess.run(["bash", str(HELM_BUILD / "build.sh")], check=True)
    return path


def helm_runner(home: Path):
    """Runs helm with its configuration, cache and data under ``home``; fails the test with
    helm's output when it fails, unless ``check=False``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    binary = helm_binary()

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(binary), *args], env=env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


def render(helm, *options: str) -> list[dict]:
    output = helm("template", RELEASE, str(CHART), "--namespace", "sluice", *options).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def full_values() -> dict:
    return yaml.safe_load(FULL_VALUES.read_text())


def of_kind(documents: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


def pod_specs(documents: list[dict]) -> dict[str, dict]:
    return {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]
        for doc in documents
        if doc["kind"] in POD_OWNERS
    }


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def dockerfile_runtime() -> tuple[str, dict[str, str]]:
    """The final stage's USER and ENV of deploy/Dockerfile."""
    stage = (REPO_ROOT / "deploy" / "Dockerfile").read_text().split("\nFROM ")[-1]
    user = re.findall(r"^USER\s+(\S+)", stage, flags=re.MULTILINE)[-1]
    env_block = re.search(r"^ENV (.*?)\n(?=\S)", stage, flags=re.MULTILINE | re.DOTALL).group(1)
    env = dict(re.findall(r"(\w+)=(\S+)", env_block))
    return user, env
