from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from foundation.metrics import metrics_response

from . import health


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; nothing else is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to take traffic: the database and the broker answer. 503 names what does not."""
    checks = health.readiness()
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        return JsonResponse(
            {"status": "unavailable", "failing": failing, "checks": checks}, status=503
        )
    return JsonResponse({"status": "ok", "checks": checks})


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The control plane's own figures for Prometheus (foundation.metrics), behind
    SLUICE_METRICS_TOKEN when one is set."""
    return metrics_response(request)


@require_GET
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on every page that names no icon (the admin's among them)."""
    return HttpResponseRedirect(static("sluice/favicon.svg"))
