"""Invoices: who issues them, as the invoice page shows it."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env

# The seller on every invoice: its name, then its address (and, where the law asks for it, its
# tax id), one line each, separated by semicolons: "Sluice Inc.; 1 Main Street; 94105 San
# Francisco, CA; United States; EIN 12-3456789".
SLUICE_INVOICE_ISSUER = tuple(
    line.strip()
    for line in env.str("SLUICE_INVOICE_ISSUER", default="Sluice").split(";")
    if line.strip()
)
if not SLUICE_INVOICE_ISSUER:
    raise ImproperlyConfigured("SLUICE_INVOICE_ISSUER names the seller: it may not be empty")
