"""Settings, split by concern (core, database, broker, cache, api, logs,
dataplane, metering, stripe, webhooks) and
composed per environment: ``local`` (the default, embedded, needs no server), ``test`` and
``production`` (refuses to start without what it needs)."""
