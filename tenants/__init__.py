"""Organizations, members and roles, invitations, API keys, audit log, tenant scoping."""
