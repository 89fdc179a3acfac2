"""API plumbing shared by every app: problem+json errors, cursor pagination, strict query and
body validation, shown-once secrets, the OpenAPI hooks."""
