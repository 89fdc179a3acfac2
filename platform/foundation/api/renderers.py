"""Representations other than JSON, for the few endpoints that offer one."""

from rest_framework.renderers import BaseRenderer, JSONRenderer


class CsvRenderer(BaseRenderer):
    """Lets a client ask for ``text/csv`` (the view answers the CSV itself). Anything else
    rendered through it, an error's problem+json above all, stays JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, str):
            return data.encode(self.charset)
        return JSONRenderer().render(data, accepted_media_type, renderer_context)
