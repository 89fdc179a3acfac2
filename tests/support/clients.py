from rest_framework.test import APIClient


def session_client(user) -> APIClient:
    """A client logged in as ``user`` (Django session, as the web UI is)."""
    client = APIClient()
    client.force_login(user)
    return client


def key_client(key: str) -> APIClient:
    """A client sending ``Authorization: Bearer <key>``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client
