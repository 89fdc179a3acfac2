"""A cell's credentials for its Kubernetes API server.

An operator gives them as a kubeconfig, or as the API server's URL, its CA certificate and a
ServiceAccount token. Either is checked and reduced to one self-contained kubeconfig holding
only the current context's cluster and user, which is sealed at rest (foundation.secretbox) and
never shown back: operators see the API server's address and a fingerprint. The fingerprint
(a SHA-256 of the sealed document) is what the driver's clients are cached by, so a replaced
credential takes effect at once and no cache is keyed by the secret itself.

Nothing here reads a file: a kubeconfig that names files (a CA, a key, a token file) or runs a
command (``exec``, ``auth-provider``) is refused, since whoever may edit a cell would otherwise
choose what the control plane reads or runs. A cell without credentials uses
``SLUICE_KUBECONFIG`` (a path, for development) or the in-cluster configuration.

Error messages never quote what was given: a YAML error would otherwise echo a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings

from foundation import secretbox

TOKEN = re.compile(r"[\x21-\x7e]{1,16384}")  # visible ASCII: no whitespace, no line breaks
CLUSTER_NAME = "cell"
USER_NAME = "sluice-control-plane"
# Ways of authenticating that name a file or run a program: refused (see the docstring).
REFUSED_USER_FIELDS = {
    "tokenFile": "a token file",
    "client-certificate": "a client certificate file",
    "client-key": "a client key file",
    "exec": "a command to run (exec)",
    "auth-provider": "an auth provider",
    "username": "a user name and password",
    "password": "a user name and password",
}


class InvalidCredentials(ValueError):
    """What is wrong with the credentials given, in words safe to show."""


@dataclass(frozen=True)
class Connection:
    """How to reach a cell's API server: what the driver builds its client from."""

    fingerprint: str
    sealed: bytes | None = field(default=None, repr=False)
    kubeconfig_path: str = ""  # SLUICE_KUBECONFIG, when the cell has no credentials

    def kubeconfig(self) -> dict | None:
        """The sealed kubeconfig, opened (None: the path or the in-cluster configuration)."""
        return None if self.sealed is None else json.loads(secretbox.unseal(self.sealed))


def connection_for(cell) -> Connection:
    if cell.credentials_sealed:
        return Connection(cell.credentials_fingerprint, bytes(cell.credentials_sealed))
    path = settings.SLUICE_KUBECONFIG
    return Connection(f"file:{path}" if path else "in-cluster", kubeconfig_path=path)


def connection_of(kubeconfig: dict) -> Connection:
    """A connection with credentials not saved yet (the admin's "test the connection")."""
    columns = sealed_columns(kubeconfig)
    return Connection(columns["credentials_fingerprint"], columns["credentials_sealed"])


def sealed_columns(kubeconfig: dict) -> dict:
    """The cell's columns holding a checked kubeconfig (``from_kubeconfig``/``from_token``)."""
    document = json.dumps(kubeconfig, sort_keys=True, separators=(",", ":"))
    return {
        "credentials_sealed": secretbox.seal(document),
        "credentials_fingerprint": hashlib.sha256(document.encode()).hexdigest(),
        "api_server": kubeconfig["clusters"][0]["cluster"]["server"],
    }


def cleared_columns() -> dict:
    return {"credentials_sealed": None, "credentials_fingerprint": "", "api_server": ""}


def summary(cell) -> str:
    """What operators are shown of a cell's credentials: never the secret."""
    if not cell.credentials_fingerprint:
        return "not set: the in-cluster configuration (or SLUICE_KUBECONFIG)"
    return f"set: {cell.api_server}, sha256:{cell.credentials_fingerprint[:16]}"


# Checking what an operator gives -------------------------------------------------------------


def from_given(
    *, kubeconfig: str = "", server: str = "", ca_certificate: str = "", token: str = ""
) -> dict | None:
    """The credentials in whichever form was given: a kubeconfig, or an API server URL, its
    CA certificate and a token together (None: nothing was)."""
    parts = (server, ca_certificate, token)
    if kubeconfig and any(parts):
        raise InvalidCredentials(
            "Give a kubeconfig, or an API server URL, its CA certificate and a token: not both."
        )
    if kubeconfig:
        return from_kubeconfig(kubeconfig)
    if not any(parts):
        return None
    if not all(parts):
        raise InvalidCredentials("An API server URL, its CA certificate and a token go together.")
    return from_token(server=server, ca_certificate=ca_certificate, token=token)


