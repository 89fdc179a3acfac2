"""Metering, the usage ledger, prices, rating, invoices, Stripe, spend caps, the cost
estimator."""
