"""Walks every URL pattern of the API and tries each one as an outsider.

Nobody registers an endpoint here: the walk reads the URLconf, so an endpoint added tomorrow is
tried tomorrow. For each route and HTTP method it expects:

- anonymous callers: 401 (the few public routes are listed in PUBLIC_ROUTES);
- a member of another organization, and that organization's API key, naming the victim
  organization in the URL: 404, with none of the victim's identifiers in the body;
- the same outsiders naming their *own* organization but a victim object's id: 404;
- and every ``/orgs/{org}/`` view derives from the tenancy base class.

Routes without an ``org`` in the URL (account-level) must be listed in ACCOUNT_ROUTES with a
check of their own, so nobody adds one without deciding what isolation means for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.test import override_settings
from django.urls import URLPattern, URLResolver, clear_url_caches, get_resolver, reverse
from rest_framework.test import APIClient

from tenants.api.base import OrganizationScopedView

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
PUBLIC_ROUTES = {"api-root", "catalog"}


@dataclass(frozen=True)
class Route:
    name: str
    route: str
    kwargs: tuple[str, ...]
    view_class: type
    methods: tuple[str, ...]


@dataclass
class Victim:
    """The organization under attack, and one object of each kind it owns."""

    organization: object
    objects_by_model: dict[type, object]
    identifiers: list[str]


@dataclass
class Outsider:
    """A member of another organization: the session client and an API-key client."""

    organization: object
    clients: dict[str, APIClient] = field(default_factory=dict)
    objects_by_model: dict[type, object] = field(default_factory=dict)


def api_routes(urlconf: str | None = None) -> list[Route]:
    routes: list[Route] = []

    def walk(patterns, prefix: str, kwargs: tuple[str, ...], namespace: str) -> None:
        for entry in patterns:
            here = prefix + str(entry.pattern)
            names = kwargs + tuple(entry.pattern.regex.groupindex)
            if isinstance(entry, URLResolver):
                space = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, here, names, space)
            elif isinstance(entry, URLPattern):
                clean = here.replace("^", "").replace("$", "")
                if not clean.startswith(API_PREFIX):
                    continue
                routes.append(_route(entry, clean, names, namespace))

    walk(get_resolver(urlconf).url_patterns, "", (), "")
    return routes


def _route(entry: URLPattern, route: str, kwargs: tuple[str, ...], namespace: str) -> Route:
    callback = entry.callback
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    actions = getattr(callback, "actions", None)
    if actions:
        methods = tuple(m for m in METHODS if m in actions)
    elif view_class is not None:
        methods = tuple(m for m in METHODS if hasattr(view_class, m))
    else:
        methods = METHODS  # a plain function view: try everything
    name = f"{namespace}{entry.name}" if entry.name else ""
    return Route(name, route, kwargs, view_class or type(callback), methods)


def find_violations(
    *,
    urlconf: str | None,
    anonymous: APIClient,
    outsider: Outsider,
    victim: Victim,
    account_checks: dict[str, Callable[[Route, Outsider, Victim], list[str]]],
) -> tuple[list[str], int]:
    """Returns the violations found and the number of requests made."""
    if urlconf is None:
        return _find_violations(None, anonymous, outsider, victim, account_checks)
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            return _find_violations(urlconf, anonymous, outsider, victim, account_checks)
        finally:
            clear_url_caches()


def _find_violations(urlconf, anonymous, outsider, victim, account_checks):
    violations: list[str] = []
    requests = 0
    for route in api_routes(urlconf):
        if not route.name:
            violations.append(f"{route.route}: API routes must be named")
            continue
        if route.name in PUBLIC_ROUTES:
            continue
        if "org" not in route.kwargs:
            check = account_checks.get(route.name)
            if check is None:
                violations.append(
                    f"{route.name} ({route.route}) has no organization in its URL and no "
                    "isolation check in ACCOUNT_ROUTES"
                )
                continue
            violations.extend(check(route, outsider, victim))
            for method in route.methods:
                requests += 1
                status = _call(anonymous, method, reverse(route.name, urlconf=urlconf)).status_code
                if status != 401:
                    violations.append(f"anonymous {method.upper()} {route.name}: {status}")
            continue
        if not issubclass(route.view_class, OrganizationScopedView):
            violations.append(
                f"{route.name} ({route.view_class.__name__}) is not an OrganizationScopedView"
            )
        urls = _victim_urls(route, outsider, victim, urlconf, violations)
        for method in route.methods:
            for label, url in urls:
                requests += 1
                status = _call(anonymous, method, url).status_code
                if status != 401:
                    violations.append(f"anonymous {method.upper()} {label}: {status}")
                for kind, client in outsider.clients.items():
                    requests += 1
                    response = _call(client, method, url)
                    body = response.content.decode(errors="replace")
                    leaked = [i for i in victim.identifiers if i in body]
                    if response.status_code != 404 or leaked:
                        violations.append(
                            f"outsider ({kind}) {method.upper()} {label}: "
                            f"{response.status_code}{' leaks ' + str(leaked) if leaked else ''}"
                        )
    return violations, requests


def _victim_urls(route, outsider, victim, urlconf, violations) -> list[tuple[str, str]]:
    """The victim's URL, and (for object routes) the outsider's org with a victim object."""
    view = route.view_class
    object_kwarg = getattr(view, "lookup_url_kwarg", None) or "id"
    unknown = set(route.kwargs) - {"org", "cluster", object_kwarg}
    if unknown:
        violations.append(f"{route.name}: no sample value for URL parameters {sorted(unknown)}")
        return []
    kwargs: dict[str, str] = {}
    if "cluster" in route.kwargs:
        from clusters.models import Cluster

        kwargs["cluster"] = victim.objects_by_model[Cluster].public_id
    if object_kwarg in route.kwargs:
        model = getattr(view, "model", None)
        sample = victim.objects_by_model.get(model)
        if sample is None:
            violations.append(f"{route.name}: no victim object of model {model} to try")
            return []
        kwargs[object_kwarg] = getattr(sample, getattr(view, "lookup_field", "public_id"))
    urls = [
        (
            f"{route.name}[victim org]",
            reverse(
                route.name, kwargs={"org": victim.organization.public_id, **kwargs}, urlconf=urlconf
            ),
        )
    ]
    if len(kwargs) > 0:
        urls.append(
            (
                f"{route.name}[own org, victim objects]",
                reverse(
                    route.name,
                    kwargs={"org": outsider.organization.public_id, **kwargs},
                    urlconf=urlconf,
                ),
            )
        )
    return urls


def _call(client: APIClient, method: str, url: str):
    if method in ("post", "put", "patch"):
        return getattr(client, method)(url, {}, format="json")
    return getattr(client, method)(url)
