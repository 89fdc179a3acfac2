"""The gates every submission passes: lint, formatting, and committed migrations."""

import subprocess
import sys

from tests.support.processes import REPO_ROOT, clean_environment

RUFF = [sys.executable, "-m", "ruff"]


def run(argv: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, env=clean_environment(**env)
    )


def test_ruff_check_is_clean():
    result = run([*RUFF, "check", "--no-cache", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_rejects_a_platform_package(tmp_path):
    """A005 is on: were platform/ made a package, ruff check would fail."""
    (tmp_path / "pyproject.toml").write_text((REPO_ROOT / "pyproject.toml").read_text())
    package = tmp_path / "platform"
    package.mkdir()
    (package / "__init__.py").write_text('"""Shadows the standard library."""\n')
    result = subprocess.run(
        [*RUFF, "check", "--no-cache", "--select", "A005", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "A005" in result.stdout
    assert "platform" in result.stdout


def test_ruff_format_is_clean():
    result = run([*RUFF, "format", "--no-cache", "--check", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_are_committed(tmp_path):
    result = run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        SLUICE_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
