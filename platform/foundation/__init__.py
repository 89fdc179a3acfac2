"""The foundation every app stands on: domain errors, public ids, sealed secrets, rate limits,
request ids, the content security policy, queueing a task by its name, a read-only admin, and
the API plumbing (problem+json, cursor pages, strict query validation, bounded JSON, shown-once
secrets, the OpenAPI hooks).

It is the lowest layer: it imports Django, DRF and the libraries, never an app of Sluice
(ARCHITECTURE.md; the import contract in pyproject.toml checks it).
"""
