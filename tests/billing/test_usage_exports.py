"""Usage exports to S3, against moto's S3 server (tests/support/s3.py) with real boto3 calls:
what the month close and a request write, checked against the manifest by downloading each
object; write-once keys (If-None-Match); multipart above the threshold; pre-signed downloads
with plain urllib; one organization never reaching another's exports; the API's refusals."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from django.db import transaction

from billing import export_store, exports
from billing.closing import Outcome, invoice_close
from billing.models import (
    ClosedMonth,
    ExportState,
    ExportTrigger,
    UsageAdjustment,
    UsageExport,
)
from billing.services import HourSnapshot, record_hours
from billing.tasks import export_month, resume_usage_exports
from clusters.models import Cluster, ClusterSize, Dimension
from tenants.audit import Actor
from tenants.models import AuditEvent
from tenants.roles import Role
from tenants.scoping import tenant_scope
from tests.factories import UserFactory, add_member, make_cluster, make_org
from tests.support.clients import session_client

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = timedelta(hours=1)
OCTOBER, NOVEMBER = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
CLOSE_AT = NOVEMBER + 2 * HOUR
OCTOBER_HOURS = 744
NAMES = ("usage-hours", "usage-adjustments", "invoice-lines")
TESTER = Actor(system="tests")


def october_of(organization, *, name="events"):
    """A serverless cluster that held 6 partitions and took in 1,000,000 bytes every hour of
    October 2026: 1,488 ledger hours."""
    cluster, _ = make_cluster(organization, name=name)
    ClusterSize.unscoped_all_tenants.filter(cluster=cluster).update(since=OCTOBER)
    Cluster.unscoped_all_tenants.filter(pk=cluster.pk).update(created_at=OCTOBER)
    rows = []
    for index in range(OCTOBER_HOURS):
        hour = OCTOBER + index * HOUR
        for dimension, quantity in (
            (Dimension.PARTITION_HOURS, 6),
            (Dimension.INGRESS_BYTES, 1_000_000),
        ):
            rows.append(HourSnapshot(cluster.pk, dimension, hour, quantity, True))
    record_hours(rows, now=CLOSE_AT - HOUR)
    return cluster


def closed_october(organization, *, name="events"):
    cluster = october_of(organization, name=name)
    assert invoice_close(organization=organization, period_start=OCTOBER, now=CLOSE_AT) in (
        Outcome.CLOSED,
    )
    return cluster


@pytest.fixture
def org():
    return make_org(owner=UserFactory(), name="Acme")


def read(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(gzip.decompress(data).decode())))


def manifest_of(s3, export: UsageExport) -> dict:
    return json.loads(read(s3, export.bucket, export.prefix + "manifest.json"))


def only_export(organization, **filters) -> UsageExport:
    with tenant_scope(organization):
        return UsageExport.objects.get(**filters)


def request_export(organization, month=OCTOBER) -> UsageExport:
    with tenant_scope(organization):
        export = exports.export_request(organization=organization, period_start=month, actor=TESTER)
    return only_export(organization, public_id=export.public_id)


# What an export writes -------------------------------------------------------------------------


def test_the_month_close_exports_the_month_and_the_manifest_matches_each_object(
    org, export_bucket, s3_server
):
    cluster = closed_october(org)
    s3 = s3_server.client()

    export = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)

    assert export.state == ExportState.DONE, export.error
    assert export.period_start == OCTOBER
    assert export.prefix == f"usage/{org.public_id}/2026/10/{export.public_id}/"
    listed = s3.list_objects_v2(Bucket=export_bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted(
        [
            f"{export.prefix}usage-hours.csv.gz",
            f"{export.prefix}usage-adjustments.csv.gz",
            f"{export.prefix}invoice-lines.csv.gz",
            f"{export.prefix}manifest.json",
        ]
    )
    manifest = manifest_of(s3, export)
    assert manifest["export_id"] == export.public_id
    assert manifest["organization_id"] == org.public_id
    assert (manifest["month"], manifest["period_start"], manifest["period_end"]) == (
        "2026-10",
        "2026-10-01T00:00:00Z",
        "2026-11-01T00:00:00Z",
    )
    assert manifest["created_at"] == export.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    # 744 hours x 2 dimensions; no adjustment; two invoice lines.
    assert [(o["name"], o["rows"]) for o in manifest["objects"]] == [
        ("usage-hours", 1_488),
        ("usage-adjustments", 0),
        ("invoice-lines", 2),
    ]
    for entry in manifest["objects"]:
        data = read(s3, export_bucket, entry["key"])
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        _header, *rows = csv_rows(data)
        assert len(rows) == entry["rows"]
    assert export.files == [
        {**entry, "content_type": "application/gzip"} for entry in manifest["objects"]
    ]

    hours = csv_rows(read(s3, export_bucket, f"{export.prefix}usage-hours.csv.gz"))
    assert hours[0] == ["cluster_id", "dimension", "unit", "hour", "quantity", "complete"]
    assert hours[1] == [
        cluster.public_id,
        "ingress_bytes",
        "bytes",
        "2026-10-01T00:00:00Z",
        "1000000",
        "True",
    ]
    assert hours[-1] == [
        cluster.public_id,
        "partition_hours",
        "partition-hours",
        "2026-10-31T23:00:00Z",
        "6",
        "True",
    ]
    # By hand: 6 partitions x 744 h = 4,464 partition-hours at $0.0015 = $6.696000 -> $6.70;
    # 744 h x 1,000,000 B = 744,000,000 B at $0.08 per GB = $0.059520 -> $0.06.
    lines = csv_rows(read(s3, export_bucket, f"{export.prefix}invoice-lines.csv.gz"))
    assert [row[1:] for row in lines[1:]] == [
        [
            "usage",
            cluster.public_id,
            "events",
            "ingress_bytes",
            "2026-10-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
            "744000000",
            "0.080000",
            "1000000000",
            "0.059520",
            "0.06",
        ],
        [
            "usage",
            cluster.public_id,
            "events",
            "partition_hours",
            "2026-10-01T00:00:00Z",
            "2026-11-01T00:00:00Z",
            "4464",
            "0.001500",
            "1",
            "6.696000",
            "6.70",
        ],
    ]


def test_the_month_close_queues_its_export_when_it_commits_and_once(org, export_bucket):
    october_of(org)

    with transaction.atomic():
        invoice_close(organization=org, period_start=OCTOBER, now=CLOSE_AT)
        queued = only_export(org)
        assert (queued.trigger, queued.state) == (ExportTrigger.MONTH_CLOSE, ExportState.PENDING)

    assert only_export(org).state == ExportState.DONE  # the task ran on commit
    assert invoice_close(organization=org, period_start=OCTOBER, now=CLOSE_AT) == Outcome.ALREADY
    assert UsageExport.unscoped_all_tenants.count() == 1


def test_a_month_closed_without_an_export_bucket_queues_no_export(org, settings):
    settings.SLUICE_EXPORT_BUCKET = ""
    closed_october(org)

    assert UsageExport.unscoped_all_tenants.count() == 0


def test_a_second_export_of_the_month_writes_new_keys_and_leaves_the_first_intact(
    org, export_bucket, s3_server
):
    cluster = closed_october(org)
    s3 = s3_server.client()
    first = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)
    before = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=export_bucket)["Contents"]}
    # Found after the close: 500 more bytes in the first hour, billed on November's invoice.
    UsageAdjustment.unscoped_all_tenants.create(
        organization=org,
        cluster=cluster,
        dimension=Dimension.INGRESS_BYTES,
        hour=OCTOBER,
        quantity=500,
    )

    second = request_export(org)

    assert second.state == ExportState.DONE, second.error
    assert second.prefix != first.prefix
    after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=export_bucket)["Contents"]}
    assert {key: after[key] for key in before} == before
    assert set(after) - set(before) == {f"{second.prefix}{n}.csv.gz" for n in NAMES} | {
        f"{second.prefix}manifest.json"
    }
    assert [(o["name"], o["rows"]) for o in manifest_of(s3, second)["objects"]] == [
        ("usage-hours", 1_488),
        ("usage-adjustments", 1),
        ("invoice-lines", 2),
    ]
    adjustments = csv_rows(read(s3, export_bucket, f"{second.prefix}usage-adjustments.csv.gz"))
    assert adjustments[1][:5] == [
        cluster.public_id,
        "ingress_bytes",
        "bytes",
        "2026-10-01T00:00:00Z",
        "500",
    ]
    assert adjustments[1][6] == ""  # not billed yet
    event = AuditEvent.unscoped_all_tenants.get(action="usage_export.requested")
    assert (event.target_id, event.after) == (
        second.public_id,
        {"month": "2026-10", "prefix": second.prefix},
    )


# Written once -----------------------------------------------------------------------------------


def test_s3_refuses_a_write_to_a_key_that_holds_an_object(export_bucket, s3_server):
    s3 = s3_server.client()
    key = "usage/org_x/2026/10/uexp_x/manifest.json"
    export_store.put_once(s3, bucket=export_bucket, key=key, body=b"first", content_type="x/y")

    with pytest.raises(export_store.ObjectExists):
        export_store.put_once(s3, bucket=export_bucket, key=key, body=b"second", content_type="x/y")
    # The raw call, as moto answers it: 412 Precondition Failed.
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=export_bucket, Key=key, Body=b"third", IfNoneMatch="*")

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert read(s3, export_bucket, key) == b"first"


def test_a_multipart_upload_completing_onto_a_key_that_holds_an_object_is_refused(
    export_bucket, s3_server, settings
):
    settings.SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES = 1024
    settings.SLUICE_EXPORT_PART_SIZE_BYTES = 1024
    s3 = s3_server.client()
    key = "usage/org_x/2026/10/uexp_x/usage-hours.csv.gz"
    s3.put_object(Bucket=export_bucket, Key=key, Body=b"already here")
    writer = export_store.GzipObjectWriter(s3, bucket=export_bucket, key=key)
    writer.add("".join(f"{n},{n * 7919 % 10007}\r\n" for n in range(5_000)))

    with pytest.raises(export_store.ObjectExists):
        writer.close()

    assert read(s3, export_bucket, key) == b"already here"
    assert s3.list_multipart_uploads(Bucket=export_bucket).get("Uploads", []) == []


def test_every_export_has_keys_of_its_own(org, export_bucket, s3_server):
    closed_october(org)

    prefixes = [request_export(org).prefix for _ in range(3)]
    prefixes.append(only_export(org, trigger=ExportTrigger.MONTH_CLOSE).prefix)

    assert len(set(prefixes)) == 4
    assert all(p.startswith(f"usage/{org.public_id}/2026/10/uexp_") for p in prefixes)
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=export_bucket)["Contents"]]
    assert len(keys) == len(set(keys)) == 16


def test_large_objects_go_up_in_parts_and_read_back_whole(org, export_bucket, s3_server, settings):
    settings.SLUICE_EXPORT_MULTIPART_THRESHOLD_BYTES = 2048
    settings.SLUICE_EXPORT_PART_SIZE_BYTES = 1024  # moto here takes parts from 1 KiB
    settings.SLUICE_EXPORT_READ_CHUNK_ROWS = 100
    closed_october(org)
    s3 = s3_server.client()

    export = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)

    assert export.state == ExportState.DONE, export.error
    hours, adjustments, lines = export.files
    etag = s3.head_object(Bucket=export_bucket, Key=hours["key"])["ETag"].strip('"')
    assert hours["bytes"] > 2048
    parts = int(etag.rsplit("-", 1)[1])  # a multipart object's ETag ends in its part count
    assert parts == -(-hours["bytes"] // 1024)
    # The small ones went up in one PutObject (an ETag with no part count).
    for small in (adjustments, lines):
        assert "-" not in s3.head_object(Bucket=export_bucket, Key=small["key"])["ETag"]
    data = read(s3, export_bucket, hours["key"])
    assert (len(data), hashlib.sha256(data).hexdigest()) == (hours["bytes"], hours["sha256"])
    assert len(csv_rows(data)) == 1 + 1_488
    assert s3.list_multipart_uploads(Bucket=export_bucket).get("Uploads", []) == []


# Run once, run again ---------------------------------------------------------------------------


def test_running_a_done_export_again_writes_nothing(org, export_bucket, s3_server):
    closed_october(org)
    export = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)

    assert export_month(organization=org.public_id, export=export.public_id) == ExportState.DONE

    assert len(s3_server.client().list_objects_v2(Bucket=export_bucket)["Contents"]) == 4
    assert only_export(org, pk=export.pk).completed_at == export.completed_at


def test_an_export_another_run_holds_is_left_to_it(org, export_bucket, s3_server):
    october_of(org)
    ClosedMonth.unscoped_all_tenants.create(
        organization=org, period_start=OCTOBER, closed_at=CLOSE_AT
    )
    with tenant_scope(org):
        export = UsageExport.objects.create(
            organization=org,
            period_start=OCTOBER,
            trigger=ExportTrigger.REQUEST,
            bucket=export_bucket,
            prefix=exports.export_prefix(org, OCTOBER, "uexp_held"),
            claimed_at=datetime.now(UTC) - timedelta(minutes=5),
        )

        assert exports.export_write(export=export).state == ExportState.PENDING

    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=export_bucket)


def test_the_retry_of_a_run_that_died_keeps_what_it_wrote_when_it_is_the_same(
    org, export_bucket, s3_server
):
    closed_october(org)
    export = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)
    written = export.files
    # As if the run died after its last write: the row still pending, its claim run out.
    UsageExport.unscoped_all_tenants.filter(pk=export.pk).update(
        state=ExportState.PENDING, files=[], completed_at=None, claimed_at=CLOSE_AT
    )

    assert export_month(organization=org.public_id, export=export.public_id) == ExportState.DONE
    assert only_export(org, pk=export.pk).files == written

    # An object that is not what this export would write is not taken for it.
    s3_server.client().put_object(Bucket=export_bucket, Key=written[0]["key"], Body=b"other")
    UsageExport.unscoped_all_tenants.filter(pk=export.pk).update(
        state=ExportState.PENDING, claimed_at=None
    )
    assert export_month(organization=org.public_id, export=export.public_id) == ExportState.FAILED
    assert "already exists" in only_export(org, pk=export.pk).error


def test_beat_queues_again_the_exports_left_pending(org, export_bucket, s3_server):
    closed_october(org)
    export = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)
    written = export.files
    # Lost: a run that died holding it an hour and a half ago; the objects never written.
    UsageExport.unscoped_all_tenants.filter(pk=export.pk).update(
        state=ExportState.PENDING, files=[], claimed_at=datetime.now(UTC) - timedelta(minutes=90)
    )
    s3 = s3_server.client()
    for entry in written:
        s3.delete_object(Bucket=export_bucket, Key=entry["key"])
    s3.delete_object(Bucket=export_bucket, Key=export.prefix + "manifest.json")
    # Just made, its task perhaps still on its way: left alone.
    fresh = request_export_row(org)

    assert resume_usage_exports() == 1

    assert only_export(org, pk=export.pk).state == ExportState.DONE
    assert only_export(org, pk=export.pk).files == written
    assert only_export(org, pk=fresh.pk).state == ExportState.PENDING


def request_export_row(organization) -> UsageExport:
    """A pending export as a request records it, without its task."""
    with tenant_scope(organization):
        return UsageExport.objects.create(
            organization=organization,
            period_start=OCTOBER,
            trigger=ExportTrigger.REQUEST,
            bucket="any",
            prefix=exports.export_prefix(organization, OCTOBER, "uexp_fresh"),
        )


def test_an_export_that_s3_refuses_is_recorded_failed_with_why(org, export_bucket, settings):
    closed_october(org)
    settings.SLUICE_EXPORT_BUCKET = "no-such-bucket"

    export = request_export(org)

    assert export.state == ExportState.FAILED
    assert "NoSuchBucket" in export.error


# The API and the Billing tab ---------------------------------------------------------------------


def exports_url(organization) -> str:
    return f"/api/v1/orgs/{organization.public_id}/billing/exports/"


def test_the_api_lists_exports_with_links_that_download_with_plain_urllib(
    org, export_bucket, s3_server
):
    closed_october(org)
    client = session_client(add_member(org, Role.BILLING).user)

    listed = client.get(exports_url(org))

    assert listed.status_code == 200
    (body,) = listed.json()["results"]
    assert (body["month"], body["trigger"], body["state"]) == ("2026-10", "month_close", "done")
    files = {file["name"]: file for file in body["files"]}
    assert list(files) == [*NAMES, "manifest.json"]
    manifest = json.loads(urllib.request.urlopen(files["manifest.json"]["download_url"]).read())  # noqa: S310
    for entry in manifest["objects"]:
        with urllib.request.urlopen(files[entry["name"]]["download_url"]) as answer:  # noqa: S310
            data = answer.read()
            assert answer.headers["Content-Disposition"].startswith("attachment; filename=")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] == files[entry["name"]]["sha256"]
        assert len(csv_rows(data)) - 1 == entry["rows"]
    assert client.get(exports_url(org) + body["id"] + "/").json()["id"] == body["id"]


def test_one_organization_cannot_reach_anothers_export(org, export_bucket, s3_server):
    closed_october(org)
    theirs = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)
    other = make_org(owner=UserFactory(), name="Other")
    outsider = session_client(add_member(other, Role.OWNER).user)

    # Naming their own organization and the other's export; and naming the other organization.
    assert outsider.get(exports_url(other) + theirs.public_id + "/").status_code == 404
    assert outsider.get(exports_url(org) + theirs.public_id + "/").status_code == 404
    assert outsider.get(exports_url(org)).status_code == 404
    web = f"/orgs/{other.public_id}/billing/exports/{theirs.public_id}/download/?file=manifest.json"
    assert outsider.get(web).status_code == 404
    assert outsider.post(exports_url(org), {"month": "2026-10"}, format="json").status_code == 404


def test_a_request_through_the_api_is_accepted_once_per_idempotency_key(
    org, export_bucket, s3_server
):
    closed_october(org)
    client = session_client(add_member(org, Role.ADMIN).user)

    answers = [
        client.post(
            exports_url(org), {"month": "2026-10"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
        )
        for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert UsageExport.unscoped_all_tenants.filter(trigger=ExportTrigger.REQUEST).count() == 1
    assert AuditEvent.unscoped_all_tenants.filter(action="usage_export.requested").count() == 1


@pytest.mark.parametrize(
    ("month", "status", "code"),
    [
        ("garbage", 400, "validation"),
        ("2026-1", 400, "validation"),
        ("2026-13", 400, "validation"),
        ("2026-00", 400, "validation"),
        ("1969-12", 400, "validation"),
        ("2026-10-01", 400, "validation"),
        ("\uff12\uff10\uff12\uff16-\uff11\uff10", 400, "validation"),  # full-width digits
        ("\u0662\u0660\u0662\u0666-\u0661\u0660", 400, "validation"),  # Arabic-Indic digits
        (202610, 400, "validation"),
        (None, 400, "validation"),
        ("2999-01", 400, "validation"),  # not begun
        ("2026-09", 409, "month_not_closed"),  # before the organization had anything
    ],
)
def test_a_month_that_cannot_be_exported_is_a_problem(org, export_bucket, month, status, code):
    closed_october(org)
    client = session_client(add_member(org, Role.OWNER).user)

    answer = client.post(exports_url(org), {"month": month}, format="json")

    assert answer.status_code == status, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["code"] == code
    if code == "validation":
        assert list(answer.json()["errors"]) == ["month"]
    assert UsageExport.unscoped_all_tenants.filter(trigger=ExportTrigger.REQUEST).count() == 0


def test_the_current_month_is_not_closed_and_no_bucket_means_no_export(org, settings):
    client = session_client(add_member(org, Role.OWNER).user)
    this_month = datetime.now(UTC).strftime("%Y-%m")
    settings.SLUICE_EXPORT_BUCKET = "a-bucket"

    answer = client.post(exports_url(org), {"month": this_month}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (409, "month_not_closed")

    settings.SLUICE_EXPORT_BUCKET = ""
    ClosedMonth.unscoped_all_tenants.create(
        organization=org, period_start=OCTOBER, closed_at=CLOSE_AT
    )
    answer = client.post(exports_url(org), {"month": "2026-10"}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (409, "exports_not_configured")


@pytest.mark.parametrize(
    ("role", "listed", "requested"),
    [
        (Role.OWNER, 200, 202),
        (Role.ADMIN, 200, 202),
        (Role.BILLING, 200, 202),
        (Role.DEVELOPER, 403, 403),
        (Role.VIEWER, 403, 403),
    ],
)
def test_who_may_list_and_request_exports(org, export_bucket, role, listed, requested):
    october_of(org)
    ClosedMonth.unscoped_all_tenants.create(
        organization=org, period_start=OCTOBER, closed_at=CLOSE_AT
    )
    client = session_client(add_member(org, role).user)

    assert client.get(exports_url(org)).status_code == listed
    answer = client.post(exports_url(org), {"month": "2026-10"}, format="json")
    assert answer.status_code == requested


def test_the_billing_tab_lists_exports_and_its_links_redirect_to_the_object(
    org, export_bucket, s3_server
):
    closed_october(org)
    export = only_export(org, trigger=ExportTrigger.MONTH_CLOSE)
    client = session_client(add_member(org, Role.ADMIN).user)

    tab = client.get(f"/orgs/{org.public_id}/billing/")
    link = f"/orgs/{org.public_id}/billing/exports/{export.public_id}/download/?file=usage-hours"

    assert tab.status_code == 200
    assert export.public_id.encode() in tab.content
    assert link.encode() in tab.content
    moved = client.get(link)
    assert moved.status_code == 302
    with urllib.request.urlopen(moved["Location"]) as answer:  # noqa: S310 - moto on loopback
        assert hashlib.sha256(answer.read()).hexdigest() == export.files[0]["sha256"]
    assert client.get(link + "-nosuch").status_code == 404

    again = client.post(f"/orgs/{org.public_id}/billing/exports/", {"month": "2026-10"})
    assert again.status_code == 302
    assert only_export(org, trigger=ExportTrigger.REQUEST).state == ExportState.DONE
