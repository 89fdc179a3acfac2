"""The admin's form of a cell: its fields, and its credentials for its Kubernetes API given as a
kubeconfig or as an API server URL, CA certificate and token (clusters.cell_credentials). The
credentials are write-only: what was given is never rendered back, not even beside an error;
the page shows whether they are set, the API server and a fingerprint. Before new credentials
are saved, the API server is asked its version (bounded by SLUICE_FLEET_PROBE_TIMEOUT_SECONDS),
unless the operator unticks the check."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.db import models

from foundation.text import error_summary

from . import cell_credentials, drivers
from .models import Cell


def https_by_default(db_field, **kwargs):
    """A URL typed without a scheme is https:// (Django 6's default, asked for explicitly)."""
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return db_field.formfield(**kwargs)


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value (the form re-shown with an error included)."""

    def format_value(self, value):
        return None


class CellForm(forms.ModelForm):
    kubeconfig = forms.CharField(
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 8, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Paste a kubeconfig: its current context's cluster and user are kept, with "
        "the CA certificate and a token or client certificate inline. Leave empty to keep the "
        "credentials as they are.",
    )
    server = forms.CharField(
        label="API server URL",
        required=False,
        help_text="Or: the API server's https:// URL, its CA certificate and a token.",
    )
    ca_certificate = forms.CharField(
        label="CA certificate (PEM)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    token = forms.CharField(
        label="ServiceAccount token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )
    clear_credentials = forms.BooleanField(
        required=False,
        help_text="Forget the credentials: the in-cluster configuration (or SLUICE_KUBECONFIG) "
        "applies.",
    )
    test_connection = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Ask the API server its version with the new credentials before saving.",
    )

    class Meta:
        model = Cell
        formfield_callback = https_by_default
        fields = [
            "slug",
            "cloud",
            "region",
            "accepting",
            "shared_kafka_namespace",
            "shared_kafka_name",
            "shared_bootstrap",
            "shared_kafka_brokers",
            "max_shared_clusters",
            "max_dedicated_units",
            "max_shared_partitions",
            "prometheus_url",
        ]

    def clean(self):
        cleaned = super().clean()
        self.credential_columns = None
        try:
            credentials = self._credentials_given(cleaned)
        except cell_credentials.InvalidCredentials as error:
            # Beside what was filled in: the kubeconfig, or the URL/CA/token group it opens.
            self.add_error(self._credentials_field(cleaned), str(error))
            return cleaned
        if credentials is not None:
            if cleaned.get("test_connection"):
                self._probe(credentials)
            self.credential_columns = cell_credentials.sealed_columns(credentials)
        elif cleaned.get("clear_credentials"):
            self.credential_columns = cell_credentials.cleared_columns()
        return cleaned

    @staticmethod
    def _credentials_field(cleaned) -> str | None:
        if cleaned.get("clear_credentials"):
            return "clear_credentials"
        if cleaned.get("kubeconfig"):
            return "kubeconfig"
        if any(cleaned.get(name) for name in ("server", "ca_certificate", "token")):
            return "server"
        return None

    def _credentials_given(self, cleaned) -> dict | None:
        names = ("kubeconfig", "server", "ca_certificate", "token")
        if cleaned.get("clear_credentials") and any(cleaned.get(name) for name in names):
            raise cell_credentials.InvalidCredentials(
                "Clear the credentials, or give new ones: not both."
            )
        return cell_credentials.from_given(**{name: cleaned.get(name) or "" for name in names})

    def _probe(self, credentials: dict) -> None:
        try:
            drivers.probe_connection(
                cell_credentials.connection_of(credentials),
                timeout=settings.SLUICE_FLEET_PROBE_TIMEOUT_SECONDS,
            )
        except Exception as error:  # whatever stops it answering is what the operator must see
            raise forms.ValidationError(
                "The API server did not answer with these credentials: %(error)s",
                params={"error": error_summary(error, longest=300)},
                code="unreachable",
            ) from None

    def save(self, commit: bool = True):
        for name, value in (self.credential_columns or {}).items():
            setattr(self.instance, name, value)
        return super().save(commit)
