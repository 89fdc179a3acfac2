"""The project layout: `platform/` must never shadow the standard library's `platform`."""

import json
import textwrap
import tomllib

from tests.support.processes import PACKAGE_FOLDERS, REPO_ROOT, clean_environment, run_python


def test_platform_folder_is_not_a_package():
    assert (REPO_ROOT / "platform" / "controlplane" / "__init__.py").is_file()
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_uuid_django_and_celery_import_from_the_repo_root():
    code = textwrap.dedent(
        """
        import json, sys, sysconfig
        assert sys.path[0] == "", sys.path[:2]  # the repository root comes first, as with -c
        import platform
        import uuid
        import django
        import celery
        import controlplane
        print(json.dumps({
            "platform_file": platform.__file__,
            "stdlib": sysconfig.get_paths()["stdlib"],
            "system": platform.system(),
            "uuid": str(uuid.uuid4()),
            "django": django.get_version(),
            "celery": celery.__version__,
            "controlplane": controlplane.__file__,
        }))
        """
    )
    result = run_python(code, env=clean_environment())
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["platform_file"].startswith(found["stdlib"])
    assert found["system"] == "Linux"
    assert len(found["uuid"]) == 36
    assert found["django"].startswith("5.2")
    assert found["controlplane"] == str(REPO_ROOT / "platform" / "controlplane" / "__init__.py")


def test_controlplane_is_importable_outside_the_repository(tmp_path):
    result = run_python(
        "import controlplane.settings.base as s; print(s.BASE_DIR)",
        env=clean_environment(SLUICE_DATA_DIR=str(tmp_path)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(REPO_ROOT)


def test_every_package_is_installed():
    """A non-editable install (the image) takes the packages pyproject.toml lists: each folder
    with an __init__.py under the five packages is one of them."""
    listed = set(
        tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join((name, *init.parent.relative_to(root).parts))
        for name, root in PACKAGE_FOLDERS.items()
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found == listed
