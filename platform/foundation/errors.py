"""Errors that services raise. Each carries a stable machine-readable ``code``: the API turns
it into problem+json, the web UI into a form or page message."""


class DomainError(Exception):
    code = "error"
    title = "The request failed"
    status = 400

    def __init__(self, detail: str = "", **extra) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class InvalidInput(DomainError):
    code = "validation"
    title = "The request is not valid"
    status = 400


class NotPermitted(DomainError):
    code = "permission_denied"
    title = "You may not do this"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    title = "The request conflicts with the current state"
    status = 409


class LastOwner(Conflict):
    code = "last_owner"
    title = "An organization needs at least one owner"


class OrganizationHasClusters(Conflict):
    """An organization is closed once nothing it runs is left: its clusters are deleted."""

    code = "organization_has_clusters"
    title = "The organization still has clusters"


class ConfirmationMismatch(InvalidInput):
    """An irreversible act asks the caller to type what it acts on, and they typed another."""

    code = "confirmation_mismatch"
    title = "The confirmation does not match"


class QuotaExceeded(DomainError):
    code = "quota_exceeded"
    title = "A quota would be exceeded"
    status = 409


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used for a different request"
    status = 422


class IdempotencyInProgress(DomainError):
    code = "idempotency_in_progress"
    title = "A request with this Idempotency-Key is still being processed"
    status = 409


class PaymentMethodRequired(DomainError):
    """What is asked for is paid for, and the organization has no payment method on file."""

    code = "payment_method_required"
    title = "A payment method is required"
    status = 402


class MonthNotClosed(Conflict):
    """What is asked of a month needs it closed (its hours final, its invoice issued)."""

    code = "month_not_closed"
    title = "The month is not closed yet"


class ExportsNotConfigured(Conflict):
    """The installation has no bucket for usage exports (SLUICE_EXPORT_BUCKET)."""

    code = "exports_not_configured"
    title = "Usage exports are not configured here"


class SpendCapReached(DomainError):
    """The organization (or the cluster) reached its monthly spend cap: nothing grows until the
    cap is raised or the month ends."""

    code = "spend_cap_reached"
    title = "The spend cap is reached"
    status = 409


class ConsumerGroupsUnavailable(Conflict):
    """Consumer groups are read from a cluster's Kafka: there is none to ask (the simulated
    data plane, or a cluster not ready yet)."""

    code = "consumer_groups_unavailable"
    title = "Consumer groups are not available for this cluster"


class KafkaUnreachable(DomainError):
    """The cluster's Kafka refused Sluice's admin request or did not answer in time."""

    code = "kafka_unreachable"
    title = "The cluster's Kafka did not answer"
    status = 503
