"""The ledger's monthly partitions a benchmark writes into, made before it writes, as beat
makes them ahead in production (billing.ledger_partitions): without them a benchmark's hours
would sit in the DEFAULT partition, which production never uses, and measure something else."""

from __future__ import annotations

from datetime import datetime

from billing.ledger_partitions import partitions_ensure


def ledger_months_made(*months: datetime) -> None:
    for month in months:
        partitions_ensure(now=month, ahead=0)
