"""The chart's runner and its two renders, shared by the deployment tests of a session."""

import pytest

from tests.deploy.chart import FULL_VALUES, helm_runner, render


@pytest.fixture(scope="session")
def helm(tmp_path_factory):
    return helm_runner(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def default_render(helm) -> list[dict]:
    return render(helm)


@pytest.fixture(scope="session")
def full_render(helm) -> list[dict]:
    return render(helm, "--values", str(FULL_VALUES))
