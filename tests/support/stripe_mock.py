"""stripe-mock, Stripe's own mock of its API, for the contract tests: built from its Go module by
tests/support/stripe/build.sh, started here on free 127.0.0.1 ports (its HTTP and its HTTPS
listener both, so neither binds every address). It checks each request against the OpenAPI
description of its Stripe API version and answers with fixtures; it keeps no state and ignores
Idempotency-Key (tests/support/stripe_standin.py is the stateful stand-in)."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.kubeenv import cache_dir, versions
from tests.support.processes import REPO_ROOT
from tests.support.services import LOOPBACK, Server, free_port, wait_for

STRIPE_DIR = REPO_ROOT / "tests" / "support" / "stripe"
# Any key of test-mode form: stripe-mock checks the form, not the key.
API_KEY = "sk_test_sluicecontract"


def binary() -> Path:
    version = versions(STRIPE_DIR / "versions.env")["STRIPE_MOCK_VERSION"]
    path = cache_dir() / f"stripe-mock-{version}" / "stripe-mock"
    if not path.exists():
        subprocess.run(["bash", str(STRIPE_DIR / "build.sh")], check=True)
    return path


class StripeMockServer(Server):
    name = "stripe-mock"

    def start(self) -> None:
        self.https_port = free_port()
        self.process = self._spawn(
            [
                str(binary()),
                "-http-addr",
                f"{LOOPBACK}:{self.port}",
                "-https-addr",
                f"{LOOPBACK}:{self.https_port}",
                # A Stripe-Version other than its own is an error, not a fixture: the pinned
                # stripe library must speak the API version this stripe-mock describes.
                "-strict-version-check",
            ],
            cwd=self.workdir,
        )
        wait_for(self._answers, timeout=60, what="stripe-mock", process=self.process)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/v1/customers", timeout=1)  # noqa: S310 - loopback
        except urllib.error.HTTPError:  # 401 without a key: it is serving
            return True
        return True

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"
