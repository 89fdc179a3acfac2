"""The self-service web UI of clusters: the organization's clusters and the create form, one
cluster's page (status, connection, topics, credentials, changes, deletion), and the pages that
show a credential's password once.

Every view is wrapped by ``tenants.views.organization_view``: non-members get 404, reading needs
``clusters:read`` and changing ``clusters:write``, and every object named in the URL is looked
up through the tenant-scoped managers, so another organization's ids are 404. Views call the
services and selectors; a ``DomainError`` becomes a form error or a page message.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers

from billing import selectors as usage_selectors
from billing.selectors import DimensionUsage
from foundation.errors import DomainError
from tenants.views import OrganizationAccess, organization_page_context, organization_view

from . import connection, selectors, services
from .forms import (
    HOUR_MS,
    ChangeTypeForm,
    ClusterCreateForm,
    ClusterDeleteForm,
    CredentialCreateForm,
    PartitionsForm,
    RenameForm,
    ResizeForm,
    TopicCreateForm,
    add_domain_error,
    explain,
)
from .models import (
    GB,
    MB,
    Cluster,
    ClusterState,
    ClusterType,
    Credential,
    Dimension,
    TierPrice,
    Topic,
)

READ = {"GET": "clusters:read"}
READ_WRITE = {"GET": "clusters:read", "POST": "clusters:write"}
WRITE = {"POST": "clusters:write"}
# A confirmation page is only useful to whoever may then confirm.
CONFIRM = {"GET": "clusters:write", "POST": "clusters:write"}

# While the data plane is still working, the pages poll for the outcome.
TRANSITIONAL_STATES = {
    ClusterState.REQUESTED,
    ClusterState.PROVISIONING,
    ClusterState.UPDATING,
    ClusterState.DELETING,
}
RECENT_OPERATIONS = 10
HOURLY_DIMENSIONS = {"cluster_hours", "capacity_unit_hours"}
HOURS_PER_MONTH = 730
# The usage chart on a cluster's page: one bar per hour of the last 24.
USAGE_LABELS = {
    "ingress_bytes": "Ingress (written)",
    "egress_bytes": "Egress (read)",
    "storage_byte_hours": "Storage",
    "partition_hours": "Partitions",
}
CHART_HEIGHT = 40
BAR_STEP, BAR_WIDTH = 10, 8
DIMENSION_ORDER = {dimension: index for index, dimension in enumerate(Dimension.values)}


# Page plumbing --------------------------------------------------------------------------------


def _render(
    request: HttpRequest,
    access: OrganizationAccess,
    template: str,
    context: dict,
    status: int = 200,
) -> HttpResponse:
    context = {
        **organization_page_context(access, "clusters"),
        "can_write": access.can("clusters:write"),
        **context,
    }
    return render(request, template, context, status=status)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _to_cluster(access: OrganizationAccess, cluster: Cluster, anchor: str = "") -> HttpResponse:
    url = reverse("clusters:detail", args=[access.organization.public_id, cluster.public_id])
    return redirect(f"{url}#{anchor}" if anchor else url)


def _live_cluster_or_none(access: OrganizationAccess, cluster_id: str) -> Cluster | None:
    return selectors.live_cluster(organization=access.organization, public_id=cluster_id)


def _live_cluster(access: OrganizationAccess, cluster_id: str) -> Cluster:
    cluster = _live_cluster_or_none(access, cluster_id)
    if cluster is None:
        raise Http404("No such cluster")
    return cluster


def _live_topic(cluster: Cluster, topic_name: str) -> Topic:
    return get_object_or_404(selectors.live_topics(cluster=cluster), name=topic_name)


def _live_credential(cluster: Cluster, credential_id: str) -> Credential:
    return get_object_or_404(selectors.live_credentials(cluster=cluster), public_id=credential_id)


# Presentation ---------------------------------------------------------------------------------


def _usd(micros: int) -> str:
    """Micro-dollars as dollars, with cents always and more digits only when they matter."""
    whole, _, fraction = f"{Decimal(micros) / 1_000_000:f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _quantity(per_units: int, single: str, plural: str) -> str:
    return single if per_units == 1 else f"{per_units:,} {plural}"


def _price_label(price: TierPrice) -> str:
    """e.g. "$0.08 / GB written", "$1.50 / capacity-unit-hour"."""
    if price.dimension in {"ingress_bytes", "egress_bytes", "storage_byte_hours"}:
        if price.per_units % GB == 0:
            amount = "GB" if price.per_units == GB else f"{price.per_units // GB:,} GB"
        else:
            amount = f"{price.per_units:,} bytes"
        unit = {
            "ingress_bytes": f"{amount} written",
            "egress_bytes": f"{amount} read",
            "storage_byte_hours": f"{amount}-hour stored",
        }[price.dimension]
        label = f"{_usd(price.micros)} / {unit}"
        if price.dimension == "storage_byte_hours" and price.per_units == GB:
            monthly = (Decimal(price.micros * HOURS_PER_MONTH) / 1_000_000).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            label += f" (≈ ${monthly} / GB-month)"
        return label
    unit = {
        "cluster_hours": _quantity(price.per_units, "cluster-hour", "cluster-hours"),
        "capacity_unit_hours": _quantity(
            price.per_units, "capacity-unit-hour", "capacity-unit-hours"
        ),
        "partition_hours": _quantity(price.per_units, "partition-hour", "partition-hours"),
    }.get(price.dimension, price.get_dimension_display())
    return f"{_usd(price.micros)} / {unit}"


def _hours(hours: int) -> str:
    if hours % (24 * 365) == 0:
        years = hours // (24 * 365)
        return f"{years:,} year{'s' if years != 1 else ''}"
    if hours % 24 == 0:
        days = hours // 24
        return f"{days:,} day{'s' if days != 1 else ''}"
    return f"{hours:,} hour{'s' if hours != 1 else ''}"


def _duration(ms: int) -> str:
    if ms % HOUR_MS == 0:
        return _hours(ms // HOUR_MS)
    if ms % 60_000 == 0:
        minutes = ms // 60_000
        return f"{minutes:,} minute{'s' if minutes != 1 else ''}"
    return f"{ms:,} ms"


def _plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 99.5, 2, 0.25."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _limits(tier: ClusterType) -> list[str]:
    return [
        f"{tier.ingress_mbps:,} MB/s in · {tier.egress_mbps:,} MB/s out",
        f"{tier.max_partitions:,} partitions",
        f"{tier.max_storage_gb:,} GB storage",
        f"{_hours(tier.max_retention_hours)} retention",
        f"{tier.max_connections:,} connections",
        f"{tier.max_credentials:,} credentials",
    ]


def _tier_card(tier: ClusterType) -> dict:
    # In the order of the dimensions: hourly prices first, then traffic, storage, partitions.
    prices = sorted(
        getattr(tier, "current_prices", []),
        key=lambda price: DIMENSION_ORDER.get(price.dimension, len(DIMENSION_ORDER)),
    )
    return {
        "tier": tier,
        "sla": _plain(tier.sla_percent),
        "limits": _limits(tier),
        "limits_per": "per capacity unit" if tier.is_dedicated else "per cluster",
        "prices": [_price_label(price) for price in prices],
        "hourly": any(price.dimension in HOURLY_DIMENSIONS for price in prices),
    }


def _mbps(bytes_per_second: int) -> str:
    return f"{_plain(Decimal(bytes_per_second) / MB)} MB/s"


def _credential_quotas(credential: Credential) -> list[str]:
    quotas = []
    if credential.producer_byte_rate is not None:
        quotas.append(f"produce ≤ {_mbps(credential.producer_byte_rate)}")
    if credential.consumer_byte_rate is not None:
        quotas.append(f"consume ≤ {_mbps(credential.consumer_byte_rate)}")
    if credential.request_percentage is not None:
        quotas.append(f"requests ≤ {credential.request_percentage}%")
    return quotas


def _usage_amount(quantity: int, unit: str) -> str:
    """e.g. "1.5 GB", "1.08 TB", "360 GB-hours", "48 partition-hours": decimal units, as
    billed, to three significant digits."""
    if unit == "partition-hours":
        return f"{quantity:,} partition-hour{'s' if quantity != 1 else ''}"
    suffix = "-hours" if unit == "byte-hours" else ""
    for size, name in ((10**15, "PB"), (10**12, "TB"), (GB, "GB"), (MB, "MB"), (10**3, "kB")):
        if quantity >= size:
            value = Decimal(quantity) / size
            places = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{_plain(round(value, places))} {name}{suffix}"
    return f"{quantity:,} B{suffix}"


def _share(part: int, whole: int) -> str:
    percent = Decimal(part * 100) / whole
    if part and percent < Decimal("0.1"):
        return "< 0.1%"
    return f"{_plain(round(percent, 1))}%"


def _usage_row(usage: DimensionUsage) -> dict:
    """One dimension's last 24 hours as table cells and the geometry of an inline SVG bar
    chart. Bars are scaled to the busiest hour; the limit is drawn too (and sets the scale)
    once usage comes within a tenth of it, where it is worth seeing."""
    buckets = usage.buckets
    peak = max((bucket.quantity for bucket in buckets), default=0)
    limit = usage.limit_per_bucket
    show_limit = bool(limit) and peak * 10 >= limit
    top = max(peak, limit) if show_limit else peak
    bars = []
    for index, bucket in enumerate(buckets):
        height = bucket.quantity * CHART_HEIGHT / top if top else 0
        if bucket.quantity > 0:
            height = max(height, 1.0)  # used, however little: visible
        amount = _usage_amount(bucket.quantity, usage.unit)
        bars.append(
            {
                "x": index * BAR_STEP,
                "y": f"{CHART_HEIGHT - height:.1f}",
                "height": f"{height:.1f}",
                "complete": bucket.complete,
                "title": f"{bucket.start:%Y-%m-%d %H}:00 UTC: {amount}"
                + ("" if bucket.complete else " (not complete yet)"),
            }
        )
    return {
        "label": USAGE_LABELS.get(usage.dimension, usage.dimension),
        "total": _usage_amount(sum(bucket.quantity for bucket in buckets), usage.unit),
        "peak": _usage_amount(peak, usage.unit),
        "limit": _usage_amount(limit, usage.unit) if limit else "",
        "peak_share": _share(peak, limit) if limit else "",
        "bars": bars,
        "width": len(buckets) * BAR_STEP - (BAR_STEP - BAR_WIDTH),
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "limit_y": f"{CHART_HEIGHT - limit * CHART_HEIGHT / top:.1f}" if show_limit else "",
    }


def _usage_context(cluster: Cluster) -> dict:
    """The last 24 hours of the cluster's usage, by hour, from the API's selector."""
    usage = usage_selectors.cluster_usage(
        cluster=cluster, window=usage_selectors.usage_window(granularity="hour")
    )
    return {
        "usage_rows": [_usage_row(dimension) for dimension in usage.dimensions],
        "usage_start": usage.start,
        "usage_end": usage.end,
    }


# Clusters -------------------------------------------------------------------------------------


def _type_choices(tiers: list[ClusterType]) -> list[tuple[str, str]]:
    return [(tier.slug, tier.name) for tier in tiers]


def _cluster_rows(access: OrganizationAccess) -> tuple[list[Cluster], bool]:
    clusters = list(selectors.clusters(organization=access.organization))
    return clusters, any(cluster.state in TRANSITIONAL_STATES for cluster in clusters)


@organization_view(scopes=READ_WRITE)
def cluster_list(request: HttpRequest, access: OrganizationAccess) -> HttpResponse:
    if request.method == "GET" and _is_htmx(request):
        clusters, polling = _cluster_rows(access)
        response = render(
            request,
            "clusters/_cluster_table.html",
            {"organization": access.organization, "clusters": clusters, "polling": polling},
        )
        patch_vary_headers(response, ["HX-Request"])
        return response
    tiers = selectors.catalog()
    regions = selectors.regions()
    form = ClusterCreateForm(
        request.POST or None,
        type_choices=_type_choices(tiers),
        region_choices=[(region, region) for region in regions],
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                cluster, _operation = services.cluster_create(
                    organization=access.organization,
                    actor=access.actor(request),
                    name=data["name"],
                    type_slug=data["type"],
                    region=data["region"],
                    capacity_units=data["capacity_units"],
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, f"Cluster {cluster.name} was requested.")
                return _to_cluster(access, cluster)
        status = 400
    clusters, polling = _cluster_rows(access)
    dedicated = [tier for tier in tiers if tier.is_dedicated]
    context = {
        "form": form,
        "clusters": clusters,
        "polling": polling,
        "tier_cards": [_tier_card(tier) for tier in tiers],
        "regions": regions,
        "unit_range": (
            (
                min(tier.min_capacity_units for tier in dedicated),
                max(tier.max_capacity_units for tier in dedicated),
            )
            if dedicated
            else None
        ),
    }
    response = _render(request, access, "clusters/cluster_list.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _status_context(access: OrganizationAccess, cluster: Cluster) -> dict:
    operations = (
        selectors.operations(organization=access.organization)
        .filter(cluster=cluster)
        .order_by("-created_at", "-id")[:RECENT_OPERATIONS]
    )
    return {
        "organization": access.organization,
        "cluster": cluster,
        "can_write": access.can("clusters:write"),
        "polling": cluster.state in TRANSITIONAL_STATES,
        "connection": connection.connection_details(cluster),
        "operations": list(operations),
    }


def _cluster_page(
    request: HttpRequest,
    access: OrganizationAccess,
    cluster: Cluster,
    *,
    bound: dict | None = None,
    grow_errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The cluster's page; ``bound`` holds the forms of a refused submission, to show again."""
    bound = bound or {}
    tiers = selectors.catalog()
    forms = {
        "topic_form": TopicCreateForm(prefix="topic"),
        "credential_form": CredentialCreateForm(prefix="credential"),
        "rename_form": RenameForm(prefix="rename", initial={"name": cluster.name}),
        "resize_form": ResizeForm(
            prefix="resize", initial={"capacity_units": cluster.capacity_units}
        ),
        "type_form": ChangeTypeForm(
            prefix="type",
            type_choices=_type_choices(tiers),
            initial={"type": cluster.cluster_type.slug},
        ),
        "delete_form": ClusterDeleteForm(prefix="delete", cluster_name=cluster.name),
        **bound,
    }
    grow_errors = grow_errors or {}
    topics = [
        {
            "topic": topic,
            "kafka_name": connection.kafka_topic_name(cluster, topic.name),
            "retention": _duration(topic.retention_ms),
            "grow_error": grow_errors.get(topic.name, ""),
        }
        for topic in selectors.live_topics(cluster=cluster)
    ]
    credentials = [
        {"credential": credential, "quotas": _credential_quotas(credential)}
        for credential in selectors.live_credentials(cluster=cluster)
    ]
    context = {
        **_status_context(access, cluster),
        **forms,
        "tier": _tier_card(cluster.cluster_type),
        "being_deleted": cluster.delete_requested_at is not None,
        "topics": topics,
        "credentials": credentials,
        "max_retention": _hours(cluster.cluster_type.max_retention_hours),
        **_usage_context(cluster),
    }
    response = _render(request, access, "clusters/cluster_detail.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@organization_view(scopes=READ)
def cluster_detail(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = _live_cluster_or_none(access, cluster_id)
    if _is_htmx(request):
        if cluster is None:
            return _cluster_gone(request, access, cluster_id)
        response = render(request, "clusters/_cluster_poll.html", _status_context(access, cluster))
        patch_vary_headers(response, ["HX-Request"])
        return response
    if cluster is None:
        raise Http404("No such cluster")
    return _cluster_page(request, access, cluster)


def _cluster_gone(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    """The polled status of a cluster that no longer exists: send the page to the list."""
    deleted = selectors.deleted_cluster(organization=access.organization, public_id=cluster_id)
    if deleted is not None:
        messages.success(request, f"Cluster {deleted.name} was deleted.")
    response = HttpResponse(status=404)
    response["HX-Redirect"] = reverse("clusters:list", args=[access.organization.public_id])
    return response


def _change_cluster(
    request: HttpRequest,
    access: OrganizationAccess,
    cluster_id: str,
    *,
    form_key: str,
    form,
    change: Callable[[dict], dict],
) -> HttpResponse:
    """Run one of the cluster's changes (rename, resize, change type) through the service."""
    cluster = _live_cluster(access, cluster_id)
    if form.is_valid():
        try:
            cluster, operation = services.cluster_update(
                cluster=cluster, actor=access.actor(request), **change(form.cleaned_data)
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            if operation is None:
                messages.success(request, f"The cluster is now called {cluster.name}.")
            else:
                messages.success(
                    request,
                    f"{cluster.name} is changing to {cluster.cluster_type.name}, "
                    f"{cluster.capacity_units} capacity unit"
                    f"{'s' if cluster.capacity_units != 1 else ''}: this page follows it.",
                )
            return _to_cluster(access, cluster)
    return _cluster_page(request, access, cluster, bound={form_key: form}, status=400)


@organization_view(scopes=WRITE)
def cluster_rename(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    return _change_cluster(
        request,
        access,
        cluster_id,
        form_key="rename_form",
        form=RenameForm(request.POST, prefix="rename"),
        change=lambda data: {"name": data["name"]},
    )


@organization_view(scopes=WRITE)
def cluster_resize(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    return _change_cluster(
        request,
        access,
        cluster_id,
        form_key="resize_form",
        form=ResizeForm(request.POST, prefix="resize"),
        change=lambda data: {"capacity_units": data["capacity_units"]},
    )


@organization_view(scopes=WRITE)
def cluster_change_type(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    return _change_cluster(
        request,
        access,
        cluster_id,
        form_key="type_form",
        form=ChangeTypeForm(
            request.POST, prefix="type", type_choices=_type_choices(selectors.catalog())
        ),
        change=lambda data: {"type_slug": data["type"], "capacity_units": data["capacity_units"]},
    )


@organization_view(scopes=WRITE)
def cluster_retry(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = _live_cluster(access, cluster_id)
    try:
        services.cluster_retry(cluster=cluster, actor=access.actor(request))
    except DomainError as error:
        messages.error(request, explain(error))
    else:
        messages.success(request, f"Trying {cluster.name} again: this page follows it.")
    return _to_cluster(access, cluster)


@organization_view(scopes=WRITE)
def cluster_delete(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = _live_cluster(access, cluster_id)
    form = ClusterDeleteForm(request.POST, prefix="delete", cluster_name=cluster.name)
    if not form.is_valid():
        return _cluster_page(request, access, cluster, bound={"delete_form": form}, status=400)
    try:
        services.cluster_delete(cluster=cluster, actor=access.actor(request))
    except DomainError as error:
        messages.error(request, explain(error))
        return _to_cluster(access, cluster)
    messages.success(request, f"Cluster {cluster.name} is being deleted.")
    return redirect("clusters:list", org=access.organization.public_id)


# Topics ---------------------------------------------------------------------------------------


@organization_view(scopes=WRITE)
def topic_create(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = _live_cluster(access, cluster_id)
    form = TopicCreateForm(request.POST, prefix="topic")
    if form.is_valid():
        try:
            topic, _operation = services.topic_create(
                cluster=cluster,
                actor=access.actor(request),
                name=form.cleaned_data["name"],
                partitions=form.cleaned_data["partitions"],
                retention_ms=form.retention_ms,
                cleanup_policy=form.cleaned_data["cleanup_policy"],
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            messages.success(request, f"Topic {topic.name} was created.")
            return _to_cluster(access, cluster, "topics")
    return _cluster_page(request, access, cluster, bound={"topic_form": form}, status=400)


@organization_view(scopes=WRITE)
def topic_partitions(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = _live_cluster(access, cluster_id)
    topic = _live_topic(cluster, topic_name)
    form = PartitionsForm(request.POST)
    if not form.is_valid():
        problem = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        return _cluster_page(
            request, access, cluster, grow_errors={topic.name: problem}, status=400
        )
    try:
        topic, _operation = services.topic_update(
            topic=topic, actor=access.actor(request), partitions=form.cleaned_data["partitions"]
        )
    except DomainError as error:
        return _cluster_page(
            request, access, cluster, grow_errors={topic.name: explain(error)}, status=400
        )
    messages.success(request, f"Topic {topic.name} now has {topic.partitions} partitions.")
    return _to_cluster(access, cluster, "topics")


@organization_view(scopes=CONFIRM)
def topic_delete(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, topic_name: str
):
    cluster = _live_cluster(access, cluster_id)
    topic = _live_topic(cluster, topic_name)
    if request.method == "GET":
        return _render(
            request,
            access,
            "clusters/confirm.html",
            {
                "cluster": cluster,
                "title": f"Delete topic {topic.name}?",
                "explanation": (
                    f"The topic {connection.kafka_topic_name(cluster, topic.name)} and every "
                    "message in it "
                    f"({topic.partitions} partitions) are deleted from {cluster.name}. "
                    "This cannot be undone."
                ),
                "action": "Delete topic",
                "danger": True,
            },
        )
    try:
        services.topic_delete(topic=topic, actor=access.actor(request))
    except DomainError as error:
        messages.error(request, explain(error))
    else:
        messages.success(request, f"Topic {topic.name} was deleted.")
    return _to_cluster(access, cluster, "topics")


# Credentials ----------------------------------------------------------------------------------


def _password_page(
    request: HttpRequest,
    access: OrganizationAccess,
    credential: Credential,
    password: str,
    *,
    rotated: bool,
) -> HttpResponse:
    cluster = credential.cluster
    response = _render(
        request,
        access,
        "clusters/credential_password.html",
        {
            "cluster": cluster,
            "credential": credential,
            "password": password,
            "sasl_jaas_config": connection.sasl_jaas_config(credential.username, password),
            "client_properties": (
                connection.client_properties(cluster, credential.username, password)
                if cluster.bootstrap_servers
                else ""
            ),
            "rotated": rotated,
        },
    )
    # The password is in this response and nowhere else: never cached.
    add_never_cache_headers(response)
    return response


@organization_view(scopes=WRITE)
def credential_create(request: HttpRequest, access: OrganizationAccess, cluster_id: str):
    cluster = _live_cluster(access, cluster_id)
    form = CredentialCreateForm(request.POST, prefix="credential")
    if form.is_valid():
        try:
            credential, password, _operation = services.credential_create(
                cluster=cluster,
                actor=access.actor(request),
                name=form.cleaned_data["name"],
                **form.rates(),
            )
        except DomainError as error:
            add_domain_error(form, error)
        else:
            return _password_page(request, access, credential, password, rotated=False)
    return _cluster_page(request, access, cluster, bound={"credential_form": form}, status=400)


@organization_view(scopes=CONFIRM)
def credential_rotate(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, credential_id: str
):
    cluster = _live_cluster(access, cluster_id)
    credential = _live_credential(cluster, credential_id)
    if request.method == "GET":
        return _render(
            request,
            access,
            "clusters/confirm.html",
            {
                "cluster": cluster,
                "title": f"Rotate the password of {credential.name}?",
                "explanation": (
                    f"{credential.username} gets a new password, shown once on the next page. "
                    "Clients still using the old one are refused once the cluster has applied "
                    "the change."
                ),
                "action": "Rotate password",
                "danger": False,
            },
        )
    try:
        credential, password, _operation = services.credential_rotate(
            credential=credential, actor=access.actor(request)
        )
    except DomainError as error:
        messages.error(request, explain(error))
        return _to_cluster(access, cluster, "credentials")
    return _password_page(request, access, credential, password, rotated=True)


@organization_view(scopes=CONFIRM)
def credential_delete(
    request: HttpRequest, access: OrganizationAccess, cluster_id: str, credential_id: str
):
    cluster = _live_cluster(access, cluster_id)
    credential = _live_credential(cluster, credential_id)
    if request.method == "GET":
        return _render(
            request,
            access,
            "clusters/confirm.html",
            {
                "cluster": cluster,
                "title": f"Delete the credential {credential.name}?",
                "explanation": (
                    f"Clients logging in as {credential.username} are refused once the cluster "
                    "has applied the change. This cannot be undone."
                ),
                "action": "Delete credential",
                "danger": True,
            },
        )
    try:
        services.credential_delete(credential=credential, actor=access.actor(request))
    except DomainError as error:
        messages.error(request, explain(error))
    else:
        messages.success(request, f"The credential {credential.name} was deleted.")
    return _to_cluster(access, cluster, "credentials")
