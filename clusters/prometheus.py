"""The HTTP client of a cell's Prometheus: instant and range queries, failures as one error.

Metering reads raw samples through it (billing.prometheus); the cluster and topic pages read
their live rates through it (clusters.live_metrics)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings


class PrometheusError(RuntimeError):
    """The cell's Prometheus could not answer (unreachable, slow, or refusing the query)."""


class PrometheusClient:
    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout or settings.SLUICE_PROMETHEUS_TIMEOUT_SECONDS

    def _get(self, endpoint: str, params: dict[str, str], expr: str) -> dict:
        body = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/{endpoint}", data=body)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"{self.url}: {expr}: {error.read()[:500]!r}") from error
        except (OSError, ValueError) as error:
            raise PrometheusError(f"{self.url}: {error}") from error
        if answer.get("status") != "success":
            raise PrometheusError(f"{self.url}: {expr}: {answer.get('error')}")
        return answer["data"]

    def _query(self, expr: str, at: float) -> dict:
        return self._get("query", {"query": expr, "time": f"{at:.3f}"}, expr)

    def query_range(self, expr: str, *, start: float, end: float, step: float) -> list[dict]:
        """The expression evaluated every ``step`` seconds from ``start`` to ``end``: a matrix,
        each series's ``values`` a list of ``[seconds, "value"]``."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return self._get("query_range", params, expr)["result"]


def regex_literal(text: str) -> str:
    """A topic name (letters, digits, ``._-``) matched literally by a PromQL regex."""
    return "".join(f"\\\\{c}" if not c.isalnum() and c != "_" else c for c in text)
