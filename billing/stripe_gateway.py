"""Every call Sluice makes to Stripe, through the official library, and nothing else.

Sluice rates; Stripe collects. Per invoice: the organization's customer (created once), a
Stripe invoice that waits for Sluice (``auto_advance=false``) and takes only the items named
for it (``pending_invoice_items_behavior=exclude``), one invoice item per line, then
finalization, after which Stripe collects; and a session of Stripe's customer portal, where a
person adds the payment method. Every write to the books carries a deterministic Idempotency-Key
(``idempotency_key``), so a retry of a step is that step again, never a second object; Stripe
forgets keys after 24 hours, so the lookups (``find_invoice``, ``find_invoice_item``) find by
Sluice's ids in the metadata what an earlier attempt created.

Webhooks come in through ``webhook_event``, which checks the signature on the raw body before
anything is read from it, and hands over only the fields Sluice acts on.

Errors come out as two kinds, for whoever retries: ``RetryableStripeError`` (no answer, 409,
429, 5xx: try again later, with the same key) and ``PermanentStripeError`` (any other 4xx: a
retry would fail the same way; stop and tell someone). The library's own retries are off: the
caller decides when to retry, and sees every failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stripe
from django.conf import settings

CURRENCY = "usd"
COLLECTION_METHODS = ("charge_automatically", "send_invoice")
IDEMPOTENCY_KEY_MAX_LENGTH = 255  # Stripe's limit
# Besides its own failures (5xx), what Stripe answers to be retried: another request with the
# same key still running (409), and rate limiting (429).
RETRYABLE_STATUSES = frozenset({409, 429})

T = TypeVar("T")


class StripeNotConfigured(Exception):
    """No STRIPE_API_KEY: Sluice rates and shows invoices but pushes nothing to Stripe."""


class StripeCallFailed(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id


class RetryableStripeError(StripeCallFailed):
    """Stripe did not answer, or answered 409, 429 or 5xx: retry later with the same key.
    ``retry_after`` is Stripe's Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **details) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class PermanentStripeError(StripeCallFailed):
    """Stripe refused the request (4xx other than 409 and 429): retrying cannot help."""


@dataclass(frozen=True)
class StripeInvoice:
    id: str
    customer: str
    status: str  # draft, open, paid, uncollectible, void
    total: int  # cents
    amount_due: int  # cents
    currency: str
    sluice_invoice_id: str | None
    # When it reached those states (Unix seconds), from ``status_transitions``.
    finalized_at: int | None = None
    paid_at: int | None = None


@dataclass(frozen=True)
class StripeCustomer:
    id: str
    deleted: bool
    # A card or other method Stripe charges by default: the invoice settings' default payment
    # method, or the older default source.
    has_default_payment_method: bool


@dataclass(frozen=True)
class StripeInvoiceItem:
    id: str
    invoice: str | None
    amount: int  # cents
    currency: str
    sluice_line_id: str | None


def idempotency_key(step: str, object_id: str) -> str:
    """The Idempotency-Key of one step for one object: the same on every attempt."""
    key = f"sluice:{step}:{object_id}"
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValueError(f"idempotency key over {IDEMPOTENCY_KEY_MAX_LENGTH} characters: {key!r}")
    return key


def stripe_configured() -> bool:
    return bool(settings.STRIPE_API_KEY)


