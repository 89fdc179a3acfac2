"""Usage: metering (reading each cell's Prometheus and turning counters into hourly
quantities), the usage ledger (hours and their adjustments, with the metering watermark), and
usage for charts and the API. Prices are the tiers' (``clusters.TierPrice``); nothing rates
usage or issues invoices yet."""
