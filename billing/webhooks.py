"""``POST /webhooks/stripe/``: where Stripe delivers its events.

No session, no CSRF token: a delivery proves itself by its ``Stripe-Signature``, an HMAC of the
raw body under the endpoint's signing secret (``STRIPE_WEBHOOK_SECRET``), made less than 5
minutes before. Anything else is refused with a 400 problem and nothing of it is kept (Stripe
retries what it sent for three days); a verified event is stored once and answered 200 at once,
and a task applies it (``stripe_events``).

Not rate limited: only a delivery signed with the secret is stored or queued, and refusing a
forged one costs one HMAC over a bounded body. A limit per address would instead let anyone
behind the same proxy address as Stripe's senders shut Stripe out.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from foundation.api.problems import PROBLEM_CONTENT_TYPE, problem_body

from . import stripe_events
from .stripe_gateway import WebhookRejected, webhook_event

logger = logging.getLogger("sluice.billing.webhooks")

# Stripe's events are a few kilobytes (an invoice carries at most its first lines); a body this
# large is not one, and is refused before it is read.
MAX_BODY_BYTES = 512 * 1024


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return _problem(
            503,
            "webhook_not_configured",
            "Stripe's events are not accepted here",
            "STRIPE_WEBHOOK_SECRET is not set, so no event can be verified; Stripe retries"
            " its deliveries for three days",
        )
    if _content_length(request) > MAX_BODY_BYTES:
        return _too_large()
    try:
        payload = request.body
    except RequestDataTooBig:
        return _too_large()
    if len(payload) > MAX_BODY_BYTES:
        return _too_large()
    try:
        event = webhook_event(payload, request.headers.get("Stripe-Signature"), secret)
    except WebhookRejected as rejected:
        logger.warning("stripe webhook refused (%s): %s", rejected.code, rejected)
        return _problem(400, rejected.code, "Not a verified Stripe event", str(rejected))
    stored, created = stripe_events.stripe_event_receive(event=event)
    return JsonResponse({"id": stored.event_id, "received": True, "repeat": not created})


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # read as empty, then refused as unsigned


def _too_large() -> JsonResponse:
    return _problem(
        413, "payload_too_large", "The request body is too large", f"At most {MAX_BODY_BYTES} bytes"
    )


def _problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    body = problem_body(status_code=status, code=code, title=title, detail=detail)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)
