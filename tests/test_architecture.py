"""The import contracts of pyproject.toml ([tool.importlinter], explained in ARCHITECTURE.md):
the layers foundation <- tenants <- clusters <- billing <- controlplane, and no import cycle
between the modules of one package. They hold on the code as it is, and a wrong-way import or
a new cycle breaks them with a message naming the rule and the import."""

import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

from tests.support.processes import PACKAGE_FOLDERS, REPO_ROOT, clean_environment

LINT_IMPORTS = [
    str(pathlib.Path(sys.executable).with_name("lint-imports")),
    "--no-logo",
    "--no-cache",
]


def lint_imports(root) -> subprocess.CompletedProcess:
    """lint-imports on the packages found first on the path under `root`, with the project's
    contracts."""
    return subprocess.run(
        [*LINT_IMPORTS, str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        env=clean_environment(PYTHONPATH=str(root)),
    )


@pytest.fixture
def source_copy(tmp_path):
    """The five packages and pyproject.toml copied side by side, where a test may add a module
    without touching the repository."""
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for name, folder in PACKAGE_FOLDERS.items():
        shutil.copytree(folder, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_code_keeps_every_import_contract():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_the_copy_is_what_the_contracts_check(source_copy):
    """The copy alone is analysed (not the installed packages): it passes as the repository
    does, so the failures below come from the module each adds."""
    result = lint_imports(source_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_layers_contract(source_copy):
    (source_copy / "tenants" / "wrong_way.py").write_text("from billing import selectors\n")
    result = lint_imports(source_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Layers: foundation <- tenants <- clusters <- billing <- controlplane" in result.stdout
    assert "tenants is not allowed to import billing" in result.stdout
    assert "tenants.wrong_way -> billing.selectors (l.1)" in result.stdout


def test_the_foundation_importing_an_app_breaks_the_layers_contract(source_copy):
    (source_copy / "foundation" / "wrong_way.py").write_text("import tenants.models\n")
    result = lint_imports(source_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "foundation is not allowed to import tenants" in result.stdout


def test_a_cycle_between_modules_of_one_app_breaks_the_acyclic_contract(source_copy):
    (source_copy / "billing" / "cycle_a.py").write_text("from billing import cycle_b\n")
    (source_copy / "billing" / "cycle_b.py").write_text("from billing import cycle_a\n")
    result = lint_imports(source_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No import cycle between the modules" in result.stdout
    assert "No cycles are allowed in billing." in result.stdout


def test_no_contract_has_exceptions():
    """Each contract holds for every import: none is waved through by an ignore list."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert {contract["id"] for contract in config["contracts"]} == {"layers", "no-cycles"}
    for contract in config["contracts"]:
        assert not contract.get("ignore_imports"), contract["id"]
