"""OpenAPI postprocessing: what every operation shares, documented once."""

from foundation.errors import DomainError

from .problems import PROBLEM_CONTENT_TYPE, problem_codes
from .validation import IDEMPOTENCY_KEY_PATTERN

FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Messages per field. A field holding an object or a list (a dictionary of "
    "topic configs, a list of values) has its errors per key or index, nested the same way.",
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"$ref": "#/components/schemas/FieldErrors"},
        ]
    },
}


def problem_schema() -> dict:
    return {
        "type": "object",
        "description": "RFC 9457 problem details. Branch on `code`; `title`/`detail` are for "
        "people.",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {
                "type": "string",
                "description": "Stable machine-readable code",
                "enum": problem_codes(DomainError),
            },
            "detail": {"type": "string"},
            "errors": {
                "allOf": [{"$ref": "#/components/schemas/FieldErrors"}],
                "description": "For `validation`: the messages per field",
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
    "406": "The Accept header asks for something other than JSON (`not_acceptable`)",
    "409": "Conflicts with the current state (`conflict`, `last_owner`, `quota_exceeded`…)",
    "429": "Rate limited (`rate_limited`); see the Retry-After header",
}
BODY_ERROR_RESPONSES = {
    "415": "The body is not `application/json` (`unsupported_media_type`)",
}

IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
    "description": (
        "Makes a POST safe to retry: the first response is kept for 24 hours and replayed "
        "(with `Idempotent-Replayed: true`); the same key with another body is a 422. "
        "1 to 255 visible ASCII characters, no spaces."
    ),
}


# OpenAPI links: what a creation answers names the object the next calls act on (clients and
# stateful test generators follow them). (creating operation, its status, the object's path,
# that path's parameters as runtime expressions.)
_ORG = {"org": "$request.path.org"}
_CHILD = {**_ORG, "cluster": "$request.path.cluster"}
CREATION_LINKS = [
    (
        ("post", "/api/v1/orgs/{org}/clusters/", "202"),
        "/api/v1/orgs/{org}/clusters/{id}/",
        {**_ORG, "id": "$response.body#/cluster/id"},
    ),
    (
        ("post", "/api/v1/orgs/{org}/clusters/", "202"),
        "/api/v1/orgs/{org}/operations/{id}/",
        {**_ORG, "id": "$response.body#/operation/id"},
    ),
    (
        ("post", "/api/v1/orgs/{org}/clusters/{cluster}/topics/", "202"),
        "/api/v1/orgs/{org}/clusters/{cluster}/topics/{name}/",
        {**_CHILD, "name": "$response.body#/topic/name"},
    ),
    (
        ("post", "/api/v1/orgs/{org}/clusters/{cluster}/credentials/", "202"),
        "/api/v1/orgs/{org}/clusters/{cluster}/credentials/{id}/",
        {**_CHILD, "id": "$response.body#/credential/id"},
    ),
    (
        ("post", "/api/v1/orgs/{org}/api-keys/", "201"),
        "/api/v1/orgs/{org}/api-keys/{id}/",
        {**_ORG, "id": "$response.body#/id"},
    ),
    (
        ("post", "/api/v1/orgs/{org}/invitations/", "201"),
        "/api/v1/orgs/{org}/invitations/{id}/",
        {**_ORG, "id": "$response.body#/id"},
    ),
]


def add_creation_links(result, generator, request, public):
    paths = result.get("paths", {})
    for (method, path, status), target, parameters in CREATION_LINKS:
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue  # not in this description (a filtered or public one)
        links = response.setdefault("links", {})
        for operation in paths.get(target, {}).values():
            operation_id = operation["operationId"]
            links[operation_id] = {"operationId": operation_id, "parameters": parameters}
    return result


def add_shared_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = problem_schema()
    schemas["FieldErrors"] = FIELD_ERRORS_SCHEMA
    problem = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            shared = dict(ERROR_RESPONSES)
            if "requestBody" in operation:
                shared.update(BODY_ERROR_RESPONSES)
            for status, description in shared.items():
                if status == "401" and not operation.get("security", [None]):
                    continue  # a public operation
                responses.setdefault(status, {"description": description})
            if method == "post" and path.startswith("/api/v1/orgs/{org}/"):
                operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
                responses.setdefault(
                    "422", {"description": "Idempotency-Key reused with another body"}
                )
            for status, response in responses.items():
                if int(status) >= 400:  # every error, shared or the operation's own, is a problem
                    response["content"] = problem
    return result
