"""Counting what a Kubernetes client sends: the resync's promise is a number of requests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def counted(lister) -> Iterator[list[tuple[str, str]]]:
    """Every request the lister's API client sends (shared by every driver of the cell: the
    clients are cached by credentials), as (method, url): wraps the client's one request method,
    the REST layer below the dynamic client."""
    sent: list[tuple[str, str]] = []
    rest = lister.driver.api.rest_client
    real = rest.request

    def request(method, url, *args, **kwargs):
        sent.append((method, url))
        return real(method, url, *args, **kwargs)

    rest.request = request
    try:
        yield sent
    finally:
        rest.request = real
