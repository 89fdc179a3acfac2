"""Posting to a URL a customer chose without letting it reach the installation's own network
(server-side request forgery).

A URL's host is resolved, and every address it resolves to must be on the public internet:
private, loopback, link-local (169.254.169.254, the cloud metadata service), multicast,
reserved, unspecified and shared addresses are refused, unless a network of
``SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS`` holds them (a test endpoint on 127.0.0.1). The
check runs when the URL is saved and again at each post, and the post connects to the address
that was checked, not to the name again, so a name that resolves elsewhere a moment later (DNS
rebinding) cannot slip past. TLS is still verified against the URL's host name. Plain http://
only where ``SLUICE_WEBHOOK_ALLOW_HTTP`` (not in production by default). Redirects are not
followed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from foundation.errors import InvalidInput

MAX_URL_LENGTH = 2000
# What is kept of an answer: its status; the body is read (so the connection ends cleanly) up to
# this much, and dropped.
MAX_ANSWER_BYTES = 64 * 1024


class UrlRefused(InvalidInput):
    """The webhook URL is not one Sluice posts to (its shape, scheme, or where it resolves)."""

    code = "webhook_url_refused"
    title = "The webhook URL is refused"


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``, resolved and allowed) and what to ask."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Answer:
    status: int
    duration_ms: int


class PostFailed(Exception):
    """No answer: the connection, TLS or the wait for the answer failed."""

    def __init__(self, message: str, *, duration_ms: int) -> None:
        super().__init__(message)
        self.duration_ms = duration_ms


def checked_target(url: str) -> Target:
    """``url`` parsed, its host resolved and every address allowed; ``UrlRefused`` (naming the
    field ``url``) otherwise."""
    if not isinstance(url, str) or not url.isascii() or len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"An ASCII URL of at most {MAX_URL_LENGTH} characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("Not a URL", field="url") from None
    schemes = ("https", "http") if settings.SLUICE_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes:
        raise UrlRefused(f"The URL must start with {' or '.join(schemes)}://", field="url")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise UrlRefused("The URL needs a host, and no user or password in it", field="url")
    if any(c.isspace() for c in url) or parts.fragment:
        raise UrlRefused("The URL may hold no spaces and no #fragment", field="url")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolved(parts.hostname, port)
    for address in addresses:
        reason = refusal(address)
        if reason:
            raise UrlRefused(
                f"{parts.hostname} resolves to {address}, {reason}: Sluice posts only to "
                "public internet addresses",
                field="url",
            )
    path = parts.path or "/"
    return Target(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        path=f"{path}?{parts.query}" if parts.query else path,
        address=addresses[0],
    )


def _resolved(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UrlRefused(f"{host} does not resolve", field="url") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise UrlRefused(f"{host} does not resolve", field="url")
    return addresses


def refusal(address: str) -> str:
    """Why ``address`` may not be posted to (``"a loopback address"``, …), or ``""``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in ipaddress.ip_network(n) for n in settings.SLUICE_WEBHOOK_ALLOWED_PRIVATE_NETWORKS):
        return ""
    for flag, label in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, flag):
            return label
    return "" if ip.is_global else "not a public address"


def post(target: Target, *, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` to the checked ``target``, connecting to its resolved address; the answer's
    status, or ``PostFailed``."""
    timeout = settings.SLUICE_WEBHOOK_TIMEOUT_SECONDS
    if target.scheme == "https":
        connection: http.client.HTTPConnection = _PinnedHTTPS(target, timeout=timeout)
    else:
        connection = _PinnedHTTP(target, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
        return Answer(status=response.status, duration_ms=_since(started))
    except (OSError, http.client.HTTPException) as error:
        raise PostFailed(
            f"{type(error).__name__}: {error}"[:500], duration_ms=_since(started)
        ) from None
    finally:
        connection.close()


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the URL's host."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As ``_PinnedHTTP``, with TLS verified against the URL's host name."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