class StripeGateway:
    def __init__(self, *, api_key: str, api_base: str, timeout_seconds: float) -> None:
        if not api_key:
            raise StripeNotConfigured(
                "Stripe is not configured (STRIPE_API_KEY is empty): nothing is sent to Stripe"
            )
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout_seconds),
        )

    @classmethod
    def from_settings(cls) -> StripeGateway:
        return cls(
            api_key=settings.STRIPE_API_KEY,
            api_base=settings.STRIPE_API_BASE,
            timeout_seconds=settings.SLUICE_STRIPE_TIMEOUT_SECONDS,
        )

    # Writes ----------------------------------------------------------------------------------

    def create_customer(self, *, organization: str, name: str = "", email: str = "") -> str:
        """The organization's customer (``organization`` is its public id); its Stripe id."""
        params: dict[str, Any] = {"metadata": {"sluice_organization": organization}}
        if name:
            params["name"] = name
        if email:
            params["email"] = email
        customer = self._call(
            lambda: self._client.v1.customers.create(
                params=params,
                options={"idempotency_key": idempotency_key("customer", organization)},
            )
        )
        return customer["id"]

    def create_invoice(
        self,
        *,
        customer: str,
        sluice_invoice_id: str,
        collection_method: str = "charge_automatically",
        days_until_due: int | None = None,
        description: str = "",
    ) -> StripeInvoice:
        """A draft invoice that Stripe neither finalizes on its own nor fills with the
        customer's pending items: only the items Sluice adds to it."""
        if collection_method not in COLLECTION_METHODS:
            raise ValueError(f"collection_method must be one of {COLLECTION_METHODS}")
        params: dict[str, Any] = {
            "customer": customer,
            "currency": CURRENCY,
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "collection_method": collection_method,
            "metadata": {"sluice_invoice_id": sluice_invoice_id},
        }
        if collection_method == "send_invoice":
            if days_until_due is None:
                raise ValueError("an invoice sent for payment needs days_until_due")
            params["days_until_due"] = days_until_due
        if description:
            params["description"] = description
        invoice = self._call(
            lambda: self._client.v1.invoices.create(
                params=params,
                options={"idempotency_key": idempotency_key("invoice", sluice_invoice_id)},
            )
        )
        return _invoice(invoice)

    def create_invoice_item(
        self,
        *,
        customer: str,
        invoice: str,
        sluice_line_id: str,
        amount_cents: int,
        description: str,
    ) -> StripeInvoiceItem:
        """One line of a Sluice invoice on the Stripe invoice ``invoice``; ``amount_cents`` is
        signed (an adjustment may be a credit)."""
        if not isinstance(amount_cents, int) or isinstance(amount_cents, bool):
            raise TypeError("amount_cents must be an integer number of cents")
        item = self._call(
            lambda: self._client.v1.invoice_items.create(
                params={
                    "customer": customer,
                    "invoice": invoice,
                    "amount": amount_cents,
                    "currency": CURRENCY,
                    "description": description,
                    "metadata": {"sluice_line_id": sluice_line_id},
                },
                options={"idempotency_key": idempotency_key("invoice-item", sluice_line_id)},
            )
        )
        return _invoice_item(item)

    def finalize_invoice(self, invoice: str) -> StripeInvoice:
        """Freezes the Stripe invoice ``invoice`` and hands its collection to Stripe
        (``auto_advance`` on from here: Stripe charges or sends it, and retries payment)."""
        finalized = self._call(
            lambda: self._client.v1.invoices.finalize_invoice(
                invoice,
                params={"auto_advance": True},
                # Keyed by the Stripe invoice: finalizing is an act on that object.
                options={"idempotency_key": idempotency_key("finalize", invoice)},
            )
        )
        return _invoice(finalized)

    def create_portal_session(self, *, customer: str, return_url: str) -> str:
        """A session of Stripe's customer portal for ``customer``, where its payment methods
        are added and changed; the URL to send the person to, which comes back to
        ``return_url``. No deterministic key (the library sends a random one): a session is a
        short-lived link, a retry that makes a second one leaves the first to expire unused,
        and a replayed key would hand back a link that may have expired."""
        session = self._call(
            lambda: self._client.v1.billing_portal.sessions.create(
                params={"customer": customer, "return_url": return_url}
            )
        )
        return _fields(session)["url"]

    # Reads -----------------------------------------------------------------------------------

    def retrieve_invoice(self, invoice: str) -> StripeInvoice:
        return _invoice(self._call(lambda: self._client.v1.invoices.retrieve(invoice)))

    def retrieve_customer(self, customer: str) -> StripeCustomer:
        return _customer(self._call(lambda: self._client.v1.customers.retrieve(customer)))

    def find_invoice(self, *, customer: str, sluice_invoice_id: str) -> StripeInvoice | None:
        """The customer's Stripe invoice made for ``sluice_invoice_id``, if one exists."""

        def find():
            invoices = self._client.v1.invoices.list(params={"customer": customer, "limit": 100})
            for invoice in invoices.auto_paging_iter():
                if _metadata(invoice).get("sluice_invoice_id") == sluice_invoice_id:
                    return invoice
            return None

        found = self._call(find)
        return None if found is None else _invoice(found)

    def find_invoice_item(self, *, invoice: str, sluice_line_id: str) -> StripeInvoiceItem | None:
        """The item of the Stripe invoice ``invoice`` made for ``sluice_line_id``, if one
        exists (listing is exact at once; Stripe's search may lag)."""

        def find():
            items = self._client.v1.invoice_items.list(params={"invoice": invoice, "limit": 100})
            for item in items.auto_paging_iter():
                if _metadata(item).get("sluice_line_id") == sluice_line_id:
                    return item
            return None

        found = self._call(find)
        return None if found is None else _invoice_item(found)

    @staticmethod
    def _call(request: Callable[[], T]) -> T:
        try:
            return request()
        except stripe.StripeError as error:
            raise classify(error) from error


# Webhooks ------------------------------------------------------------------------------------


