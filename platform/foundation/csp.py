"""The Content-Security-Policy of every page: scripts, styles, fonts and images from Sluice's own
origin only (htmx and the API docs' Swagger UI are served locally), no inline script or style,
no plugins, no framing, forms posting to Sluice alone. Django 5.2 has no CSP support of its own.
"""

from __future__ import annotations

from django.conf import settings

HEADER = "Content-Security-Policy"


def policy(directives: dict[str, list[str]]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.header = policy(settings.SLUICE_CONTENT_SECURITY_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault(HEADER, self.header)
        return response
