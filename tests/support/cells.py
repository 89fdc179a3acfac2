"""A cell's credentials for the test API server, as an operator would register them: its URL,
its CA certificate and a bearer token (the administrator's unless another is given)."""

from __future__ import annotations

from clusters import cell_credentials


def kube_credentials(kube, token: str | None = None) -> dict:
    """The checked kubeconfig ``make_cell(credentials=…)`` seals into the cell."""
    return cell_credentials.from_token(
        server=kube.url,
        ca_certificate=kube.pki.ca_cert.read_text(),
        token=token or kube.admin_token,
    )
