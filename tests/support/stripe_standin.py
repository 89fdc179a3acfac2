"""A small stateful Stripe for the exactly-once tests, and a proxy that injects faults in front
of it (or of stripe-mock).

stripe-mock checks requests against Stripe's API description but keeps nothing and ignores
Idempotency-Key, so it cannot show that a retried push leaves one invoice item per line. The
stand-in keeps customers, invoices and invoice items, answers just the endpoints Sluice uses
(billing/stripe_gateway.py) in Stripe's shapes, and honours Idempotency-Key as Stripe documents
it: the first response to a key is replayed for 24 hours of the stand-in's clock (``advance``
moves it), and the same key with another method, path or parameters is a 400
``idempotency_error``. As Stripe, it saves no response for a request it refused before acting
(validation errors). Unlike Stripe, it handles one request at a time, so two requests with one
key never run at once (Stripe would answer the second 409). What Stripe does on its own
(collecting an invoice, a customer changing their card) a test plays with
``invoice_status_set`` and ``customer_payment_method_set``.

``FaultProxy`` sits between the client and a server and, by a plan of the test's, answers a
request 500 or 429 (with Retry-After) without forwarding it, holds it past the client's timeout
without forwarding it, or forwards it and drops the response: the request took effect, and the
client cannot know. It can also forward a request and hold its response, so a test can kill the
client after Stripe acted and before the client heard of it.
"""

from __future__ import annotations

import enum
import http.client
import itertools
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.services import LOOPBACK

IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
API_KEY = "sk_test_sluice_standin"


class _Refused(Exception):
    """A Stripe error answer (nothing was done, so nothing is saved under the key)."""

    def __init__(self, status: int, message: str, *, type_="invalid_request_error", **extra):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, **extra}}


def _form(body: bytes) -> dict:
    """Stripe's form encoding: ``metadata[key]=value`` nests one level, as Sluice sends it."""
    params: dict = {}
    for name, value in urllib.parse.parse_qsl(body.decode(), keep_blank_values=True):
        if "[" in name and name.endswith("]"):
            outer, inner = name[:-1].split("[", 1)
            params.setdefault(outer, {})[inner] = value
        else:
            params[name] = value
    return params


def _only(params: dict, allowed: set[str]) -> None:
    for name in params:
        if name not in allowed:
            raise _Refused(400, f"Received unknown parameter: {name}", param=name)


def _integer(params: dict, name: str) -> int:
    try:
        return int(params[name])
    except KeyError:
        raise _Refused(400, f"Missing required param: {name}.", param=name) from None
    except ValueError:
        raise _Refused(400, f"Invalid integer: {params[name]}", param=name) from None


@dataclass
class RecordedRequest:
    method: str
    path: str
    idempotency_key: str | None
    replayed: bool


@dataclass
class _Saved:
    at: float
    request: tuple
    status: int
    body: bytes