def from_token(*, server: str, ca_certificate: str, token: str) -> dict:
    """The kubeconfig of an API server URL, its CA certificate (PEM) and a bearer token."""
    ca = ca_certificate.strip().encode()
    _check_certificates(ca, "The CA certificate")
    return _kubeconfig(
        _check_server(server.strip()),
        {"certificate-authority-data": base64.b64encode(ca + b"\n").decode()},
        {"token": _check_token(token)},
    )


def from_kubeconfig(text: str) -> dict:
    """The kubeconfig given, checked and reduced to its current context."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InvalidCredentials("The kubeconfig is not valid YAML.") from None
    if not isinstance(document, dict):
        raise InvalidCredentials("The kubeconfig is not a YAML mapping.")
    current = document.get("current-context")
    if not current or not isinstance(current, str):
        raise InvalidCredentials("The kubeconfig names no current-context.")
    context = _named(document, "contexts", current, "context")
    cluster = _named(document, "clusters", context.get("cluster"), "cluster")
    user = _named(document, "users", context.get("user"), "user")
    return _kubeconfig(_check_server(cluster.get("server")), _cluster_ca(cluster), _user(user))


def _named(document: dict, section: str, name, what: str) -> dict:
    if not name or not isinstance(name, str):
        raise InvalidCredentials(f"The kubeconfig's current context names no {what}.")
    found = [
        entry
        for entry in document.get(section) or []
        if isinstance(entry, dict) and entry.get("name") == name
    ]
    if len(found) != 1:
        raise InvalidCredentials(
            f"The kubeconfig must have exactly one {what} named {name!r} "
            f"(its {section} have {len(found)})."
        )
    body = found[0].get(what)
    if not isinstance(body, dict):
        raise InvalidCredentials(f"The kubeconfig's {what} {name!r} is empty.")
    return body


def _check_server(server) -> str:
    parts = urlsplit(server if isinstance(server, str) else "")
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidCredentials("The API server must be an https:// URL with a host.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidCredentials("The API server URL must not carry a user, query or fragment.")
    return server


def _cluster_ca(cluster: dict) -> dict:
    if cluster.get("insecure-skip-tls-verify"):
        raise InvalidCredentials("The kubeconfig turns TLS verification off; Sluice will not.")
    if cluster.get("certificate-authority"):
        raise InvalidCredentials(
            "The kubeconfig names its CA certificate by a file path: give it inline "
            "(certificate-authority-data)."
        )
    data = cluster.get("certificate-authority-data")
    if not data:
        raise InvalidCredentials("The kubeconfig has no certificate-authority-data.")
    _check_certificates(_base64(data, "certificate-authority-data"), "The CA certificate")
    return {"certificate-authority-data": data}


def _user(user: dict) -> dict:
    refused = sorted({text for key, text in REFUSED_USER_FIELDS.items() if user.get(key)})
    if refused:
        raise InvalidCredentials(
            f"The kubeconfig's user authenticates with {', '.join(refused)}: give a token "
            "or a client certificate and key inline."
        )
    if user.get("token"):
        return {"token": _check_token(user["token"])}
    certificate, key = user.get("client-certificate-data"), user.get("client-key-data")
    if certificate and key:
        _check_certificates(
            _base64(certificate, "client-certificate-data"), "The client certificate"
        )
        try:
            serialization.load_pem_private_key(_base64(key, "client-key-data"), password=None)
        except (ValueError, TypeError):
            raise InvalidCredentials("The client key is not a PEM private key.") from None
        return {"client-certificate-data": certificate, "client-key-data": key}
    raise InvalidCredentials(
        "The kubeconfig's user has no credentials: a token, or client-certificate-data and "
        "client-key-data."
    )


def _check_token(token) -> str:
    token = token.strip() if isinstance(token, str) else ""
    if not TOKEN.fullmatch(token):
        raise InvalidCredentials("The token must be one line of visible characters.")
    return token


def _base64(value, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise InvalidCredentials(f"The kubeconfig's {name} is not base64.") from None


def _check_certificates(pem: bytes, what: str) -> None:
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise InvalidCredentials(f"{what} is not a PEM X.509 certificate.") from None


def _kubeconfig(server: str, cluster_ca: dict, user: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server, **cluster_ca}}],
        "users": [{"name": USER_NAME, "user": user}],
        "contexts": [
            {"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": USER_NAME}}
        ],
        "current-context": CLUSTER_NAME,
    }
