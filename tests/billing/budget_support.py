"""What the budget-alert tests share: a ledger of Serverless ingress whose cost is easy to write
out by hand, and a real HTTP server on 127.0.0.1 standing for a customer's webhook endpoint."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from billing import spend
from billing.services import HourSnapshot, record_hours
from clusters.models import ClusterSize, Dimension
from tests.factories import UserFactory, make_cluster, make_org

GB = 10**9
SEPTEMBER = datetime(2026, 9, 1, tzinfo=UTC)
# Serverless ingress is priced at $0.08 per GB (80,000 micro-dollars per 10^9 bytes).
INGRESS_MICROS_PER_GB = 80_000


def organization_with_cluster(name: str):
    """An organization with one Serverless cluster, its tier on record since September."""
    organization = make_org(owner=UserFactory(email=f"owner@{name.lower()}.example"), name=name)
    cluster, _ = make_cluster(organization, name="events")
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=SEPTEMBER)
    return organization, cluster


def write_ingress(cluster, hour: datetime, gigabytes: int) -> None:
    record_hours([HourSnapshot(cluster.pk, Dimension.INGRESS_BYTES, hour, gigabytes * GB, True)])


def standings_at(now: datetime, *organizations) -> dict:
    return spend.standings([organization.pk for organization in organizations], now=now)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    """The server's address, what it received, and the statuses it answers next (200 once
    they run out)."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)


def serve_endpoint():
    """Start a webhook endpoint on 127.0.0.1 in a thread; yields an ``Endpoint``."""
    endpoint = Endpoint(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                endpoint.received.append(Received(self.path, dict(self.headers.items()), body))
                status = endpoint.statuses.popleft() if endpoint.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/sluice"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
