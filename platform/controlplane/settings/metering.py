"""Metering: how usage is read from each cell's Prometheus into the ledger."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env

# Two samples of one series further apart than this are a gap: the hours it touches are marked
# incomplete. Three times the cells' scrape interval (30 s in Strimzi's examples).
SLUICE_METERING_MAX_GAP_SECONDS = env.float("SLUICE_METERING_MAX_GAP_SECONDS", default=90.0)
# How late a sample may still land in Prometheus (a slow scrape, a remote-write backlog): hours
# that ended less than this ago are recomputed on every run; older ones are closed by the
# collector's watermark.
SLUICE_METERING_LATENESS_SECONDS = env.float("SLUICE_METERING_LATENESS_SECONDS", default=300.0)
# The most hours one run reads (a backlog after an outage is worked off over several runs).
SLUICE_METERING_MAX_WINDOW_HOURS = env.int("SLUICE_METERING_MAX_WINDOW_HOURS", default=6)
# Hours per task of a parallel recompute (manage.py recompute_usage): each task recomputes
# its chunk a window of SLUICE_METERING_MAX_WINDOW_HOURS at a time.
SLUICE_METERING_RECOMPUTE_CHUNK_HOURS = env.int("SLUICE_METERING_RECOMPUTE_CHUNK_HOURS", default=24)
# How far back a series that appears in the middle of a window is looked for: found, it is a
# series that went unscraped for a while (a gap); not found, a counter that Kafka created just
# now (on a topic's first traffic, or after a restart), which counts from zero.
SLUICE_METERING_HISTORY_SECONDS = env.int("SLUICE_METERING_HISTORY_SECONDS", default=7 * 86400)
# Seconds to wait for one answer of a cell's Prometheus.
SLUICE_PROMETHEUS_TIMEOUT_SECONDS = env.float("SLUICE_PROMETHEUS_TIMEOUT_SECONDS", default=30.0)
# The same for each query of a cluster page's live metrics: a slow Prometheus makes a chart say
# "not measured", not the page wait.
SLUICE_LIVE_METRICS_TIMEOUT_SECONDS = env.float("SLUICE_LIVE_METRICS_TIMEOUT_SECONDS", default=5.0)

# The month close waits until every cell's watermark is this far past the month's end.
SLUICE_BILLING_CLOSE_GRACE_SECONDS = env.int("SLUICE_BILLING_CLOSE_GRACE_SECONDS", default=3600)
# An organization whose month still has incomplete hours waits this long after the month's end
# for them, then closes with what is known (lines marked estimated, operators alerted).
SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS = env.int(
    "SLUICE_BILLING_INCOMPLETE_GRACE_SECONDS", default=48 * 3600
)
# Organizations closed (or their drafts recomputed) per transaction and ledger read.
SLUICE_BILLING_CLOSE_BATCH = env.int("SLUICE_BILLING_CLOSE_BATCH", default=100)

# Spend caps: a cap counts as reached when the month so far plus what the current hourly rate
# adds in this many seconds (about two metering periods: until the next check has run) is at
# or above it.
SLUICE_SPEND_PROJECTION_SECONDS = env.float("SLUICE_SPEND_PROJECTION_SECONDS", default=120.0)

# The ledger's monthly partitions on PostgreSQL (billing/ledger_partitions.py): beat keeps the
# current month's and this many more made ahead.
SLUICE_LEDGER_PARTITIONS_AHEAD_MONTHS = env.int("SLUICE_LEDGER_PARTITIONS_AHEAD_MONTHS", default=3)
# Months of ledger hours kept in the table: an older month is detached (kept as a table of its
# own for an operator to drop) once it is closed and its export is confirmed. 0 or empty: every
# month is kept.
SLUICE_LEDGER_RETENTION_MONTHS = int(env.str("SLUICE_LEDGER_RETENTION_MONTHS", default="36") or 0)
if SLUICE_LEDGER_PARTITIONS_AHEAD_MONTHS < 0 or SLUICE_LEDGER_RETENTION_MONTHS < 0:
    raise ImproperlyConfigured(
        "SLUICE_LEDGER_PARTITIONS_AHEAD_MONTHS and SLUICE_LEDGER_RETENTION_MONTHS must be 0 or more"
    )
