"""The REST API: Django REST Framework, the OpenAPI 3 schema, rate limits."""

from .environment import env

REST_FRAMEWORK = {
    # API keys first: their WWW-Authenticate header makes unauthenticated calls 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PAGINATION_CLASS": "foundation.api.pagination.CursorPage",
    "DEFAULT_FILTER_BACKENDS": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["foundation.api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "foundation.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # JSON is the only representation: `?format=` is an ordinary (ignored) query parameter
    # rather than a second, undocumented way to ask for one.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Sluice API",
    "DESCRIPTION": (
        "Managed Apache Kafka: organizations, clusters, topics, credentials, prices and usage. "
        "Errors are application/problem+json with a stable `code`. No string may hold the NUL "
        "character (U+0000): a request with one is a 400 `validation`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH body is described as its serializer validates it: fields it requires (a member's
    # role, an organization's name) are required, not made optional for "partial" updates.
    "COMPONENT_SPLIT_PATCH": False,
    # One Dimension enum, priced and metered alike (every priced dimension is metered: the
    # usage endpoints name it too). The tiers' slugs keep the name the schema gave them when
    # tiers were called cluster types, as the API's fields do.
    "ENUM_NAME_OVERRIDES": {
        "DimensionEnum": "clusters.models.Dimension",
        "ConsumerGroupStateEnum": "clusters.api.serializers.GROUP_STATES",
        "ClusterTypeSlugEnum": "clusters.catalog.TIER_SLUGS",
        "RegionEnum": "clusters.catalog.REGIONS",
        "CurrencyEnum": "billing.models.Currency",
        "InvoiceStateEnum": "billing.models.InvoiceState",
        "InvoiceLineKindEnum": "billing.models.InvoiceLineKind",
        "PaymentStatusEnum": "billing.models.PaymentStatus",
        "UsageExportTriggerEnum": "billing.models.ExportTrigger",
        "UsageExportStateEnum": "billing.models.ExportState",
        "RecommendationVerdictEnum": "billing.recommendation.Verdict",
        "TierLimitEnum": "billing.recommendation.LIMIT_NAMES",
        "BudgetAlertTypeEnum": "billing.models.BudgetAlertKind",
        "WebhookDeliveryStateEnum": "billing.models.DeliveryState",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "foundation.api.schema.add_shared_responses",
        "foundation.api.schema.add_creation_links",
    ],
}

# Requests per minute, per organization (all its callers together) and per caller (one API key
# or one user's session), shared by every web process through Redis.
SLUICE_RATE_LIMIT_ORG_PER_MINUTE = env.int("SLUICE_RATE_LIMIT_ORG_PER_MINUTE", default=1200)
SLUICE_RATE_LIMIT_CALLER_PER_MINUTE = env.int("SLUICE_RATE_LIMIT_CALLER_PER_MINUTE", default=600)
# Requests per minute per network address to the public endpoints that compute (the cost
# estimate), which anyone may call without signing in.
SLUICE_RATE_LIMIT_ADDRESS_PER_MINUTE = env.int("SLUICE_RATE_LIMIT_ADDRESS_PER_MINUTE", default=60)
