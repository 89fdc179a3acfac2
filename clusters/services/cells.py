"""Cells: an operator registers a data-plane cluster, or updates one, by its slug (the
``register_cell`` command; the admin's form writes the same columns). Credentials are sealed
(clusters.cell_credentials); given none, an existing cell keeps its own."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from foundation.errors import InvalidInput

from .. import cell_credentials
from ..models import Cell


@transaction.atomic
def cell_register(
    *,
    slug: str,
    credentials: dict | None = None,
    clear_credentials: bool = False,
    **fields,
) -> tuple[Cell, list[str]]:
    """Create the cell ``slug`` or update it with ``fields`` (model field names) and
    ``credentials`` (a checked kubeconfig). Running it again with the same values changes
    nothing. Returns the cell and what changed: ["created"], or the names of the fields that
    did ("credentials" for the credentials)."""
    cell = Cell.objects.select_for_update().filter(slug=slug).first()
    created = cell is None
    cell = cell or Cell(slug=slug)
    changed = [name for name, value in fields.items() if getattr(cell, name) != value]
    for name, value in fields.items():
        setattr(cell, name, value)
    if credentials is not None or clear_credentials:
        columns = (
            cell_credentials.sealed_columns(credentials)
            if credentials is not None
            else cell_credentials.cleared_columns()
        )
        if columns["credentials_fingerprint"] != cell.credentials_fingerprint:
            changed.append("credentials")
            for name, value in columns.items():
                setattr(cell, name, value)
    try:
        cell.full_clean()
    except ValidationError as error:
        raise InvalidInput(
            "; ".join(f"{name}: {' '.join(texts)}" for name, texts in error.message_dict.items())
        ) from None
    if created or changed:
        cell.save()
    return cell, ["created"] if created else changed
