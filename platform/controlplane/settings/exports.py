"""Usage exports: where each organization's monthly usage and invoice lines are written, as
gzip CSV, for it to download (billing/exports.py). Credentials come from boto3's own chain
(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or the instance's role), never from
here."""

from django.core.exceptions import ImproperlyConfigured

from .environment import env

# The bucket the exports are written to. Empty: exports are off (the API refuses to make one,
# the month close queues none).
SLUICE_EXPORT_BUCKET = env.str("SLUICE_EXPORT_BUCKET", default="")
# An S3-compatible endpoint other than AWS's (MinIO, Ceph; moto's server in the tests). Empty:
# AWS's endpoint of the region.
SLUICE_EXPORT_ENDPOINT_URL = env.str("SLUICE_EXPORT_ENDPOINT_URL", default="")
SLUICE_EXPORT_REGION = env.str(
    "SLUICE_EXPORT_REGION", default=env.str("AWS_DEFAULT_REGION", default="us-east-1")
)
# How long a download link stays valid: a link is made when it is asked for, so a short life
# costs nothing and limits what a leaked link gives away.
SLUICE_EXPORT_URL_EXPIRY_SECONDS = env.int("SLUICE_EXPORT_URL_EXPIRY_SECONDS", default=300)
# An object whose compressed size passes this goes up in parts of SLUICE_EXPORT_PART_SIZE_BYTES
# (S3 takes parts of 5 MiB or more, 10,000 at most): at most one part is held in memory.
SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES = env.int(
    "SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES", default=16 * 1024 * 1024
)
SLUICE_EXPORT_PART_SIZE_BYTES = env.int("SLUICE_EXPORT_PART_SIZE_BYTES", default=16 * 1024 * 1024)
# Ledger rows read from PostgreSQL per round trip while an export streams them.
SLUICE_EXPORT_READ_CHUNK_ROWS = env.int("SLUICE_EXPORT_READ_CHUNK_ROWS", default=5000)

S3_MINIMUM_PART_BYTES = 5 * 1024 * 1024
if SLUICE_EXPORT_PART_SIZE_BYTES < S3_MINIMUM_PART_BYTES:
    raise ImproperlyConfigured("SLUICE_EXPORT_PART_SIZE_BYTES must be 5 MiB (5242880) or more")
if SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES < 1:
    raise ImproperlyConfigured("SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES must be positive")
if not 1 <= SLUICE_EXPORT_URL_EXPIRY_SECONDS <= 7 * 86400:
    raise ImproperlyConfigured(
        "SLUICE_EXPORT_URL_EXPIRY_SECONDS must be from 1 to 604800 (S3's longest, 7 days)"
    )
if SLUICE_EXPORT_READ_CHUNK_ROWS < 1:
    raise ImproperlyConfigured("SLUICE_EXPORT_READ_CHUNK_ROWS must be positive")
# How long one run may hold an export it is writing: a run that died loses it after this, and
# a retry of the task writes it (finding the objects the dead run wrote, if they are the same).
SLUICE_EXPORT_CLAIM_SECONDS = env.int("SLUICE_EXPORT_CLAIM_SECONDS", default=3600)
