"""The self-service web UI of the tenancy layer, by page group: the organization pages' frame
(``base``), accounts and the home page, members and invitations, API keys, the audit log."""
