"""OpenAPI postprocessing: what every operation shares, documented once."""

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details. Branch on `code`; `title`/`detail` are for people.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {
            "type": "string",
            "description": "Stable machine-readable code",
            "example": "validation",
        },
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "For `validation`: the messages per field",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "field": {"type": "string", "description": "The field a domain error is about"},
        "retry_after": {"type": "integer", "description": "For `rate_limited`: seconds"},
    },
}

ERROR_RESPONSES = {
    "400": "The request is not valid (`validation`, `malformed_request`)",
    "401": "Not authenticated, or the API key is invalid, revoked or expired",
    "403": "Your role does not grant this (`permission_denied`)",
    "404": "No such object in this organization, or not a member (`not_found`)",
    "409": "Conflicts with the current state (`conflict`, `last_owner`, `quota_exceeded`…)",
    "429": "Rate limited (`rate_limited`); see the Retry-After header",
}

IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": (
        "Makes a POST safe to retry: the first response is kept for 24 hours and replayed "
        "(with `Idempotent-Replayed: true`); the same key with another body is a 422."
    ),
}


def add_shared_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                if status == "401" and not operation.get("security", [None]):
                    continue  # a public operation
                responses.setdefault(status, {"description": description, "content": problem})
            if method == "post" and path.startswith("/api/v1/orgs/{org}/"):
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
                responses.setdefault(
                    "422",
                    {"description": "Idempotency-Key reused with another body", "content": problem},
                )
    return result
