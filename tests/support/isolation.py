"""Walks every URL pattern of the API, and every web UI page of an organization, and tries each
one as an outsider.

Nobody registers an endpoint here: the walk reads the URLconf, so an endpoint added tomorrow is
tried tomorrow. For each route and HTTP method it expects:

- anonymous callers: 401 (the few public routes are listed in PUBLIC_ROUTES);
- a member of another organization, and that organization's API key, naming the victim
  organization in the URL: 404, with none of the victim's identifiers in the body;
- the same outsiders naming their *own* organization but a victim object's id: 404;
- and every ``/orgs/{org}/`` view derives from the tenancy base class.

Routes without an ``org`` in the URL (account-level) must be listed in ACCOUNT_ROUTES with a
check of their own, so nobody adds one without deciding what isolation means for it.

The web walk (``find_web_violations``) reads the same URLconf for every page outside the API
with an ``org`` in its URL and expects, for GET and POST:

- anonymous visitors: sent to sign in;
- a member of another organization naming the victim organization, an organization that does
  not exist, or their own organization with the victim's objects (and their own cluster with
  the victim's topic or credential): 404, with none of the victim's identifiers in the body
  (405 only where the page does not take the method, in the outsider's own organization);
- and every such page is wrapped by the tenancy gate's ``organization_view``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, clear_url_caches, get_resolver, reverse
from rest_framework.test import APIClient

from billing.models import Invoice, UsageExport
from clusters.models import Cluster, Credential, Topic
from tenants.api.base import OrganizationScopedView
from tenants.models import ApiKey, Invitation, Membership

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")
PUBLIC_ROUTES = {"api-root", "catalog", "catalog-estimate"}
WEB_METHODS = ("get", "post")
NO_SUCH_ORGANIZATION = "org_doesnotexist"
# The web UI's URL parameters naming an object: the victim's model and the field it goes by.
WEB_OBJECT_KWARGS = {
    "cluster_id": (Cluster, "public_id"),
    "topic_name": (Topic, "name"),
    "credential_id": (Credential, "public_id"),
    "member_id": (Membership, "public_id"),
    "invitation_id": (Invitation, "public_id"),
    "key_id": (ApiKey, "public_id"),
    "invoice_id": (Invoice, "public_id"),
    "export_id": (UsageExport, "public_id"),
}
# URL parameters naming something Sluice does not store (a consumer group lives in Kafka): the
# cluster beside them in the URL is what is isolated, so any value serves.
PLAIN_URL_VALUES = {"group": "readers"}


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
    web: Client | None = None  # the web UI's session, for the web walk


@dataclass(frozen=True)
class WebRoute:
    name: str
    route: str
    kwargs: tuple[str, ...]
    callback: Callable


def _url_patterns(urlconf: str | None):
    """Every URL pattern: (pattern, route, URL parameters, name with its namespaces)."""
    found = []

    def walk(patterns, prefix: str, kwargs: tuple[str, ...], namespace: str) -> None:
        for entry in patterns:
            here = prefix + str(entry.pattern)
            names = kwargs + tuple(entry.pattern.regex.groupindex)
            if isinstance(entry, URLResolver):
                space = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, here, names, space)
            elif isinstance(entry, URLPattern):
                clean = here.replace("^", "").replace("$", "")
                found.append((entry, clean, names, namespace))

    walk(get_resolver(urlconf).url_patterns, "", (), "")
    return found


def api_routes(urlconf: str | None = None) -> list[Route]:
    return [
        _route(entry, route, kwargs, namespace)
        for entry, route, kwargs, namespace in _url_patterns(urlconf)
        if route.startswith(API_PREFIX)
    ]


def web_routes(urlconf: str | None = None) -> list[WebRoute]:
    """Every page outside the API with an organization in its URL."""
    return [
        WebRoute(f"{namespace}{entry.name}" if entry.name else "", route, kwargs, entry.callback)
        for entry, route, kwargs, namespace in _url_patterns(urlconf)
        if not route.startswith(API_PREFIX) and "org" in kwargs
    ]


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
    return _under_urlconf(
        urlconf, lambda: _find_violations(urlconf, anonymous, outsider, victim, account_checks)
    )


def find_web_violations(
    *,
    urlconf: str | None,
    anonymous: Client,
    outsider: Outsider,
    victim: Victim,
    form_data: dict[str, str],
) -> tuple[list[str], int]:
    """The web walk; ``form_data`` is posted everywhere, filled in so that a page left
    unguarded would act on it. Returns the violations found and the number of requests made."""
    return _under_urlconf(
        urlconf, lambda: _find_web_violations(urlconf, anonymous, outsider, victim, form_data)
    )


def _under_urlconf(urlconf: str | None, walk: Callable[[], tuple[list[str], int]]):
    if urlconf is None:
        return walk()
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        try:
            return walk()
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
    unknown = set(route.kwargs) - {"org", "cluster", object_kwarg} - set(PLAIN_URL_VALUES)
    if unknown:
        violations.append(f"{route.name}: no sample value for URL parameters {sorted(unknown)}")
        return []
    kwargs: dict[str, str] = {k: v for k, v in PLAIN_URL_VALUES.items() if k in route.kwargs}
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


def _find_web_violations(urlconf, anonymous, outsider, victim, form_data):
    violations: list[str] = []
    requests = 0
    for route in web_routes(urlconf):
        if not route.name:
            violations.append(f"{route.route}: organization pages must be named")
            continue
        scopes = getattr(route.callback, "organization_scopes", None)
        if scopes is None:
            violations.append(f"{route.name} ({route.route}) is not wrapped by organization_view")
        for label, url, whose in _victim_web_urls(route, outsider, victim, urlconf, violations):
            for method in WEB_METHODS:
                requests += 1
                response = getattr(outsider.web, method)(url, form_data)
                if whose == "victim":
                    requests += 1
                    refused = getattr(anonymous, method)(url, form_data)
                    if refused.status_code != 302 or not refused["Location"].startswith(
                        "/accounts/login/"
                    ):
                        violations.append(
                            f"anonymous {method.upper()} {label}: {refused.status_code}"
                        )
                body = response.content.decode(errors="replace")
                leaked = [i for i in victim.identifiers if i in body]
                not_taken = whose == "outsider" and method.upper() not in (scopes or {})
                expected = 405 if not_taken else 404
                if not_taken and method == "get" and getattr(route.callback, "reloads_to", ""):
                    expected = 302  # to the route's page, which is the outsider's to refuse
                if response.status_code != expected or leaked:
                    violations.append(
                        f"outsider {method.upper()} {label}: "
                        f"{response.status_code}{' leaks ' + str(leaked) if leaked else ''}"
                    )
    return violations, requests


def _victim_web_urls(route, outsider, victim, urlconf, violations) -> list[tuple[str, str, str]]:
    """(label, URL, whose organization) for the victim's organization, one that does not exist,
    and (for object routes) the outsider's own organization with the victim's objects, then
    with the outsider's own cluster and the victim's other objects."""
    unknown = set(route.kwargs) - {"org"} - set(WEB_OBJECT_KWARGS) - set(PLAIN_URL_VALUES)
    if unknown:
        violations.append(f"{route.name}: no sample value for URL parameters {sorted(unknown)}")
        return []
    plain = {k: v for k, v in PLAIN_URL_VALUES.items() if k in route.kwargs}
    objects = {}
    for kwarg in route.kwargs:
        if kwarg in WEB_OBJECT_KWARGS:
            model, attribute = WEB_OBJECT_KWARGS[kwarg]
            objects[kwarg] = getattr(victim.objects_by_model[model], attribute)
    targets = [
        ("victim org", victim.organization.public_id, objects, "victim"),
        ("no such org", NO_SUCH_ORGANIZATION, objects, ""),
    ]
    if objects:
        own = outsider.organization.public_id
        targets.append(("own org, victim objects", own, objects, "outsider"))
        own_cluster = outsider.objects_by_model.get(Cluster)
        if "cluster_id" in objects and len(objects) > 1 and own_cluster is not None:
            mixed = {**objects, "cluster_id": own_cluster.public_id}
            targets.append(("own cluster, victim objects", own, mixed, "outsider"))
    return [
        (
            f"{route.name}[{label}]",
            reverse(route.name, kwargs={"org": org, **kw, **plain}, urlconf=urlconf),
            whose,
        )
        for label, org, kw, whose in targets
    ]