class WebhookRejected(Exception):
    """A delivery that is not a verified Stripe event; ``code`` says why, for the answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class WebhookEvent:
    """A verified event: what it is, and the object it carries as Stripe saw it then (an
    invoice or a customer; ``None`` for other objects)."""

    id: str
    type: str
    livemode: bool
    created: int  # Unix seconds
    object_id: str
    invoice: StripeInvoice | None = None
    customer: StripeCustomer | None = None


def webhook_event(payload: bytes, signature: str | None, secret: str) -> WebhookEvent:
    """The event in a webhook's raw body, once its ``Stripe-Signature`` is verified with the
    endpoint's signing secret: signed with it, less than 5 minutes ago (the library's
    tolerance, which stops a recorded delivery being replayed later)."""
    if not signature:
        raise WebhookRejected("stripe_signature_missing", "No Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as error:
        raise _signature_refused(payload, signature, secret, error) from None
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        # Not UTF-8, not JSON, or JSON that is not an object (the library fails in building it)
        raise WebhookRejected("malformed_event", f"The body is not a JSON event: {error}") from None
    return _webhook_event(_fields(event))


def _signature_refused(payload, signature, secret, error) -> WebhookRejected:
    try:  # the same check without the time limit: does only the timestamp fail?
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance=None)
    except (stripe.SignatureVerificationError, ValueError):
        return WebhookRejected("stripe_signature_invalid", str(error))
    return WebhookRejected(
        "stripe_signature_expired",
        "The signature is more than 5 minutes old: a replayed delivery, or a clock that is off",
    )


def _webhook_event(fields: dict) -> WebhookEvent:
    try:
        obj = fields["data"]["object"]
        kind = obj.get("object")
        event = WebhookEvent(
            id=fields["id"],
            type=fields["type"],
            livemode=fields["livemode"],
            created=fields["created"],
            object_id=obj.get("id") or "",
            invoice=_invoice(obj) if kind == "invoice" else None,
            customer=_customer(obj) if kind == "customer" else None,
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise WebhookRejected("malformed_event", f"Not a Stripe event: {error!r}") from None
    shapes = {"id": str, "type": str, "livemode": bool, "created": int, "object_id": str}
    wrong = [name for name, shape in shapes.items() if not isinstance(getattr(event, name), shape)]
    if wrong or not event.id.startswith("evt_"):
        raise WebhookRejected("malformed_event", f"Not a Stripe event: {wrong or 'id'}")
    return event


def classify(error: stripe.StripeError) -> StripeCallFailed:
    """The library's error as one of the two kinds a caller acts on."""
    details = {
        "status": error.http_status,
        "code": error.code,
        "request_id": error.request_id,
    }
    message = error.user_message or str(error) or type(error).__name__
    if isinstance(error, stripe.APIConnectionError):
        # No answer (refused, reset, timed out): retryable; a certificate that does not verify
        # is not, as it stays wrong.
        if error.should_retry:
            return RetryableStripeError(message, **details)
        return PermanentStripeError(message, **details)
    status = error.http_status
    if status is None or status in RETRYABLE_STATUSES or status >= 500:
        return RetryableStripeError(message, retry_after=_retry_after(error), **details)
    return PermanentStripeError(message, **details)


def _retry_after(error: stripe.StripeError) -> float | None:
    value = (error.headers or {}).get("retry-after") or (error.headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: left to the caller's backoff
        return None


def _fields(stripe_object) -> dict[str, Any]:
    return stripe_object.to_dict() if hasattr(stripe_object, "to_dict") else dict(stripe_object)


def _metadata(stripe_object) -> dict[str, str]:
    return _fields(stripe_object).get("metadata") or {}


def _id(value) -> str | None:
    """An id field, which Stripe expands into the object when asked to."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def _invoice(stripe_object) -> StripeInvoice:
    fields = _fields(stripe_object)
    transitions = fields.get("status_transitions") or {}
    return StripeInvoice(
        id=fields["id"],
        customer=_id(fields["customer"]),
        status=fields["status"],
        total=fields["total"],
        amount_due=fields["amount_due"],
        currency=fields["currency"],
        sluice_invoice_id=(fields.get("metadata") or {}).get("sluice_invoice_id"),
        finalized_at=transitions.get("finalized_at"),
        paid_at=transitions.get("paid_at"),
    )


def _customer(stripe_object) -> StripeCustomer:
    fields = _fields(stripe_object)
    invoice_settings = fields.get("invoice_settings") or {}
    return StripeCustomer(
        id=fields["id"],
        deleted=bool(fields.get("deleted")),
        has_default_payment_method=bool(
            invoice_settings.get("default_payment_method") or fields.get("default_source")
        ),
    )


def _invoice_item(stripe_object) -> StripeInvoiceItem:
    fields = _fields(stripe_object)
    return StripeInvoiceItem(
        id=fields["id"],
        invoice=_id(fields.get("invoice")),
        amount=fields["amount"],
        currency=fields["currency"],
        sluice_line_id=(fields.get("metadata") or {}).get("sluice_line_id"),
    )