@dataclass
class StripeStandIn:
    """Use as a context manager; ``url`` is its API base."""

    customers: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    invoice_items: dict[str, dict] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._saved: dict[tuple[str, str], _Saved] = {}
        self._clock_offset = 0.0
        self._sequence = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # The stand-in's clock --------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += seconds

    # Serving ---------------------------------------------------------------------------------

    def __enter__(self) -> StripeStandIn:
        self._server = _serve(self._answer)
        return self

    def __exit__(self, *exc) -> None:
        _stop(self._server)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def items_of(self, invoice: str) -> list[dict]:
        return [item for item in self.invoice_items.values() if item["invoice"] == invoice]

    # What happens in Stripe without Sluice asking: collection, a customer's own changes.

    def invoice_status_set(self, invoice: str, status: str) -> dict:
        """The invoice becomes ``status`` (paid, uncollectible, void), stamped now."""
        with self._lock:
            found = self._invoice(invoice)
            found["status"] = status
            transition = {"paid": "paid_at", "void": "voided_at"}.get(status)
            if transition is None and status == "uncollectible":
                transition = "marked_uncollectible_at"
            if transition is not None:
                found["status_transitions"][transition] = int(self.now())
            return found

    def customer_payment_method_set(self, customer: str, payment_method: str | None) -> dict:
        """The customer's default payment method for invoices (a ``pm_…``, or None)."""
        with self._lock:
            found = self.customers[customer]
            found["invoice_settings"]["default_payment_method"] = payment_method
            return found

    def _answer(self, method: str, target: str, headers, body: bytes) -> tuple[int, dict, bytes]:
        """(status, extra headers, body) of one request."""
        with self._lock:
            url = urllib.parse.urlsplit(target)
            authorization = headers.get("Authorization", "")
            if not authorization.startswith("Bearer sk_test_"):
                return _error(_Refused(401, "Invalid API Key provided"))
            account = authorization.removeprefix("Bearer ")
            key = headers.get("Idempotency-Key") if method == "POST" else None
            params = _form(body) if method == "POST" else dict(urllib.parse.parse_qsl(url.query))
            request = (method, url.path, json.dumps(params, sort_keys=True))
            saved = self._saved.get((account, key)) if key else None
            if saved is not None and self.now() - saved.at > IDEMPOTENCY_WINDOW_SECONDS:
                del self._saved[(account, key)]  # forgotten, as Stripe forgets after 24 h
                saved = None
            self.requests.append(RecordedRequest(method, url.path, key, saved is not None))
            if saved is not None:
                if saved.request != request:
                    return _error(
                        _Refused(
                            400,
                            "Keys for idempotent requests can only be used with the same"
                            " parameters they were first used with.",
                            type_="idempotency_error",
                        )
                    )
                return saved.status, {"Idempotent-Replayed": "true"}, saved.body
            try:
                status, answer = 200, self._route(method, url.path, params)
            except _Refused as refused:
                return _error(refused)
            encoded = json.dumps(answer).encode()
            if key:
                self._saved[(account, key)] = _Saved(self.now(), request, status, encoded)
            return status, {}, encoded

    def _route(self, method: str, path: str, params: dict) -> dict:
        parts = path.strip("/").split("/")
        routes = {
            ("POST", "v1/customers"): self._create_customer,
            ("POST", "v1/invoices"): self._create_invoice,
            ("GET", "v1/invoices"): self._list_invoices,
            ("POST", "v1/invoiceitems"): self._create_invoice_item,
            ("GET", "v1/invoiceitems"): self._list_invoice_items,
        }
        if (method, path.strip("/")) in routes:
            return routes[(method, path.strip("/"))](params)
        if method == "GET" and parts[:2] == ["v1", "invoices"] and len(parts) == 3:
            _only(params, set())
            return self._invoice(parts[2])
        if method == "GET" and parts[:2] == ["v1", "customers"] and len(parts) == 3:
            _only(params, set())
            if parts[2] not in self.customers:
                raise _Refused(
                    404, f"No such customer: '{parts[2]}'", param="id", code="resource_missing"
                )
            return self.customers[parts[2]]
        if method == "POST" and parts[:2] == ["v1", "invoices"] and parts[3:] == ["finalize"]:
            return self._finalize(parts[2], params)
        raise _Refused(404, f"Unrecognized request URL ({method}: {path}).")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._sequence):06d}{secrets.token_hex(4)}"

    def _create_customer(self, params: dict) -> dict:
        _only(params, {"name", "email", "metadata", "description"})
        customer = {
            "id": self._new_id("cus"),
            "object": "customer",
            "created": int(self.now()),
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
            "invoice_settings": {"default_payment_method": None},
            "default_source": None,
        }
        self.customers[customer["id"]] = customer
        return customer

    def _customer(self, params: dict) -> str:
        customer = params.get("customer")
        if customer is None:
            raise _Refused(400, "Missing required param: customer.", param="customer")
        if customer not in self.customers:
            raise _Refused(
                400, f"No such customer: '{customer}'", param="customer", code="resource_missing"
            )
        return customer

    def _create_invoice(self, params: dict) -> dict:
        _only(
            params,
            {
                "customer",
                "currency",
                "auto_advance",
                "pending_invoice_items_behavior",
                "collection_method",
                "days_until_due",
                "description",
                "metadata",
            },
        )
        customer = self._customer(params)
        method = params.get("collection_method", "charge_automatically")
        if method == "send_invoice" and "days_until_due" not in params:
            raise _Refused(400, "Missing days_until_due for send_invoice", param="days_until_due")
        invoice = {
            "id": self._new_id("in"),
            "object": "invoice",
            "created": int(self.now()),
            "customer": customer,
            "status": "draft",
            "auto_advance": params.get("auto_advance", "true") == "true",
            "collection_method": method,
            "days_until_due": _integer(params, "days_until_due")
            if "days_until_due" in params
            else None,
            "currency": params.get("currency", "usd"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "total": 0,
            "amount_due": 0,
            "status_transitions": {
                "finalized_at": None,
                "paid_at": None,
                "marked_uncollectible_at": None,
                "voided_at": None,
            },
        }
        self.invoices[invoice["id"]] = invoice
        return invoice

    def _invoice(self, invoice_id: str) -> dict:
        if invoice_id not in self.invoices:
            raise _Refused(
                404, f"No such invoice: '{invoice_id}'", param="id", code="resource_missing"
            )
        return self.invoices[invoice_id]

    def _create_invoice_item(self, params: dict) -> dict:
        _only(params, {"customer", "invoice", "amount", "currency", "description", "metadata"})
        customer = self._customer(params)
        amount = _integer(params, "amount")
        if params.get("currency") != "usd":
            raise _Refused(400, "Missing required param: currency.", param="currency")
        invoice = self._invoice(params["invoice"]) if "invoice" in params else None
        if invoice is not None:
            if invoice["customer"] != customer:
                raise _Refused(400, "The invoice belongs to another customer.", param="invoice")
            if invoice["status"] != "draft":
                raise _Refused(
                    400, "You can only add invoice items to draft invoices.", param="invoice"
                )
        item = {
            "id": self._new_id("ii"),
            "object": "invoiceitem",
            "date": int(self.now()),
            "customer": customer,
            "invoice": invoice["id"] if invoice else None,
            "amount": amount,
            "currency": "usd",
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
        }
        self.invoice_items[item["id"]] = item
        if invoice is not None:
            invoice["total"] = invoice["amount_due"] = sum(
                line["amount"] for line in self.items_of(invoice["id"])
            )
        return item

    def _finalize(self, invoice_id: str, params: dict) -> dict:
        _only(params, {"auto_advance"})
        invoice = self._invoice(invoice_id)
        if invoice["status"] != "draft":
            raise _Refused(400, "This invoice is already finalized.", code="invoice_not_editable")
        invoice["amount_due"] = max(invoice["total"], 0)
        # As Stripe: an invoice with nothing to pay is paid when it is finalized.
        invoice["status"] = "open" if invoice["amount_due"] > 0 else "paid"
        invoice["status_transitions"]["finalized_at"] = int(self.now())
        if invoice["status"] == "paid":
            invoice["status_transitions"]["paid_at"] = int(self.now())
        if "auto_advance" in params:
            invoice["auto_advance"] = params["auto_advance"] == "true"
        return invoice

    def _list_invoices(self, params: dict) -> dict:
        _only(params, {"customer", "limit", "starting_after"})
        chosen = [
            invoice
            for invoice in self.invoices.values()
            if "customer" not in params or invoice["customer"] == params["customer"]
        ]
        return _page("/v1/invoices", chosen, params)

    def _list_invoice_items(self, params: dict) -> dict:
        _only(params, {"invoice", "customer", "limit", "starting_after"})
        chosen = [
            item
            for item in self.invoice_items.values()
            if all(item[name] == params[name] for name in ("invoice", "customer") if name in params)
        ]
        return _page("/v1/invoiceitems", chosen, params)


def _page(url: str, objects: list[dict], params: dict) -> dict:
    """Newest first, ``limit`` at a time after ``starting_after``, as Stripe's lists."""
    newest_first = list(reversed(objects))
    if "starting_after" in params:
        ids = [obj["id"] for obj in newest_first]
        newest_first = newest_first[ids.index(params["starting_after"]) + 1 :]
    limit = _integer(params, "limit") if "limit" in params else 10
    return {
        "object": "list",
        "url": url,
        "data": newest_first[:limit],
        "has_more": len(newest_first) > limit,
    }


def _error(refused: _Refused) -> tuple[int, dict, bytes]:
    return refused.status, {}, json.dumps(refused.body).encode()


# The HTTP side, shared with the proxy --------------------------------------------------------


def _serve(answer) -> ThreadingHTTPServer:
    """A threaded HTTP/1.1 server on a free loopback port; ``answer(method, target, headers,
    body)`` returns (status, headers, body), or None to close the connection unanswered."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answered = answer(self.command, self.path, self.headers, body)
            if answered is None:
                self.close_connection = True
                return
            status, headers, payload = answered
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def _stop(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


# The fault-injecting proxy -------------------------------------------------------------------


class Fault(enum.Enum):
    SERVER_ERROR = "500, not forwarded"
    RATE_LIMITED = "429 with Retry-After, not forwarded"
    TIMEOUT = "held past the client's timeout, not forwarded"
    RESPONSE_LOST = "forwarded, then the connection closed without the response"
    RESPONSE_HELD = "forwarded, then the response held for hold_seconds before it is sent"


@dataclass
class _Rule:
    fault: Fault | None
    method: str | None
    path_prefix: str


@dataclass
class ProxiedRequest:
    method: str
    path: str
    headers: dict[str, str]
    fault: Fault | None


class FaultProxy:
    """Forwards to ``upstream`` (a base URL) unless a planned fault matches the request. Use
    as a context manager; point the client at ``url``."""

    FORWARDED_HEADERS = ("Idempotent-Replayed", "Request-Id", "Stripe-Should-Retry")

    def __init__(self, upstream: str, *, hold_seconds: float = 5.0, retry_after: int = 1):
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname, parsed.port)
        self.hold_seconds = hold_seconds
        self.retry_after = retry_after
        self.log: list[ProxiedRequest] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def plan(self, *faults: Fault | None, method: str | None = None, path_prefix: str = "/"):
        """The next requests matching ``method`` and ``path_prefix`` meet these faults, one
        each, in order (None: forwarded as is); other requests pass."""
        with self._lock:
            self._rules.extend(_Rule(fault, method, path_prefix) for fault in faults)

    def __enter__(self) -> FaultProxy:
        self._server = _serve(self._answer)
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        _stop(self._server)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def _take_rule(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.method in (None, method) and path.startswith(rule.path_prefix):
                    self._rules.remove(rule)
                    return rule.fault
        return None

    def _answer(self, method: str, target: str, headers, body: bytes):
        fault = self._take_rule(method, urllib.parse.urlsplit(target).path)
        self.log.append(ProxiedRequest(method, target, dict(headers.items()), fault))
        if fault is Fault.SERVER_ERROR:
            return _error(_Refused(500, "An unknown error occurred (injected).", type_="api_error"))
        if fault is Fault.RATE_LIMITED:
            status, _, payload = _error(_Refused(429, "Too many requests.", code="rate_limit"))
            return status, {"Retry-After": str(self.retry_after)}, payload
        if fault is Fault.TIMEOUT:
            self._stopping.wait(self.hold_seconds)
            return None
        answered = self._forward(method, target, headers, body)
        if fault is Fault.RESPONSE_HELD:
            self._stopping.wait(self.hold_seconds)
        return None if fault is Fault.RESPONSE_LOST else answered

    def _forward(self, method: str, target: str, headers, body: bytes):
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            passed = {
                name: value
                for name, value in headers.items()
                if name.lower() not in ("host", "connection", "content-length")
            }
            connection.request(method, target, body=body or None, headers=passed)
            response = connection.getresponse()
            payload = response.read()
            kept = {
                name: response.headers[name]
                for name in self.FORWARDED_HEADERS
                if response.headers.get(name) is not None
            }
            return response.status, kept, payload
        finally:
            connection.close()
