"""API plumbing shared by every app: problem+json errors, the API root."""
