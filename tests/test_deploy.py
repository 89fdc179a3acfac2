"""deploy/: no Docker engine runs here, so the files are checked for what can be checked: they
parse, and every command they run exists in the project."""

import importlib
import importlib.util
import re
import shlex

import pytest
import yaml
from django.core.management import get_commands

from tests.support.processes import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def assert_command_exists(argv: list[str]) -> None:
    program, *args = argv
    if program == "python" and args[:1] == ["manage.py"]:
        assert args[1] in get_commands(), f"no management command {args[1]!r}"
    elif program == "python" and args[:1] == ["-m"]:
        assert importlib.util.find_spec(args[1]), f"no module {args[1]!r}"
    elif program == "gunicorn":
        module, _, attribute = args[0].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute or "application"))
    elif program == "celery":
        assert args[0] == "-A"
        app = importlib.import_module(args[1]).celery_app
        assert args[2] in {"worker", "beat"}
        assert app.main == "sluice"
    else:
        pytest.fail(f"unknown program in a deploy command: {argv}")


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_the_whole_control_plane():
    services = compose()["services"]
    assert set(services) == {"postgres", "redis", "migrations", "web", "worker", "beat"}


@pytest.mark.parametrize("service", ["migrations", "web", "worker", "beat"])
def test_compose_service_runs_a_command_of_the_project(service):
    definition = compose()["services"][service]
    assert definition["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / definition["build"]["context"] / definition["build"]["dockerfile"]).is_file()
    assert definition["environment"]["DATABASE_URL"].startswith("postgres://")
    assert_command_exists(definition["command"])


def test_compose_waits_for_migrations_before_serving():
    services = compose()["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrations"] == {
            "condition": "service_completed_successfully"
        }


def test_dockerfile_is_multi_stage_non_root_and_collects_static():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 2
    final_stage = text.split("\nFROM ")[-1]
    user = re.findall(r"^USER\s+(\S+)", final_stage, flags=re.MULTILINE)
    assert user
    assert user[-1] not in {"root", "0"}
    assert "manage.py collectstatic" in text
    copied = re.findall(r"^COPY --from=build \S+ /src/(\S+)", final_stage, flags=re.MULTILINE)
    assert "staticfiles" in copied  # what collectstatic wrote in the build stage
    for path in set(copied) - {"staticfiles"}:
        assert (REPO_ROOT / path).exists(), f"the image copies {path}, which does not exist"
    cmd = re.search(r"^CMD (\[.*\])$", final_stage, flags=re.MULTILINE)
    assert_command_exists(yaml.safe_load(cmd.group(1)))
    for lock in re.findall(r"requirements[\w.-]*\.lock", text):
        assert (REPO_ROOT / lock).is_file()


def test_local_procfile_commands_exist():
    lines = (DEPLOY / "Procfile.local").read_text().strip().splitlines()
    processes = dict(line.split(":", 1) for line in lines)
    assert set(processes) == {"web", "worker", "beat"}
    for command in processes.values():
        assert_command_exists(shlex.split(command))
